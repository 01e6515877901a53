using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>A report's record: its claim on the report id and, once processed, the commit marker readers require.</summary>
public sealed record UsageReportRecord(
    string CustomerId,
    string ReportId,
    string Status,
    string ContentHash,
    string InstallationId,
    string InstallationKey,
    DateTimeOffset PeriodStart,
    DateTimeOffset PeriodEnd,
    string Blob,
    JsonObject? Figures,
    JsonObject? Months,
    DateTimeOffset? ProcessedAt,
    IReadOnlyList<string> Reasons,
    ETag ETag);

public enum ClaimOutcome
{
    /// <summary>The report id is this report's now (or was already, by an earlier run of the same content): write its rows.</summary>
    Claimed,

    /// <summary>The same content is already processed: nothing to write.</summary>
    AlreadyCommitted,

    /// <summary>The report id was first received with different content, which is kept.</summary>
    Conflict,

    /// <summary>Another report of the same installation covers part of the period.</summary>
    Overlap,
}

public sealed record ClaimResult(ClaimOutcome Outcome, UsageReportRecord? Existing, ETag ClaimETag);

/// <summary>
/// The <c>UsageReports</c> table: PartitionKey customer id, RowKey <c>r_{reportId}</c>, plus one <c>head</c> row per
/// customer. A report is claimed (status <c>pending</c>) before its rows are written and marked <c>processed</c>, with
/// its figures, after they all are: readers count only processed reports, so a report's rows become visible together.
/// Claims are serialized per customer by an entity-group transaction that also bumps the head row under If-Match, so
/// two reports with the same id, or overlapping periods of one installation, cannot both get in.
/// </summary>
public sealed class UsageReportStore(TelemetryStorage storage, TimeProvider time)
{
    public const string Pending = "pending";
    public const string Processed = "processed";
    public const string Failed = "failed";
    private const string Head = "head";
    private const string RowPrefix = "r_";
    private const int MaxRaces = 16;

    public static string RowKey(string reportId) => RowPrefix + reportId;

    public async Task<UsageReportRecord?> GetAsync(string customerId, string reportId, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var row = await table.GetEntityIfExistsAsync<TableEntity>(customerId, RowKey(reportId), cancellationToken: cancellationToken);
        return row.HasValue ? FromEntity(row.Value!) : null;
    }

    public async Task<ClaimResult> ClaimAsync(UsageReport report, string blobName, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var installationKey = UsageReportKeys.Hash(report.InstallationId);
        for (var race = 0; race < MaxRaces; race++)
        {
            var head = await table.GetEntityIfExistsAsync<TableEntity>(report.CustomerId, Head, cancellationToken: cancellationToken);
            var existing = await GetAsync(report.CustomerId, report.ReportId, cancellationToken);
            if (existing is not null)
            {
                if (!string.Equals(existing.ContentHash, report.ContentHash, StringComparison.Ordinal))
                {
                    return new ClaimResult(ClaimOutcome.Conflict, existing, default);
                }

                if (existing.Status == Processed)
                {
                    return new ClaimResult(ClaimOutcome.AlreadyCommitted, existing, existing.ETag);
                }

                if (existing.Status == Pending)
                {
                    return new ClaimResult(ClaimOutcome.Claimed, existing, existing.ETag);
                }

                // Otherwise an earlier run of the same content gave up (failed) and this one takes the claim back: like a
                // new claim, only if no other report of the installation has covered the period meanwhile.
            }

            var overlapping = await FindOverlapAsync(table, report, installationKey, cancellationToken);
            if (overlapping is not null)
            {
                return new ClaimResult(ClaimOutcome.Overlap, overlapping, default);
            }

            TableTransactionAction claimAction;
            if (existing is not null)
            {
                var resumed = new TableEntity(report.CustomerId, RowKey(report.ReportId))
                {
                    ["Status"] = Pending,
                    ["Blob"] = blobName,
                    ["ClaimedAt"] = time.GetUtcNow(),
                    ["Reasons"] = "[]",
                };
                claimAction = new(TableTransactionActionType.UpdateMerge, resumed, existing.ETag);
            }
            else
            {
                var claim = new TableEntity(report.CustomerId, RowKey(report.ReportId))
                {
                    ["Status"] = Pending,
                    ["ContentHash"] = report.ContentHash,
                    ["InstallationId"] = report.InstallationId,
                    ["InstallationKey"] = installationKey,
                    ["PeriodStart"] = report.PeriodStart.ToUniversalTime(),
                    ["PeriodEnd"] = report.PeriodEnd.ToUniversalTime(),
                    ["Blob"] = blobName,
                    ["ProductName"] = report.ProductName,
                    ["ProductVersion"] = report.ProductVersion,
                    ["GeneratedAt"] = report.GeneratedAt.ToUniversalTime(),
                    ["ClaimedAt"] = time.GetUtcNow(),
                    ["Reasons"] = "[]",
                };
                claimAction = new(TableTransactionActionType.Add, claim);
            }

            var version = head.HasValue ? (head.Value!.GetInt64("Version") ?? 0) + 1 : 1;
            var headRow = new TableEntity(report.CustomerId, Head) { ["Version"] = version };
            var actions = new List<TableTransactionAction>
            {
                claimAction,
                head.HasValue
                    ? new(TableTransactionActionType.UpdateReplace, headRow, head.Value!.ETag)
                    : new(TableTransactionActionType.Add, headRow),
            };

            try
            {
                var response = await table.SubmitTransactionAsync(actions, cancellationToken);
                var etag = response.Value.Count > 0 ? response.Value[0].Headers.ETag ?? default : default;
                if (etag == default)
                {
                    etag = (await GetAsync(report.CustomerId, report.ReportId, cancellationToken))?.ETag ?? default;
                }

                return new ClaimResult(ClaimOutcome.Claimed, null, etag);
            }
            catch (TableTransactionFailedException e) when (e.Status is 409 or 412)
            {
                // Another claim of this customer got in first, the failed claim changed (or our own claim's response was
                // lost): look again.
            }
        }

        throw new InvalidOperationException($"Could not claim a usage report after {MaxRaces} concurrent attempts.");
    }

    /// <summary>Marks the report processed with its figures: from now on readers count it.</summary>
    public async Task CommitAsync(UsageReport report, ETag claimETag, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var etag = claimETag;
        for (var race = 0; race < MaxRaces; race++)
        {
            var marker = new TableEntity(report.CustomerId, RowKey(report.ReportId))
            {
                ["Status"] = Processed,
                ["Figures"] = Figures(report).ToJsonString(),
                ["Months"] = Months(report).ToJsonString(),
                ["ProcessedAt"] = time.GetUtcNow(),
                ["Reasons"] = "[]",
            };
            try
            {
                await table.UpdateEntityAsync(marker, etag == default ? ETag.All : etag, TableUpdateMode.Merge, cancellationToken);
                return;
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                var current = await GetAsync(report.CustomerId, report.ReportId, cancellationToken)
                    ?? throw new InvalidOperationException("A claimed usage report disappeared before its commit.");
                if (current.ContentHash != report.ContentHash)
                {
                    throw new InvalidOperationException("A claimed usage report changed its content before its commit.");
                }

                if (current.Status == Processed)
                {
                    return;
                }

                etag = current.ETag;
            }
        }

        throw new InvalidOperationException($"Could not commit a usage report after {MaxRaces} concurrent attempts.");
    }

    /// <summary>Records that processing gave up; a processed report is left alone.</summary>
    public async Task MarkFailedAsync(string customerId, string reportId, IReadOnlyList<string> reasons, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        for (var race = 0; race < MaxRaces; race++)
        {
            var current = await GetAsync(customerId, reportId, cancellationToken);
            if (current is null || current.Status == Processed)
            {
                return;
            }

            try
            {
                await table.UpdateEntityAsync(
                    new TableEntity(customerId, RowKey(reportId)) { ["Status"] = Failed, ["Reasons"] = ReasonsJson(reasons) },
                    current.ETag,
                    TableUpdateMode.Merge,
                    cancellationToken);
                return;
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
            }
        }
    }

    /// <summary>Replaces the reasons of a failed report (brought back, then refused): its record says why it is not counted.</summary>
    public async Task RecordRefusalAsync(string customerId, string reportId, IReadOnlyList<string> reasons, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        for (var race = 0; race < MaxRaces; race++)
        {
            var current = await GetAsync(customerId, reportId, cancellationToken);
            if (current is not { Status: Failed })
            {
                return;
            }

            try
            {
                await table.UpdateEntityAsync(
                    new TableEntity(customerId, RowKey(reportId)) { ["Reasons"] = ReasonsJson(reasons) },
                    current.ETag,
                    TableUpdateMode.Merge,
                    cancellationToken);
                return;
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
            }
        }
    }

    /// <summary>Processed reports of a customer whose period overlaps [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public async Task<List<UsageReportRecord>> ProcessedOverlappingAsync(string customerId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {customerId} and RowKey ge {RowPrefix} and RowKey lt {"r`"} and Status eq {Processed} and PeriodStart lt {to.ToUniversalTime()} and PeriodEnd gt {from.ToUniversalTime()}");
        var records = new List<UsageReportRecord>();
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            records.Add(FromEntity(row));
        }

        return records;
    }

    public static JsonObject Figures(UsageReport report) => new()
    {
        ["metrics"] = new JsonArray([.. report.Metrics.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Name,
            ["value"] = m.Value,
            ["aggregation"] = m.Aggregation == MetricAggregation.Sum ? "sum" : "max",
            ["days"] = m.Days.Count,
            ["scopes"] = m.Scopes.Count,
        })]),
    };

    /// <summary><c>{"202601": {"process-instances": 1200}}</c>: each metric's share of each month.</summary>
    public static JsonObject Months(UsageReport report)
    {
        var months = new JsonObject();
        foreach (var metric in report.Metrics)
        {
            foreach (var (month, value) in metric.Months)
            {
                if (months[month] is not JsonObject perMetric)
                {
                    perMetric = [];
                    months[month] = perMetric;
                }

                perMetric[metric.Name] = value;
            }
        }

        return months;
    }

    public static string ReasonsJson(IEnumerable<string> reasons) => new JsonArray([.. reasons.Select(r => (JsonNode)JsonValue.Create(r))]).ToJsonString();

    public static IReadOnlyList<string> ParseReasons(string? json)
    {
        if (string.IsNullOrEmpty(json) || JsonNode.Parse(json) is not JsonArray array)
        {
            return [];
        }

        return [.. array.Select(r => r?.GetValue<string>() ?? "")];
    }

    private static async Task<UsageReportRecord?> FindOverlapAsync(TableClient table, UsageReport report, string installationKey, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {report.CustomerId} and RowKey ge {RowPrefix} and RowKey lt {"r`"} and InstallationKey eq {installationKey} and PeriodStart lt {report.PeriodEnd.ToUniversalTime()} and PeriodEnd gt {report.PeriodStart.ToUniversalTime()}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            var record = FromEntity(row);
            if (record.ReportId != report.ReportId && record.Status != Failed)
            {
                return record;
            }
        }

        return null;
    }

    private static UsageReportRecord FromEntity(TableEntity row) => new(
        row.PartitionKey,
        row.RowKey[RowPrefix.Length..],
        row.GetString("Status") ?? Pending,
        row.GetString("ContentHash") ?? "",
        row.GetString("InstallationId") ?? "",
        row.GetString("InstallationKey") ?? "",
        row.GetDateTimeOffset("PeriodStart") ?? default,
        row.GetDateTimeOffset("PeriodEnd") ?? default,
        row.GetString("Blob") ?? "",
        row.GetString("Figures") is { Length: > 0 } figures ? JsonNode.Parse(figures) as JsonObject : null,
        row.GetString("Months") is { Length: > 0 } months ? JsonNode.Parse(months) as JsonObject : null,
        row.GetDateTimeOffset("ProcessedAt"),
        ParseReasons(row.GetString("Reasons")),
        row.ETag);
}
