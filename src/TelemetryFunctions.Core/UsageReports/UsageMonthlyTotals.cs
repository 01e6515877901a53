using System.Globalization;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// A customer's use of a metric in a calendar month (UTC), with what they purchased. <see cref="Value"/> (and so
/// <see cref="Overage"/>) is null when the month's reports add up beyond what can be counted; <see cref="Problem"/> says so.
/// </summary>
public sealed record MonthlyUsage(string CustomerId, string Metric, string Month, long? Value, string Aggregation, int Reports, long? Entitlement, long? Overage, DateTimeOffset? ComputedAt, string? Problem = null);

/// <summary>
/// The <c>UsageMonthly</c> table: PartitionKey customer id, RowKey <c>{yyyyMM}_{metric}</c>, plus a <c>{yyyyMM}</c>
/// head row per month. A month is always recomputed from the processed reports (never incremented), so recomputing
/// twice, or after a crash, gives the same figures. The head row is written under If-Match in the same transaction as
/// the month's rows: a recompute that read before another report was committed cannot overwrite the newer figures.
/// Counts add up across reports; distinct counts (<see cref="MetricAggregation.Max"/>) take each installation's
/// largest report of the month and add up installations. Each report's figures are at most
/// <see cref="ReportDocumentParser.MaxValue"/> (10^15), but nothing bounds how many reports a month has, so the sums
/// are checked: a month whose reports add up beyond a long is stated as not countable, with the reason, as the reader
/// refuses a report whose figures do, rather than failing every recompute of the month.
/// </summary>
public sealed class UsageMonthlyTotals(TelemetryStorage storage, TableBatchWriter batches, UsageReportStore reports, IOptions<UsageReportOptions> options, TimeProvider time)
{
    private const int MaxRaces = 16;

    public async Task RecomputeAsync(string customerId, IEnumerable<string> months, CancellationToken cancellationToken)
    {
        foreach (var month in months.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            await RecomputeMonthAsync(customerId, month, cancellationToken);
        }
    }

    public async Task<IReadOnlyList<MonthlyUsage>> RecomputeMonthAsync(string customerId, string month, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageMonthly, cancellationToken);
        var start = new DateTimeOffset(DateTime.ParseExact(month, "yyyyMM", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal), TimeSpan.Zero);
        var customer = options.Value.FindCustomer(customerId);
        for (var race = 0; race < MaxRaces; race++)
        {
            var head = await table.GetEntityIfExistsAsync<TableEntity>(customerId, month, cancellationToken: cancellationToken);
            var processed = await reports.ProcessedOverlappingAsync(customerId, start, start.AddMonths(1), cancellationToken);

            var sums = new SortedDictionary<string, long?>(StringComparer.Ordinal);
            var peaks = new SortedDictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var report in processed)
            {
                if (report.Months?[month] is not JsonObject perMetric)
                {
                    continue;
                }

                foreach (var (metric, node) in perMetric)
                {
                    var value = node!.GetValue<long>();
                    counts[metric] = counts.GetValueOrDefault(metric) + 1;
                    if (options.Value.AggregationOf(metric) == MetricAggregation.Sum)
                    {
                        // Null once the sum has gone beyond what can be counted, and null it stays.
                        sums[metric] = sums.TryGetValue(metric, out var sum) ? Add(sum, value) : value;
                    }
                    else
                    {
                        if (!peaks.TryGetValue(metric, out var byInstallation))
                        {
                            peaks[metric] = byInstallation = new Dictionary<string, long>(StringComparer.Ordinal);
                        }

                        // By the id as UsageReportKeys.Installation compares it, not the stored key: a record claimed
                        // before ids were compared ignoring case and invisible characters, or Unicode-normalized, has
                        // the hash of the id as written.
                        var installation = UsageReportKeys.Installation(report.InstallationId);
                        byInstallation[installation] = Math.Max(byInstallation.GetValueOrDefault(installation), value);
                    }
                }
            }

            foreach (var (metric, byInstallation) in peaks)
            {
                sums[metric] = byInstallation.Values.Aggregate((long?)0, Add);
            }

            var now = time.GetUtcNow();
            var figures = sums.Select(s =>
            {
                var entitlement = customer?.EntitlementOf(s.Key);
                return new MonthlyUsage(
                    customerId, s.Key, Display(month), s.Value, options.Value.AggregationOf(s.Key) == MetricAggregation.Sum ? "sum" : "max",
                    counts[s.Key], entitlement, Overage(s.Value, entitlement), now,
                    s.Value is null ? $"The reports of {Display(month)} add up to more {s.Key} than can be counted (over {long.MaxValue}); their figures need checking." : null);
            }).ToList();

            var rows = figures.Select(f => new TableTransactionAction(TableTransactionActionType.UpsertReplace, ToEntity(f, month))).ToList();
            var headRow = new TableEntity(customerId, month)
            {
                ["Version"] = head.HasValue ? (head.Value!.GetInt64("Version") ?? 0) + 1 : 1,
                ["Reports"] = processed.Count,
                ["ComputedAt"] = now,
            };
            var headAction = head.HasValue
                ? new TableTransactionAction(TableTransactionActionType.UpdateReplace, headRow, head.Value!.ETag)
                : new TableTransactionAction(TableTransactionActionType.Add, headRow);

            try
            {
                // The head's 409 or 412 is an expected race (read again below), not a refusal to log.
                if (rows.Count < TableBatchWriter.MaxOperationsPerTransaction)
                {
                    await batches.SubmitTransactionAsync(table, [.. rows, headAction], [409, 412], cancellationToken);
                }
                else
                {
                    // Too many metrics for one transaction: rows first, then the head under If-Match. A stale writer's rows
                    // are overwritten by its own retry, which its failed head write forces.
                    await batches.SubmitAsync(table, rows, cancellationToken);
                    await batches.SubmitTransactionAsync(table, [headAction], [409, 412], cancellationToken);
                }

                return figures;
            }
            catch (Exception e) when (e is TableTransactionFailedException { Status: 409 or 412 } or RequestFailedException { Status: 409 or 412 })
            {
                // Another recompute of this month got in between: read again.
            }
        }

        throw new StorageContentionException($"Could not recompute monthly usage: other recomputes of the month kept getting in first through {MaxRaces} attempts.");
    }

    /// <summary>
    /// Monthly usage of one customer (or all) for months <paramref name="from"/>..<paramref name="to"/> (<c>yyyyMM</c>,
    /// inclusive; <paramref name="to"/> before 9999-12, whose next month does not exist: GET /api/usage refuses it).
    /// </summary>
    public async Task<List<MonthlyUsage>> ReadAsync(string? customerId, string from, string to, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageMonthly, cancellationToken);
        var next = DateTime.ParseExact(to, "yyyyMM", CultureInfo.InvariantCulture).AddMonths(1).ToString("yyyyMM", CultureInfo.InvariantCulture);
        var filter = customerId is null
            ? TableClient.CreateQueryFilter($"RowKey ge {from} and RowKey lt {next}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {customerId} and RowKey ge {from} and RowKey lt {next}");
        var result = new List<MonthlyUsage>();
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            if (row.GetString("Metric") is not { } metric)
            {
                continue;
            }

            var problem = row.GetString("Problem");
            result.Add(new MonthlyUsage(
                row.PartitionKey,
                metric,
                row.GetString("Month") ?? Display(row.RowKey[..6]),
                problem is null ? row.GetInt64("Value") ?? 0 : null,
                row.GetString("Aggregation") ?? "sum",
                row.GetInt32("Reports") ?? 0,
                row.GetInt64("Entitlement"),
                row.GetInt64("Overage"),
                row.GetDateTimeOffset("ComputedAt"),
                problem));
        }

        return result;
    }

    public static string Display(string month) => $"{month[..4]}-{month[4..]}";

    /// <summary>Usage above the entitlement; null without an entitlement, or without a countable figure.</summary>
    public static long? Overage(long? value, long? entitlement) => value is { } v && entitlement is { } e ? Math.Max(0, v - e) : null;

    /// <summary>The sum, or null when it goes beyond what a long can count (or <paramref name="sum"/> already did).</summary>
    private static long? Add(long? sum, long value)
    {
        try
        {
            return sum is { } s ? checked(s + value) : null;
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private static TableEntity ToEntity(MonthlyUsage usage, string month) => new(usage.CustomerId, $"{month}_{usage.Metric}")
    {
        ["Metric"] = usage.Metric,
        ["Month"] = usage.Month,
        ["Value"] = usage.Value,
        ["Aggregation"] = usage.Aggregation,
        ["Reports"] = usage.Reports,
        ["Entitlement"] = usage.Entitlement,
        ["Overage"] = usage.Overage,
        ["ComputedAt"] = usage.ComputedAt,
        ["Problem"] = usage.Problem,
    };
}
