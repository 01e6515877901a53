using Azure;
using Azure.Identity;

namespace TelemetryFunctions.Storage;

/// <summary>
/// Tells a storage failure the client should retry later (answer 503 with Retry-After: nothing of the request is
/// acknowledged, the client keeps its events) from a bug (let it surface). Besides outages and time-outs this
/// includes refused access (403, or no token for the managed identity: role assignments take minutes to reach
/// storage after a deployment) and a row that concurrent writers kept changing.
/// </summary>
public static class StorageFailures
{
    public static bool IsUnavailable(Exception exception, CancellationToken requestAborted)
    {
        switch (exception)
        {
            case RequestFailedException e:
                return e.Status is 0 or 403 or 408 or 429 or 500 or 502 or 503 or 504;
            case HttpRequestException or IOException or TimeoutException or StorageContentionException or AuthenticationFailedException or CredentialUnavailableException:
                return true;
            case OperationCanceledException:
                // The SDK's network time-out surfaces as a cancellation the caller did not ask for.
                return !requestAborted.IsCancellationRequested;
            case AggregateException aggregate:
                return aggregate.InnerExceptions.Count > 0 && aggregate.InnerExceptions.All(inner => IsUnavailable(inner, requestAborted));
            default:
                return false;
        }
    }
}

/// <summary>A row that concurrent writers kept changing through every attempt to update it: worth retrying later.</summary>
public sealed class StorageContentionException(string message) : Exception(message);
