using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// The <c>UsageRows</c> table: a report's figures, one partition per report (<c>{customerId}_{reportId}</c>) with
/// deterministic row keys, so a run that crashed half-way and its re-run leave exactly the rows of one run:
/// <list type="bullet">
/// <item><c>t_{metric}</c>: the metric's value for the whole period;</item>
/// <item><c>m_{metric}_{yyyyMM}</c>: its share of each calendar month (what monthly totals add up);</item>
/// <item><c>d_{metric}_{yyyyMMdd}</c>: per day, over all clusters and tenants;</item>
/// <item><c>s_{metric}_{hash}</c>: per cluster and tenant, over the period (names in columns, hashed in the key).</item>
/// </list>
/// The rows carry no commit flag: they count only while the report's record in <c>UsageReports</c> says processed with
/// the same content hash. Each row carries the claim (<see cref="UsageReportRecord.Claim"/>) of the run that wrote it,
/// so the rows of a report that failed can be deleted (<see cref="DeleteAbandonedAsync"/>) without touching those a
/// later claim of the same report writes. The service's readers use the processed records' figures, never these rows;
/// any other reader must join on the record.
/// </summary>
public sealed class UsageRowStore(TelemetryStorage storage, TableBatchWriter batches)
{
    public static string PartitionKey(string customerId, string reportId) => $"{customerId}_{reportId}";

    public async Task<int> WriteAsync(UsageReport report, int claim, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageRows, cancellationToken);
        var rows = Plan(report).Select(row =>
        {
            row["Claim"] = claim;
            return new TableTransactionAction(TableTransactionActionType.UpsertReplace, row);
        }).ToList();
        // One transaction at a time: the rows share one partition, which serves transactions one after another anyway.
        await batches.SubmitAsync(table, rows, cancellationToken, maxParallel: 1);
        return rows.Count;
    }

    /// <summary>
    /// Deletes the rows a failed report's runs left: those of its partition with its content and a claim no later than
    /// the failed one. A later claim (the report brought back, or a concurrent retry of the same blob that took the
    /// claim back) writes rows with a higher claim, which are never deleted, and a row rewritten after it was listed is
    /// kept (each deletion is under the If-Match of the row as listed). A run still writing under the failed claim can
    /// no longer commit (<see cref="UsageReportStore.CommitAsync"/>), so its rows are abandoned too. Returns how many.
    /// </summary>
    public async Task<int> DeleteAbandonedAsync(UsageReportRecord failed, CancellationToken cancellationToken)
    {
        if (failed.Status != UsageReportStore.Failed)
        {
            throw new ArgumentException("Only the rows of a failed report are abandoned.", nameof(failed));
        }

        var table = await storage.GetTableAsync(TableNames.UsageRows, cancellationToken);
        var abandoned = new List<TableEntity>();
        await foreach (var row in table.QueryAsync<TableEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {PartitionKey(failed.CustomerId, failed.ReportId)}"),
            select: ["PartitionKey", "RowKey", "ContentHash", "Claim"],
            cancellationToken: cancellationToken))
        {
            if (row.GetString("ContentHash") == failed.ContentHash && (row.GetInt32("Claim") ?? 0) <= failed.Claim)
            {
                abandoned.Add(row);
            }
        }

        var deleted = 0;
        foreach (var chunk in abandoned.Chunk(TableBatchWriter.MaxOperationsPerTransaction))
        {
            try
            {
                await batches.SubmitTransactionAsync(table, [.. chunk.Select(row => new TableTransactionAction(TableTransactionActionType.Delete, row, row.ETag))], [404, 412], cancellationToken);
                deleted += chunk.Length;
            }
            catch (TableTransactionFailedException e) when (e.Status is 404 or 412)
            {
                // One of them was rewritten (by a later claim) or deleted meanwhile: the rest one by one.
                foreach (var row in chunk)
                {
                    try
                    {
                        await table.DeleteEntityAsync(row.PartitionKey, row.RowKey, row.ETag, cancellationToken);
                        deleted++;
                    }
                    catch (RequestFailedException single) when (single.Status is 404 or 412)
                    {
                    }
                }
            }
        }

        return deleted;
    }

    public async Task<List<TableEntity>> ReadAsync(string customerId, string reportId, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageRows, cancellationToken);
        var rows = new List<TableEntity>();
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {PartitionKey(customerId, reportId)}"), cancellationToken: cancellationToken))
        {
            rows.Add(row);
        }

        return rows;
    }

    public static IEnumerable<TableEntity> Plan(UsageReport report)
    {
        var partition = PartitionKey(report.CustomerId, report.ReportId);
        foreach (var metric in report.Metrics)
        {
            var aggregation = metric.Aggregation == MetricAggregation.Sum ? "sum" : "max";
            yield return Row(partition, $"t_{metric.Name}", report, metric.Name, metric.Value, aggregation, "period");
            foreach (var (month, value) in metric.Months)
            {
                var row = Row(partition, $"m_{metric.Name}_{month}", report, metric.Name, value, aggregation, "month");
                row["Month"] = $"{month[..4]}-{month[4..]}";
                yield return row;
            }

            foreach (var (day, value) in metric.Days)
            {
                var row = Row(partition, $"d_{metric.Name}_{TableKeys.Day(day)}", report, metric.Name, value, aggregation, "day");
                row["Day"] = day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
                yield return row;
            }

            foreach (var (scope, value) in metric.Scopes)
            {
                var row = Row(partition, $"s_{metric.Name}_{UsageReportKeys.Scope(scope)}", report, metric.Name, value, aggregation, "scope");
                row["Cluster"] = scope.Cluster;
                row["Tenant"] = scope.Tenant;
                yield return row;
            }
        }
    }

    private static TableEntity Row(string partition, string rowKey, UsageReport report, string metric, long value, string aggregation, string kind) => new(partition, rowKey)
    {
        ["Kind"] = kind,
        ["Metric"] = metric,
        ["Value"] = value,
        ["Aggregation"] = aggregation,
        ["ReportId"] = report.ReportId,
        ["ContentHash"] = report.ContentHash,
    };
}
