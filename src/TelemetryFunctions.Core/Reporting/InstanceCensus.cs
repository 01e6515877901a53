using System.Collections.Concurrent;
using System.Globalization;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Reporting;

/// <summary>The fleet as the Instances table holds it at one moment.</summary>
public sealed record InstanceCensusResult(
    DateTimeOffset AsOf,
    int Active,
    int Inactive,
    int NewLast7Days,
    int GoneInactiveLast7Days,
    IReadOnlyList<InstanceGroup> ByVersion,
    IReadOnlyList<InstanceGroup> ByOs);

/// <summary>
/// Counts the instance registry now: active and inactive (as the last sweep left them), by version and OS, and
/// how many were first seen or went inactive (and stayed so) in the last 7 days. It reads every instance row,
/// selecting only the five columns it needs, its 256 partitions 16 at a time; at a million instances that is
/// about a thousand pages of a thousand rows. The result is kept for <see cref="ReportingOptions.InstanceCountCacheFor"/>
/// (a minute) and concurrent callers share one scan, so a dashboard open in many browsers costs one scan a minute.
/// </summary>
public sealed class InstanceCensus(TelemetryStorage storage, TimeProvider time, IOptions<ReportingOptions> options)
{
    private readonly TimeSpan _cacheFor = options.Value.InstanceCountCacheFor;
    private static readonly string[] Columns = ["Status", "Version", "Os", "FirstSeen", "StatusChangedAt"];
    private readonly Lock _lock = new();
    private Task<InstanceCensusResult>? _current;

    public Task<InstanceCensusResult> CountAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var current = _current;
            if (current is null || current.IsFaulted || current.IsCanceled
                || (current.IsCompletedSuccessfully && time.GetUtcNow() - current.Result.AsOf >= _cacheFor))
            {
                // The scan is shared, so it does not stop when the caller that started it goes away.
                current = ScanAsync(CancellationToken.None);
                _current = current;
            }

            return current.WaitAsync(cancellationToken);
        }
    }

    private async Task<InstanceCensusResult> ScanAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var weekAgo = now.AddDays(-7);
        var table = await storage.GetTableAsync(TableNames.Instances, cancellationToken);
        var byVersion = new ConcurrentDictionary<string, Counts>(StringComparer.Ordinal);
        var byOs = new ConcurrentDictionary<string, Counts>(StringComparer.Ordinal);
        var totals = new Counts();
        int fresh = 0, gone = 0;

        var buckets = Enumerable.Range(0, 256).Select(b => b.ToString("x2", CultureInfo.InvariantCulture));
        await Parallel.ForEachAsync(
            buckets,
            new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
            async (bucket, token) =>
            {
                var filter = TableClient.CreateQueryFilter($"PartitionKey eq {bucket}");
                await foreach (var row in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: Columns, cancellationToken: token))
                {
                    var active = (row.GetString("Status") ?? InstanceRegistry.Active) == InstanceRegistry.Active;
                    totals.Add(active);
                    byVersion.GetOrAdd(Label(row.GetString("Version")), _ => new Counts()).Add(active);
                    byOs.GetOrAdd(Label(row.GetString("Os")), _ => new Counts()).Add(active);
                    if (row.GetDateTimeOffset("FirstSeen") is { } firstSeen && firstSeen >= weekAgo)
                    {
                        Interlocked.Increment(ref fresh);
                    }

                    if (!active && row.GetDateTimeOffset("StatusChangedAt") is { } changed && changed >= weekAgo)
                    {
                        Interlocked.Increment(ref gone);
                    }
                }
            });

        return new InstanceCensusResult(now, totals.Active, totals.Inactive, fresh, gone, Groups(byVersion), Groups(byOs));
    }

    private static string Label(string? value) => string.IsNullOrEmpty(value) ? "unknown" : value;

    private static List<InstanceGroup> Groups(ConcurrentDictionary<string, Counts> counts) =>
        [.. counts
            .Select(p => new InstanceGroup(p.Key, p.Value.Active, p.Value.Inactive, p.Value.Active + p.Value.Inactive))
            .OrderByDescending(g => g.Total)
            .ThenBy(g => g.Value, StringComparer.Ordinal)];

    private sealed class Counts
    {
        private int _active;
        private int _inactive;

        public int Active => Volatile.Read(ref _active);

        public int Inactive => Volatile.Read(ref _inactive);

        public void Add(bool active)
        {
            if (active)
            {
                Interlocked.Increment(ref _active);
            }
            else
            {
                Interlocked.Increment(ref _inactive);
            }
        }
    }
}
