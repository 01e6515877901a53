using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Retention;

/// <summary>What one retention run deleted.</summary>
public sealed record RetentionResult(int RawEvents, int ActivityRows, int Digests, int SupportRequests, int Erasures);

/// <summary>
/// The daily clean-up: raw events and per-subject activity older than <c>RawEventRetentionDays</c> (default 90),
/// support requests past their own retention (default 30 days) are deleted; daily aggregates are kept. Opt-out
/// erasures that did not finish are completed. Deleting what is already gone is a no-op, so reruns are harmless.
/// </summary>
public sealed partial class RetentionJob(
    TelemetryStorage storage,
    TableBatchWriter batches,
    ActivityDigests digests,
    OptOutService optOut,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<RetentionJob> logger)
{
    public async Task<RetentionResult> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var cutoff = TableKeys.Day(FirstKeptDay(now, options.Value.Activity));

        var raw = await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.RawEvents, cancellationToken), TableClient.CreateQueryFilter($"PartitionKey lt {cutoff}"), cancellationToken);
        var activity = await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.Activity, cancellationToken), TableClient.CreateQueryFilter($"PartitionKey lt {cutoff}"), cancellationToken);
        var digestCount = await digests.DeleteBeforeAsync(TableKeys.ParseDay(cutoff), cancellationToken);
        var support = await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.SupportRequests, cancellationToken), TableClient.CreateQueryFilter($"DeleteAfter le {now}"), cancellationToken);
        var erasures = await optOut.CompletePendingAsync(cancellationToken);

        LogRetained(logger, raw, activity, digestCount, support, erasures);
        return new RetentionResult(raw, activity, digestCount, support, erasures);
    }

    /// <summary>The oldest day whose activity marks and digests a retention run at <paramref name="now"/> keeps; earlier days are deleted.</summary>
    public static DateOnly FirstKeptDay(DateTimeOffset now, ActivityOptions options) =>
        DateOnly.FromDateTime(now.UtcDateTime).AddDays(-options.RawEventRetentionDays);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {RawEvents} raw events, {ActivityRows} activity rows, {Digests} digests, {SupportRequests} support requests; {Erasures} erasures completed")]
    private static partial void LogRetained(ILogger logger, int rawEvents, int activityRows, int digests, int supportRequests, int erasures);
}
