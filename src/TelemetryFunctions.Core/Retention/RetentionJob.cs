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
/// The daily clean-up: raw events older than <c>RawEventRetentionDays</c> (default 90), the activity marks and digests
/// of reporting days that ended longer ago than that, and support requests past their own retention (default 30 days)
/// are deleted; daily aggregates are kept. Opt-out erasures that did not finish are completed. Deleting what is
/// already gone is a no-op, so reruns are harmless.
/// </summary>
/// <remarks>
/// After a run no raw event older than the retention period is left: the day partitions before the day of the cut
/// are deleted whole and that day's partitions by each event's time. Between two daily runs an event therefore lives
/// at most the retention period plus a day. Activity marks and digests say only on which reporting day a subject was
/// active, so they are kept by whole days: a day is deleted by the first run after its end (in the reporting time
/// zone) is more than the retention period ago.
/// </remarks>
public sealed partial class RetentionJob(
    TelemetryStorage storage,
    TableBatchWriter batches,
    ActivityDigests digests,
    OptOutService optOut,
    ReportingCalendar calendar,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<RetentionJob> logger)
{
    public async Task<RetentionResult> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var cut = now.AddDays(-options.Value.Activity.RawEventRetentionDays);
        var cutDay = TableKeys.Day(DateOnly.FromDateTime(cut.UtcDateTime));
        var rawTable = await storage.GetTableAsync(TableNames.RawEvents, cancellationToken);
        var raw = await batches.DeleteMatchingAsync(rawTable, TableClient.CreateQueryFilter($"PartitionKey lt {cutDay}"), cancellationToken);

        // The cut day's partitions ({yyyyMMdd}_{source}_{shard}: after the bare day, before the day followed by '`',
        // the character after '_'), by event time.
        raw += await batches.DeleteMatchingAsync(
            rawTable, TableClient.CreateQueryFilter($"PartitionKey gt {cutDay} and PartitionKey lt {cutDay + "`"} and EventTime lt {cut}"), cancellationToken);

        var firstKeptDay = FirstKeptDay(now, options.Value.Activity, calendar);
        var activity = await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.Activity, cancellationToken), TableClient.CreateQueryFilter($"PartitionKey lt {TableKeys.Day(firstKeptDay)}"), cancellationToken);
        var digestCount = await digests.DeleteBeforeAsync(firstKeptDay, cancellationToken);
        var support = await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.SupportRequests, cancellationToken), TableClient.CreateQueryFilter($"DeleteAfter le {now}"), cancellationToken);
        var erasures = await optOut.CompletePendingAsync(cancellationToken);

        LogRetained(logger, raw, activity, digestCount, support, erasures);
        return new RetentionResult(raw, activity, digestCount, support, erasures);
    }

    /// <summary>
    /// The oldest reporting day whose activity marks and digests a retention run at <paramref name="now"/> keeps: the
    /// day holding the instant the retention period before <paramref name="now"/>. Earlier days ended longer ago than
    /// that and are deleted.
    /// </summary>
    public static DateOnly FirstKeptDay(DateTimeOffset now, ActivityOptions options, ReportingCalendar calendar) =>
        calendar.DayOf(now.AddDays(-options.RawEventRetentionDays));

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {RawEvents} raw events, {ActivityRows} activity rows, {Digests} digests, {SupportRequests} support requests; {Erasures} erasures completed")]
    private static partial void LogRetained(ILogger logger, int rawEvents, int activityRows, int digests, int supportRequests, int erasures);
}
