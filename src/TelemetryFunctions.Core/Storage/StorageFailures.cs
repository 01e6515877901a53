using Azure;

namespace TelemetryFunctions.Storage;

/// <summary>Tells a storage outage (answer 503, the client retries) from a bug (let it surface).</summary>
public static class StorageFailures
{
    public static bool IsUnavailable(Exception exception, CancellationToken requestAborted)
    {
        switch (exception)
        {
            case RequestFailedException e:
                return e.Status is 0 or 408 or 429 or 500 or 502 or 503 or 504;
            case HttpRequestException or IOException or TimeoutException:
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
