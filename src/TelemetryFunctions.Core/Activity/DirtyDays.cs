using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Activity;

/// <summary>A day whose activity changed after it ended, as flagged on <see cref="FlaggedOn"/> and read on <see cref="ReadOn"/>.</summary>
public sealed record DirtyDay(DateOnly Day, DateOnly FlaggedOn, ETag ETag, DateOnly ReadOn);

/// <summary>
/// Days that received activity marks after they ended (late events, gone-inactive marks of a sweep that ran late),
/// so the daily rollup recomputes them and the WAU/MAU of the days after them. One small row per (day, day it was
/// flagged on) in the <c>DailyStats</c> table's <c>dirty</c> partition; a host writes each at most once a day.
/// </summary>
/// <remarks>
/// The mark is written before its flag, and the rollup reads the flags before the marks, so a recompute that clears
/// a flag has seen every mark written before it. The rollup deletes a flag with If-Match and only if its
/// <see cref="DirtyDay.FlaggedOn"/> day was already over when the flag was read (<see cref="DirtyDay.ReadOn"/>): a
/// mark landing during the recompute either rewrites the flag (the delete then fails and the day is recomputed on the
/// next run) or flags it under a key of a day that had not ended at the read, which is kept. Judged at the read, not
/// at the delete: a host does not rewrite a flag it wrote earlier that day, so a run that crosses midnight must keep it.
/// </remarks>
public sealed class DirtyDays(TelemetryStorage storage, ReportingCalendar calendar, TimeProvider time)
{
    public const string Partition = "dirty";
    private readonly Lock _gate = new();
    private readonly HashSet<DateOnly> _flaggedToday = [];
    private DateOnly _today;

    /// <summary>Flags each of <paramref name="days"/> that has already ended, unless this host flagged it today.</summary>
    public async Task FlagEndedAsync(IEnumerable<DateOnly> days, CancellationToken cancellationToken)
    {
        var today = calendar.DayOf(time.GetUtcNow());
        List<DateOnly> pending;
        lock (_gate)
        {
            if (_today != today)
            {
                _flaggedToday.Clear();
                _today = today;
            }

            pending = days.Where(d => d < today && !_flaggedToday.Contains(d)).Distinct().ToList();
        }

        if (pending.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        foreach (var day in pending)
        {
            await table.UpsertEntityAsync(
                new TableEntity(Partition, RowKey(day, today)) { ["Day"] = TableKeys.Day(day), ["FlaggedOn"] = TableKeys.Day(today) },
                TableUpdateMode.Replace,
                cancellationToken);
        }

        lock (_gate)
        {
            if (_today == today)
            {
                _flaggedToday.UnionWith(pending);
            }
        }
    }

    public async Task<IReadOnlyList<DirtyDay>> ReadAsync(CancellationToken cancellationToken)
    {
        var readOn = calendar.DayOf(time.GetUtcNow());
        var table = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        var flags = new List<DirtyDay>();
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {Partition}"), cancellationToken: cancellationToken))
        {
            if (row.GetString("Day") is { } day && row.GetString("FlaggedOn") is { } flaggedOn)
            {
                flags.Add(new DirtyDay(TableKeys.ParseDay(day), TableKeys.ParseDay(flaggedOn), row.ETag, readOn));
            }
        }

        return flags;
    }

    /// <summary>
    /// Deletes a flag that was read before its day was recomputed, unless it was rewritten since or may still be: one
    /// flagged on the day it was read may have a mark behind it that a host wrote without rewriting the flag (it
    /// writes it once a day), whatever day it is by the time of the delete.
    /// </summary>
    public async Task<bool> ClearAsync(DirtyDay flag, CancellationToken cancellationToken)
    {
        if (flag.FlaggedOn >= flag.ReadOn)
        {
            return false;
        }

        var table = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        try
        {
            await table.DeleteEntityAsync(Partition, RowKey(flag.Day, flag.FlaggedOn), flag.ETag, cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            // Rewritten by a later mark (recomputed on the next run), or cleared by a concurrent run.
            return false;
        }
    }

    private static string RowKey(DateOnly day, DateOnly flaggedOn) => TableKeys.Day(day) + "_" + TableKeys.Day(flaggedOn);
}
