using System.Collections.Concurrent;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Activity;

/// <summary>
/// Marks users, instances and installations as active on a day: one row per (day, subject) in the day's partition,
/// so the daily rollup reads each active subject once instead of every raw event. Writes are idempotent upserts;
/// a host remembers what it already marked today and skips rewriting it. A mark on a day that has ended (a late
/// event) also flags that day in <see cref="DirtyDays"/>, after the mark is written, so the rollup recomputes it.
/// </summary>
/// <remarks>
/// Row keys: <c>u_{subject}</c> a user with a usage event, <c>i_{instance}</c> an instance that sent anything,
/// <c>n_{installation}</c> installation flags: SupportRequested, merged here on the day of the request;
/// Started/Succeeded/Failed, written by <see cref="Installations.InstallationRecorder"/> on the installation's start day.
/// </remarks>
public sealed class ActivityStore(TelemetryStorage storage, TableBatchWriter batches, DirtyDays dirtyDays, TimeProvider time, IOptions<TelemetryOptions> options)
{
    private const int MaxRemembered = 500_000;

    /// <summary>The marks this host wrote, and when: one is not written again for <see cref="_memory"/> after.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> _marked = new(StringComparer.Ordinal);

    /// <summary>
    /// As long as the opt-out list is cached (<c>SuppressionRefreshInterval</c>): a subject erased by another host and
    /// back (sharing enabled again) is marked again within that time, as the host's other knowledge of it is renewed.
    /// </summary>
    private readonly TimeSpan _memory = options.Value.Ingestion.SuppressionRefreshInterval;

    public const string UserPrefix = "u_";

    /// <summary>The first row key after every user mark (the character after '_' is '`').</summary>
    public const string UserMarksEnd = "u`";
    public const string InstancePrefix = "i_";
    public const string InstallationPrefix = "n_";
    public const string FirstSeenPrefix = "f_";
    public const string GoneInactivePrefix = "o_";

    public static IEnumerable<TableEntity> PlanMarks(IReadOnlyList<PreparedEvent> events)
    {
        var rows = new Dictionary<(string, string), TableEntity>();
        foreach (var e in events)
        {
            var day = TableKeys.Day(e.ActivityDay);
            if (e.SubjectKey is { } subject && e.Category is EventCategory.Usage)
            {
                var row = Row(rows, day, UserPrefix + subject);
                row["Source"] = e.Source;
                SetIfKnown(row, "Version", e.Version);
                SetIfKnown(row, "Os", e.Os);
            }

            if (e.InstanceKey is { } instance)
            {
                var row = Row(rows, day, InstancePrefix + instance);
                row["Source"] = e.Source;
                SetIfKnown(row, "Version", e.Version);
                SetIfKnown(row, "Os", e.Os);
                SetIfKnown(row, "Edition", e.Edition);
            }

            // Started, Succeeded and Failed are attributed to the installation's start day from its record
            // (InstallationRecorder); a support request counts on the day it is made.
            if (e.InstallationKey is { } installation && e.Category is EventCategory.InstallationSupport)
            {
                var row = Row(rows, day, InstallationPrefix + installation);
                row["SupportRequested"] = true;
            }
        }

        return rows.Values;
    }

    public async Task MarkAsync(IReadOnlyList<PreparedEvent> events, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var pending = PlanMarks(events).Where(r => !(_marked.TryGetValue(Remembered(r), out var at) && now - at < _memory)).ToList();
        if (pending.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        await batches.SubmitAsync(table, pending.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertMerge, r)), cancellationToken);
        await dirtyDays.FlagEndedAsync(pending.Select(r => TableKeys.ParseDay(r.PartitionKey)).Distinct(), cancellationToken);

        if (_marked.Count > MaxRemembered)
        {
            _marked.Clear();
        }

        foreach (var row in pending)
        {
            _marked[Remembered(row)] = now;
        }
    }

    /// <summary>The mark of one event of an instance's life (first seen, gone inactive) on a day: the key alone.</summary>
    public static TableEntity LifeMark(DateOnly day, string rowKey) => new(TableKeys.Day(day), rowKey);

    /// <summary>Marks one event of an instance's life (first seen, gone inactive) on a day; always written, never remembered.</summary>
    public async Task MarkAsync(DateOnly day, string rowKey, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        await table.UpsertEntityAsync(LifeMark(day, rowKey), TableUpdateMode.Merge, cancellationToken);
        await dirtyDays.FlagEndedAsync([day], cancellationToken);
    }

    /// <summary>
    /// Removes a mark written by <see cref="MarkAsync(DateOnly, string, CancellationToken)"/> (a gone-inactive mark that
    /// turned out false) and flags its day if it has ended, so a rollup that counted it recomputes the day. Those marks
    /// are never remembered by this host, so nothing stops the same mark from being written again later.
    /// </summary>
    public async Task UnmarkAsync(DateOnly day, string rowKey, CancellationToken cancellationToken)
    {
        // Never written, or already removed: nothing to delete.
        await TableBatchWriter.DeleteIfExistsAsync(await storage.GetTableAsync(TableNames.Activity, cancellationToken), TableKeys.Day(day), rowKey, cancellationToken);
        await dirtyDays.FlagEndedAsync([day], cancellationToken);
    }

    /// <summary>Forgets what this host marked, so erased subjects are marked again if they come back.</summary>
    public void Forget() => _marked.Clear();

    /// <summary>A row is remembered with the values it was written with; a changed version or a new lifecycle flag is written again.</summary>
    private static string Remembered(TableEntity row) =>
        string.Join('|', row.PartitionKey, row.RowKey, string.Join(',', row.OrderBy(p => p.Key, StringComparer.Ordinal).Where(p => p.Key is not ("PartitionKey" or "RowKey" or "odata.etag" or "Timestamp")).Select(p => p.Key + "=" + p.Value)));

    private static TableEntity Row(Dictionary<(string, string), TableEntity> rows, string day, string rowKey)
    {
        if (!rows.TryGetValue((day, rowKey), out var row))
        {
            row = new TableEntity(day, rowKey);
            rows[(day, rowKey)] = row;
        }

        return row;
    }

    private static void SetIfKnown(TableEntity row, string name, string? value)
    {
        if (value is not null)
        {
            row[name] = value;
        }
    }
}
