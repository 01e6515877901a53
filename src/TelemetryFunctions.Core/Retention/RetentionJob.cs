using System.Runtime.ExceptionServices;
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
/// are deleted; daily aggregates are kept. Opt-out erasures that did not finish are completed, and those to be repeated
/// after the stale window are repeated. Deleting what is already gone is a no-op, so reruns are harmless.
/// </summary>
/// <remarks>
/// After a run no raw event older than the retention period is left: the day partitions before the day of the cut
/// are deleted whole, and the partitions from that day to the last that can hold an event older than the cut
/// (<see cref="LastPartitionDayBefore"/>) by each event's time. Between two daily runs an event therefore lives at
/// most the retention period plus a day. Activity marks and digests say only on which reporting day a subject was
/// active, so they are kept by whole days: a day is deleted by the first run once its end (in the reporting time
/// zone) is the retention period ago or longer.
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
    /// <remarks>
    /// The steps are independent: the opt-out erasures run first, and a step that fails does not stop the others. The
    /// run then throws the failure (all of them, if several failed), so the timer logs it and the admin route answers
    /// 503 for a storage outage; the next run redoes what was left.
    /// </remarks>
    public async Task<RetentionResult> RunAsync(CancellationToken cancellationToken)
    {
        var failures = new List<Exception>();
        async Task<int> StepAsync(string step, Func<Task<int>> run)
        {
            try
            {
                return await run();
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                LogStepFailed(logger, step, e);
                failures.Add(e);
                return 0;
            }
        }

        var erasures = await StepAsync("erasures", () => optOut.CompletePendingAsync(cancellationToken));

        var now = time.GetUtcNow();
        var raw = await StepAsync("raw events", () => DeleteRawEventsAsync(now, cancellationToken));
        var firstKeptDay = FirstKeptDay(now, options.Value.Activity, calendar);
        var activity = await StepAsync("activity marks", async () => await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.Activity, cancellationToken), TableClient.CreateQueryFilter($"PartitionKey lt {TableKeys.Day(firstKeptDay)}"), cancellationToken));
        var digestCount = await StepAsync("digests", () => digests.DeleteBeforeAsync(firstKeptDay, cancellationToken));
        var support = await StepAsync("support requests", async () => await batches.DeleteMatchingAsync(
            await storage.GetTableAsync(TableNames.SupportRequests, cancellationToken), TableClient.CreateQueryFilter($"DeleteAfter le {now}"), cancellationToken));

        LogRetained(logger, raw, activity, digestCount, support, erasures);
        if (failures.Count == 1)
        {
            ExceptionDispatchInfo.Capture(failures[0]).Throw();
        }
        else if (failures.Count > 1)
        {
            throw new AggregateException("Several retention steps failed.", failures);
        }

        return new RetentionResult(raw, activity, digestCount, support, erasures);
    }

    private async Task<int> DeleteRawEventsAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var cut = now.AddDays(-options.Value.Activity.RawEventRetentionDays);
        var cutDay = TableKeys.Day(DateOnly.FromDateTime(cut.UtcDateTime));
        var rawTable = await storage.GetTableAsync(TableNames.RawEvents, cancellationToken);
        var raw = await batches.DeleteMatchingAsync(rawTable, TableClient.CreateQueryFilter($"PartitionKey lt {cutDay}"), cancellationToken);

        // The partitions from the cut day on that may hold an event older than the cut, by event time. A partition's
        // day is the sender's clock's ({yyyyMMdd}_{source}_{shard}: after the bare day, before the last day followed
        // by '`', the character after '_'), EventTime the skew-corrected time.
        var lastMixedDay = TableKeys.Day(LastPartitionDayBefore(cut, options.Value.Ingestion));
        raw += await batches.DeleteMatchingAsync(
            rawTable, TableClient.CreateQueryFilter($"PartitionKey gt {cutDay} and PartitionKey lt {lastMixedDay + "`"} and EventTime lt {cut}"), cancellationToken);
        return raw;
    }

    /// <summary>
    /// The latest raw-event partition day that can hold an event whose <c>EventTime</c> is before
    /// <paramref name="instant"/>. An event is filed under its sender's clock's day, or its receive day, but never later
    /// than the day after its own (skew-corrected) time plus <c>MaxFutureSkew</c> (EventPreparer's raw day): a sender
    /// whose clock runs ahead files it up to that many days after its time.
    /// </summary>
    public static DateOnly LastPartitionDayBefore(DateTimeOffset instant, IngestionOptions ingestion) =>
        DateOnly.FromDateTime((instant + ingestion.MaxFutureSkew).UtcDateTime).AddDays(1);

    /// <summary>
    /// The oldest reporting day whose activity marks and digests a retention run at <paramref name="now"/> keeps: the
    /// day holding the instant the retention period before <paramref name="now"/>. Earlier days ended longer ago than
    /// that and are deleted.
    /// </summary>
    public static DateOnly FirstKeptDay(DateTimeOffset now, ActivityOptions options, ReportingCalendar calendar) =>
        calendar.DayOf(now.AddDays(-options.RawEventRetentionDays));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention step {Step} failed; the other steps still run and the run fails")]
    private static partial void LogStepFailed(ILogger logger, string step, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {RawEvents} raw events, {ActivityRows} activity rows, {Digests} digests, {SupportRequests} support requests; {Erasures} erasures completed")]
    private static partial void LogRetained(ILogger logger, int rawEvents, int activityRows, int digests, int supportRequests, int erasures);
}
