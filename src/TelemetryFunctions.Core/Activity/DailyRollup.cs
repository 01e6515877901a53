using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Activity;

/// <summary>One day's figures, as stored in the DailyStats table and answered by the admin and read APIs.</summary>
public sealed record DayFigures(
    DateOnly Day,
    int Dau,
    int Wau,
    int Mau,
    int ActiveInstances,
    int NewInstances,
    int InstancesGoneInactive,
    int InstallationsStarted,
    int InstallationsSucceeded,
    int InstallationsFailed,
    int SupportRequests,
    double? InstallationSuccessRate,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Breakdowns,
    DateTimeOffset ComputedAt);

/// <summary>
/// Computes a day's figures from that day's activity partition alone: DAU (distinct people with a usage event),
/// daily active instances, new and gone-inactive instances, installations started/succeeded/failed (each installation
/// once, on its start day; succeeded + failed never exceeds started) and the success rate, with breakdowns by version, OS and source; WAU and MAU are exact distinct counts over the day digests of
/// the trailing 7 and 30 days. Re-running a day recomputes it from what is stored now (late events included) and
/// overwrites the same row, so it is idempotent.
/// </summary>
public sealed partial class DailyRollup(
    TelemetryStorage storage,
    ActivityDigests digests,
    DirtyDays dirtyDays,
    ReportingCalendar calendar,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<DailyRollup> logger)
{
    public const string StatsPartition = "daily";
    private const string MetaPartition = "meta";
    private const string WatermarkRow = "rollup-watermark";
    private const int MaxBreakdownEntries = 50;
    private readonly ActivityOptions _options = options.Value.Activity;

    /// <summary>How many days a day's MAU window spans: the day and the 29 before it.</summary>
    public const int MauWindowDays = 30;

    /// <summary>
    /// Computes every day from the last one computed (re-doing it) up to yesterday, and every day flagged dirty by a
    /// late mark together with the days after it whose WAU/MAU window includes it; never a day before
    /// <see cref="FirstRecomputableDay"/>. Flags are cleared once their days are recomputed.
    /// </summary>
    public async Task<IReadOnlyList<DayFigures>> CatchUpAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var lastComplete = calendar.LastCompleteDay(now);
        var earliestAllowed = Max(lastComplete.AddDays(-_options.MaxCatchUpDays + 1), FirstRecomputableDay(now));

        var stats = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        var watermark = await stats.GetEntityIfExistsAsync<TableEntity>(MetaPartition, WatermarkRow, cancellationToken: cancellationToken);
        DateOnly from;
        if (watermark.HasValue && watermark.Value!.GetString("Day") is { } day)
        {
            from = TableKeys.ParseDay(day);
        }
        else
        {
            from = await EarliestActivityDayAsync(cancellationToken) ?? lastComplete;
        }

        var days = new SortedSet<DateOnly>();
        AddRange(days, Max(from, earliestAllowed), lastComplete);

        // Flags are read before any day is recomputed, so every mark written before a flag is seen by the recompute.
        var flags = await dirtyDays.ReadAsync(cancellationToken);
        foreach (var flag in flags)
        {
            AddRange(days, Max(flag.Day, earliestAllowed), Min(flag.Day.AddDays(MauWindowDays - 1), lastComplete));
        }

        var results = await RunDaysAsync(days, progress: null, WatermarkMove.ToEveryDayComputed, cancellationToken);

        var cleared = 0;
        foreach (var flag in flags)
        {
            if (flag.Day < earliestAllowed)
            {
                // Start-up validation keeps retention and catch-up long enough for every accepted late event; a flag
                // older than that (left by an earlier configuration) cannot be recomputed, so it is said, not dropped silently.
                LogFlagTooOld(logger, flag.Day, earliestAllowed);
            }

            if (await dirtyDays.ClearAsync(flag, cancellationToken))
            {
                cleared++;
            }
        }

        LogCaughtUp(logger, results.Count, flags.Count, cleared);
        return results;
    }

    /// <summary>
    /// The earliest day that can be recomputed correctly at <paramref name="now"/>: its whole MAU window (the day and
    /// the 29 before it) still has its activity marks and digests, with one day's margin for a retention run during
    /// the recompute. Recomputing an earlier day would overwrite kept figures with ones missing deleted activity.
    /// </summary>
    public DateOnly FirstRecomputableDay(DateTimeOffset now) =>
        RetentionJob.FirstKeptDay(now, _options, calendar).AddDays(MauWindowDays);

    /// <summary>
    /// Computes each day of a range in order, reporting progress. The watermark (the last day the nightly catch-up
    /// knows to be computed) moves only while the range continues it without a gap: a backfill of a later day leaves the
    /// missed days before it for the catch-up to compute.
    /// </summary>
    public Task<IReadOnlyList<DayFigures>> RunRangeAsync(DateOnly from, DateOnly to, IProgress<DayFigures>? progress, CancellationToken cancellationToken)
    {
        var days = new SortedSet<DateOnly>();
        AddRange(days, from, to);
        return RunDaysAsync(days, progress, WatermarkMove.OnlyWithoutGap, cancellationToken);
    }

    /// <summary>How computing a day moves the watermark.</summary>
    private enum WatermarkMove
    {
        /// <summary>The catch-up computes every day from the watermark on (but those it can no longer recompute): each moves it.</summary>
        ToEveryDayComputed,

        /// <summary>A backfill moves it only to a day right after it, never over days left uncomputed.</summary>
        OnlyWithoutGap,
    }

    private async Task<IReadOnlyList<DayFigures>> RunDaysAsync(SortedSet<DateOnly> days, IProgress<DayFigures>? progress, WatermarkMove move, CancellationToken cancellationToken)
    {
        var results = new List<DayFigures>();
        foreach (var day in days)
        {
            var figures = await RunDayAsync(day, cancellationToken);
            results.Add(figures);
            progress?.Report(figures);
            await AdvanceWatermarkAsync(day, move, cancellationToken);
        }

        return results;
    }

    private static void AddRange(SortedSet<DateOnly> days, DateOnly from, DateOnly to)
    {
        for (var day = from; day <= to; day = day.AddDays(1))
        {
            days.Add(day);
        }
    }

    private static DateOnly Min(DateOnly a, DateOnly b) => a < b ? a : b;

    private static DateOnly Max(DateOnly a, DateOnly b) => a > b ? a : b;

    public async Task<DayFigures> RunDayAsync(DateOnly day, CancellationToken cancellationToken)
    {
        var activity = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        var users = new List<string>();
        var tally = new Tally();
        tally.RankBy("installationsSucceededByOs", "installationsStartedByOs");
        tally.RankBy("installationsFailedByOs", "installationsStartedByOs");
        tally.RankBy("installationsSucceededByVersion", "installationsStartedByVersion");
        tally.RankBy("installationsFailedByVersion", "installationsStartedByVersion");
        int activeInstances = 0, newInstances = 0, goneInactive = 0, started = 0, succeeded = 0, failed = 0, support = 0;

        await foreach (var row in activity.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {TableKeys.Day(day)}"), cancellationToken: cancellationToken))
        {
            var key = row.RowKey;
            if (key.StartsWith(ActivityStore.UserPrefix, StringComparison.Ordinal))
            {
                users.Add(key[ActivityStore.UserPrefix.Length..]);
                tally.Add("usersByVersion", row.GetString("Version"));
                tally.Add("usersByOs", row.GetString("Os"));
                tally.Add("usersBySource", row.GetString("Source"));
            }
            else if (key.StartsWith(ActivityStore.InstancePrefix, StringComparison.Ordinal))
            {
                activeInstances++;
                tally.Add("instancesByVersion", row.GetString("Version"));
                tally.Add("instancesByOs", row.GetString("Os"));
                tally.Add("instancesByEdition", row.GetString("Edition"));
                tally.Add("instancesBySource", row.GetString("Source"));
            }
            else if (key.StartsWith(ActivityStore.FirstSeenPrefix, StringComparison.Ordinal))
            {
                newInstances++;
            }
            else if (key.StartsWith(ActivityStore.GoneInactivePrefix, StringComparison.Ordinal))
            {
                goneInactive++;
            }
            else if (key.StartsWith(ActivityStore.InstallationPrefix, StringComparison.Ordinal))
            {
                // One installation, counted at most once per step: an outcome implies a start, and a success
                // overrides a failure. Marks follow this already (InstallationRecorder writes them on the start
                // day); counting this way keeps a mark written otherwise (by an earlier version) from counting
                // more outcomes than starts.
                var os = row.GetString("Os");
                var version = row.GetString("Version");
                var rowSucceeded = row.GetBoolean("Succeeded") == true;
                var rowFailed = row.GetBoolean("Failed") == true && !rowSucceeded;
                if (row.GetBoolean("Started") == true || rowSucceeded || rowFailed)
                {
                    started++;
                    tally.Add("installationsStartedByOs", os);
                    tally.Add("installationsStartedByVersion", version);
                }

                if (rowSucceeded)
                {
                    succeeded++;
                    tally.Add("installationsSucceededByOs", os);
                    tally.Add("installationsSucceededByVersion", version);
                }

                if (rowFailed)
                {
                    failed++;
                    tally.Add("installationsFailedByOs", os);
                    tally.Add("installationsFailedByVersion", version);
                }

                if (row.GetBoolean("SupportRequested") == true)
                {
                    support++;
                }
            }
        }

        var dau = await digests.BuildFromMarksAsync(day, users, cancellationToken);
        users.Clear();
        var wau = await digests.CountDistinctAsync(Window(day, 7), cancellationToken);
        var mau = await digests.CountDistinctAsync(Window(day, 30), cancellationToken);

        var figures = new DayFigures(
            day, dau, wau, mau, activeInstances, newInstances, goneInactive, started, succeeded, failed, support,
            started == 0 ? null : Math.Round((double)succeeded / started, 4),
            tally.ToDictionary(MaxBreakdownEntries),
            time.GetUtcNow());

        var stats = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        await stats.UpsertEntityAsync(ToEntity(figures), TableUpdateMode.Replace, cancellationToken);
        LogRolledUp(logger, day, dau, wau, mau, activeInstances);
        return figures;
    }

    /// <summary>Stored figures for a range of days (days never computed are absent).</summary>
    public async Task<IReadOnlyList<DayFigures>> ReadAsync(DateOnly from, DateOnly to, CancellationToken cancellationToken)
    {
        var stats = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        var results = new List<DayFigures>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StatsPartition} and RowKey ge {TableKeys.Day(from)} and RowKey le {TableKeys.Day(to)}");
        await foreach (var row in stats.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            results.Add(FromEntity(row));
        }

        return results;
    }

    private static IEnumerable<DateOnly> Window(DateOnly day, int days) =>
        Enumerable.Range(0, days).Select(offset => day.AddDays(-offset));

    private async Task<DateOnly?> EarliestActivityDayAsync(CancellationToken cancellationToken)
    {
        var activity = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        await foreach (var row in activity.QueryAsync<TableEntity>(maxPerPage: 1, select: ["PartitionKey"], cancellationToken: cancellationToken))
        {
            return TableKeys.ParseDay(row.PartitionKey);
        }

        return null;
    }

    /// <summary>
    /// Moves the watermark to <paramref name="day"/> if that is later (and, for <see cref="WatermarkMove.OnlyWithoutGap"/>,
    /// the day right after it), with If-Match so a concurrent run never moves it back.
    /// </summary>
    private async Task AdvanceWatermarkAsync(DateOnly day, WatermarkMove move, CancellationToken cancellationToken)
    {
        var stats = await storage.GetTableAsync(TableNames.DailyStats, cancellationToken);
        var advanced = new TableEntity(MetaPartition, WatermarkRow) { ["Day"] = TableKeys.Day(day) };
        for (var attempt = 1; attempt <= 8; attempt++)
        {
            var current = await stats.GetEntityIfExistsAsync<TableEntity>(MetaPartition, WatermarkRow, cancellationToken: cancellationToken);
            try
            {
                if (!current.HasValue)
                {
                    // Without a watermark the catch-up starts from the earliest activity: a backfill must not set one
                    // that would make it skip the days before the range.
                    if (move == WatermarkMove.ToEveryDayComputed)
                    {
                        await stats.AddEntityAsync(advanced, cancellationToken);
                    }

                    return;
                }

                if (current.Value!.GetString("Day") is { } existing
                    && (string.CompareOrdinal(existing, TableKeys.Day(day)) >= 0
                        || (move == WatermarkMove.OnlyWithoutGap && TableKeys.ParseDay(existing).AddDays(1) < day)))
                {
                    return;
                }

                await stats.UpdateEntityAsync(advanced, current.Value.ETag, TableUpdateMode.Replace, cancellationToken);
                return;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                // Another run wrote the watermark meanwhile: read it again and move it only if still behind.
            }
        }

        throw new StorageContentionException("The rollup watermark kept changing during 8 attempts.");
    }

    /// <summary>
    /// The day's row. Its breakdowns are JSON of up to 13 dimensions of 51 values each, values being what clients send
    /// (up to 64 characters, six times as many when escaped): more than one string property holds, so they are stored
    /// in as many as they need (at most about 220,000 characters in all, well within an entity's 1 MiB).
    /// </summary>
    private static TableEntity ToEntity(DayFigures f)
    {
        var entity = new TableEntity(StatsPartition, TableKeys.Day(f.Day))
        {
            ["Dau"] = f.Dau,
            ["Wau"] = f.Wau,
            ["Mau"] = f.Mau,
            ["ActiveInstances"] = f.ActiveInstances,
            ["NewInstances"] = f.NewInstances,
            ["InstancesGoneInactive"] = f.InstancesGoneInactive,
            ["InstallationsStarted"] = f.InstallationsStarted,
            ["InstallationsSucceeded"] = f.InstallationsSucceeded,
            ["InstallationsFailed"] = f.InstallationsFailed,
            ["SupportRequests"] = f.SupportRequests,
            ["InstallationSuccessRate"] = f.InstallationSuccessRate,
            ["ComputedAt"] = f.ComputedAt,
        };
        ChunkedText.Write(entity, "Breakdowns", JsonSerializer.Serialize(f.Breakdowns));
        return entity;
    }

    private static DayFigures FromEntity(TableEntity e) => new(
        TableKeys.ParseDay(e.RowKey),
        e.GetInt32("Dau") ?? 0,
        e.GetInt32("Wau") ?? 0,
        e.GetInt32("Mau") ?? 0,
        e.GetInt32("ActiveInstances") ?? 0,
        e.GetInt32("NewInstances") ?? 0,
        e.GetInt32("InstancesGoneInactive") ?? 0,
        e.GetInt32("InstallationsStarted") ?? 0,
        e.GetInt32("InstallationsSucceeded") ?? 0,
        e.GetInt32("InstallationsFailed") ?? 0,
        e.GetInt32("SupportRequests") ?? 0,
        e.GetDouble("InstallationSuccessRate"),
        JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, int>>>(ChunkedText.Read(e, "Breakdowns") ?? "{}")!
            .ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, int>)p.Value),
        e.GetDateTimeOffset("ComputedAt") ?? default);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Late activity for {Day:yyyy-MM-dd} cannot be recomputed (the earliest day that can is {Earliest:yyyy-MM-dd}): its figures stay as computed before")]
    private static partial void LogFlagTooOld(ILogger logger, DateOnly day, DateOnly earliest);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rollup caught up: {Days} days computed, {DirtyFlags} dirty-day flags read, {Cleared} cleared")]
    private static partial void LogCaughtUp(ILogger logger, int days, int dirtyFlags, int cleared);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rolled up {Day:yyyy-MM-dd}: DAU {Dau}, WAU {Wau}, MAU {Mau}, {Instances} active instances")]
    private static partial void LogRolledUp(ILogger logger, DateOnly day, int dau, int wau, int mau, int instances);

    /// <summary>
    /// Counts per dimension value; unknown values count as "unknown", the long tail as "other". A dimension that counts a
    /// subset of another's (installations succeeded by OS within those started by OS) keeps the values the other keeps
    /// (<see cref="RankBy"/>), so a value is never kept in one and folded into "other" in the other: succeeded + failed
    /// stays at most started for every value, "other" included.
    /// </summary>
    private sealed class Tally
    {
        private readonly Dictionary<string, Dictionary<string, int>> _counts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _rankedBy = new(StringComparer.Ordinal);

        public void Add(string dimension, string? value)
        {
            if (!_counts.TryGetValue(dimension, out var counts))
            {
                counts = new Dictionary<string, int>(StringComparer.Ordinal);
                _counts[dimension] = counts;
            }

            var key = string.IsNullOrEmpty(value) ? "unknown" : value;
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        /// <summary>Keeps in <paramref name="dimension"/> the values that <paramref name="superset"/> keeps, whatever its own ranking.</summary>
        public void RankBy(string dimension, string superset) => _rankedBy[dimension] = superset;

        public Dictionary<string, IReadOnlyDictionary<string, int>> ToDictionary(int maxEntries) =>
            _counts.ToDictionary(
                d => d.Key,
                d =>
                {
                    var kept = Top(_rankedBy.GetValueOrDefault(d.Key, d.Key), maxEntries);
                    var top = d.Value.Where(p => kept.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
                    var rest = d.Value.Where(p => !kept.Contains(p.Key)).Sum(p => p.Value);
                    if (rest > 0)
                    {
                        top["other"] = top.GetValueOrDefault("other") + rest;
                    }

                    return (IReadOnlyDictionary<string, int>)top;
                },
                StringComparer.Ordinal);

        /// <summary>The <paramref name="maxEntries"/> values of a dimension with the highest counts (ties by value).</summary>
        private HashSet<string> Top(string dimension, int maxEntries) =>
            _counts.TryGetValue(dimension, out var counts)
                ? counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Take(maxEntries).Select(p => p.Key).ToHashSet(StringComparer.Ordinal)
                : [];
    }
}
