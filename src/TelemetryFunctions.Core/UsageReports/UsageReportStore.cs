using System.Globalization;
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
    DateTimeOffset PeriodStart,
    DateTimeOffset PeriodEnd,
    string Blob,
    JsonObject? Figures,
    JsonObject? Months,
    DateTimeOffset? ProcessedAt,
    IReadOnlyList<string> Reasons,
    ETag ETag)
{
    /// <summary>
    /// Which claim on the report id this is: 1 for the first, one more each time the id is claimed again after a failure
    /// (by the same report, or by other content taking the failed one's place). The rows a run writes carry it, so the
    /// rows of a given-up claim can be told from those of a later one.
    /// </summary>
    public int Claim { get; init; }

    /// <summary>When processing last gave up (status failed).</summary>
    public DateTimeOffset? FailedAt { get; init; }

    /// <summary>The rows of this failed claim (and of earlier ones) were deleted.</summary>
    public bool RowsDeleted { get; init; }

    /// <summary>
    /// The ETag of the upload of <see cref="Blob"/> that claimed the report id (or last took the pending claim up again):
    /// a blob name is reused by a later upload, whose give-up must not take this claim for its own. Null in a record
    /// claimed before the claim kept it.
    /// </summary>
    public string? BlobETag { get; init; }

    /// <summary>
    /// Whether this claim was made (or taken up again) by the upload of <paramref name="blobName"/> whose ETag is
    /// <paramref name="blobETag"/> (as the ledger keeps it, <see cref="UsageBlobLedger.Normalize"/>). Never for a record
    /// without <see cref="BlobETag"/>: a blob name alone does not say which upload claimed.
    /// </summary>
    public bool IsClaimOf(string blobName, string blobETag) =>
        Blob == blobName && BlobETag is { Length: > 0 } claimedBy && claimedBy == blobETag;
}

public enum ClaimOutcome
{
    /// <summary>The report id is this report's now (or was already, by an earlier run of the same content): write its rows.</summary>
    Claimed,

    /// <summary>The same content is already processed: nothing to write.</summary>
    AlreadyCommitted,

    /// <summary>The report id is held by different content, counted (processed) or being processed (pending); a failed report holds it for nobody.</summary>
    Conflict,

    /// <summary>Another report of the same installation covers part of the period.</summary>
    Overlap,
}

/// <summary>How a claim ended; <c>Claim</c> is the claim this run holds (<see cref="UsageReportRecord.Claim"/>): its rows carry it, and it commits only while the record still holds it.</summary>
public sealed record ClaimResult(ClaimOutcome Outcome, UsageReportRecord? Existing, ETag ClaimETag, int Claim = 0);

/// <summary>
/// The <c>UsageReports</c> table: PartitionKey customer id, RowKey <c>r_{reportId}</c>, plus one <c>head</c> row per
/// customer. A report is claimed (status <c>pending</c>) before its rows are written and marked <c>processed</c>, with
/// its figures, after they all are: readers count only processed reports, so a report's rows become visible together.
/// Claims are serialized per customer by an entity-group transaction that also bumps the head row under If-Match, so
/// two reports with the same id, or overlapping periods of one installation, cannot both get in. A row that concurrent
/// writers keep changing through every attempt throws <see cref="StorageContentionException"/> (retry later).
/// </summary>
public sealed class UsageReportStore(TelemetryStorage storage, TableBatchWriter batches, TimeProvider time)
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

    /// <summary>
    /// Claims the report id for <paramref name="report"/>, read from the upload of <paramref name="blobName"/> whose ETag is
    /// <paramref name="blobETag"/>. A pending claim of the same content that another upload made is taken up: the record
    /// then names this upload, whose give-up is the one that can fail it (the other upload's ledger entry is gone when it
    /// was an earlier upload under the same name).
    /// </summary>
    public async Task<ClaimResult> ClaimAsync(UsageReport report, string blobName, ETag blobETag, CancellationToken cancellationToken)
    {
        var upload = UsageBlobLedger.Normalize(blobETag);
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var installationKey = UsageReportKeys.Installation(report.InstallationId);
        for (var race = 0; race < MaxRaces; race++)
        {
            var head = await table.GetEntityIfExistsAsync<TableEntity>(report.CustomerId, Head, cancellationToken: cancellationToken);
            var existing = await GetAsync(report.CustomerId, report.ReportId, cancellationToken);
            if (existing is not null && existing.Status != Failed)
            {
                if (!string.Equals(existing.ContentHash, report.ContentHash, StringComparison.Ordinal))
                {
                    return new ClaimResult(ClaimOutcome.Conflict, existing, default);
                }

                if (existing.Status == Processed)
                {
                    return new ClaimResult(ClaimOutcome.AlreadyCommitted, existing, existing.ETag);
                }

                if (existing.IsClaimOf(blobName, upload))
                {
                    return new ClaimResult(ClaimOutcome.Claimed, existing, existing.ETag, existing.Claim);
                }

                try
                {
                    var response = await table.UpdateEntityAsync(
                        new TableEntity(report.CustomerId, RowKey(report.ReportId)) { ["Blob"] = blobName, ["BlobETag"] = upload },
                        existing.ETag,
                        TableUpdateMode.Merge,
                        cancellationToken);
                    return new ClaimResult(ClaimOutcome.Claimed, existing with { Blob = blobName, BlobETag = upload }, response.Headers.ETag ?? default, existing.Claim);
                }
                catch (RequestFailedException e) when (e.Status == 412)
                {
                    // The record changed meanwhile (committed, given up, taken up by another run): look again.
                    continue;
                }
            }

            // No record, or the report id's report failed (it was never counted): this report claims the id like a new
            // one, only if no other report of the installation has covered the period meanwhile. The same content takes
            // its claim back; other content (a regenerated report) takes the failed one's place.

            var overlapping = await FindOverlapAsync(table, report, installationKey, cancellationToken);
            if (overlapping is not null)
            {
                return new ClaimResult(ClaimOutcome.Overlap, overlapping, default);
            }

            var claimNumber = existing is null ? 1 : existing.Claim + 1;
            var claim = new TableEntity(report.CustomerId, RowKey(report.ReportId))
            {
                ["Status"] = Pending,
                ["Claim"] = claimNumber,
                ["ContentHash"] = report.ContentHash,
                ["InstallationId"] = report.InstallationId,
                ["InstallationKey"] = installationKey,
                ["PeriodStart"] = report.PeriodStart.ToUniversalTime(),
                ["PeriodEnd"] = report.PeriodEnd.ToUniversalTime(),
                ["Blob"] = blobName,
                ["BlobETag"] = upload,
                ["ProductName"] = report.ProductName,
                ["ProductVersion"] = report.ProductVersion,
                ["GeneratedAt"] = report.GeneratedAt.ToUniversalTime(),
                ["ClaimedAt"] = time.GetUtcNow(),
                ["Reasons"] = "[]",
            };
            // A failed record is replaced whole, under If-Match: it carries the content, installation and period of
            // whichever report now claims the id, and nothing of the failed claim but its number, counted on.
            TableTransactionAction claimAction = existing is null
                ? new(TableTransactionActionType.Add, claim)
                : new(TableTransactionActionType.UpdateReplace, claim, existing.ETag);

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
                var response = await batches.SubmitTransactionAsync(table, actions, [409, 412], cancellationToken);
                var etag = response.Value.Count > 0 ? response.Value[0].Headers.ETag ?? default : default;
                if (etag == default)
                {
                    etag = (await GetAsync(report.CustomerId, report.ReportId, cancellationToken))?.ETag ?? default;
                }

                return new ClaimResult(ClaimOutcome.Claimed, null, etag, claimNumber);
            }
            catch (TableTransactionFailedException e) when (e.Status is 409 or 412)
            {
                // Another claim of this customer got in first, the failed claim changed (or our own claim's response was
                // lost): look again.
            }
        }

        throw new StorageContentionException($"Could not claim a usage report: other claims of the customer kept getting in first through {MaxRaces} attempts.");
    }

    /// <summary>
    /// Marks the report processed with its figures: from now on readers count it. Only while the record still holds
    /// <paramref name="claim"/>: a claim given up meanwhile (quarantined as failed by another run, its rows deleted)
    /// or taken over by a later run is not this run's to commit.
    /// </summary>
    public async Task CommitAsync(UsageReport report, ETag claimETag, int claim, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var etag = claimETag;
        var figures = Figures(report).ToJsonString();
        var months = Months(report).ToJsonString();
        for (var race = 0; race < MaxRaces; race++)
        {
            var marker = new TableEntity(report.CustomerId, RowKey(report.ReportId))
            {
                ["Status"] = Processed,
                ["ProcessedAt"] = time.GetUtcNow(),
                ["Reasons"] = "[]",
            };
            ChunkedText.Write(marker, "Figures", figures);
            ChunkedText.Write(marker, "Months", months);
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
                    // Another run of the same content committed first: the report is counted.
                    return;
                }

                if (current.Status != Pending || current.Claim != claim)
                {
                    throw new StorageContentionException(
                        $"A usage report's claim was given up or taken over by another run (status {current.Status}, claim {current.Claim}, this run's {claim}) before this run's commit; a retry claims it again.");
                }

                etag = current.ETag;
            }
        }

        throw new StorageContentionException($"Could not commit a usage report: its record kept changing through {MaxRaces} attempts.");
    }

    /// <summary>
    /// Records that processing gave up, and returns the failed record (with the claim whose rows are now abandoned);
    /// null when there is nothing to fail: no record, a processed one, which is left alone, or one of other content than
    /// <paramref name="contentHash"/> (when known), which took the id over from an earlier failure and is not this run's.
    /// </summary>
    public async Task<UsageReportRecord?> MarkFailedAsync(string customerId, string reportId, string? contentHash, IReadOnlyList<string> reasons, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        for (var race = 0; race < MaxRaces; race++)
        {
            var current = await GetAsync(customerId, reportId, cancellationToken);
            if (current is null || current.Status == Processed || (contentHash is not null && current.ContentHash != contentHash))
            {
                return null;
            }

            var now = time.GetUtcNow();
            try
            {
                var response = await table.UpdateEntityAsync(
                    new TableEntity(customerId, RowKey(reportId)) { ["Status"] = Failed, ["Reasons"] = ReasonsJson(reasons), ["FailedAt"] = now },
                    current.ETag,
                    TableUpdateMode.Merge,
                    cancellationToken);
                return current with { Status = Failed, Reasons = reasons, FailedAt = now, ETag = response.Headers.ETag ?? default };
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
            }
        }

        throw new StorageContentionException($"Could not mark a usage report failed: its record kept changing through {MaxRaces} attempts.");
    }

    /// <summary>
    /// The record of the report id the upload of <paramref name="blobName"/> whose ETag is <paramref name="blobETag"/>
    /// (as the ledger keeps it) claimed, unless that claim failed (a processed one first): what the blob held when no attempt at it lived to note
    /// it in the ledger, each stopped after its claim (a host's timeout, a killed process). Only a claim this very upload
    /// made or took up counts: a record of an earlier upload under the same name, or one claimed before records kept the
    /// upload's ETag, is never this upload's. Reads the customer's records, so it is for giving up on a blob only.
    /// </summary>
    public async Task<UsageReportRecord?> ClaimedByAsync(string customerId, string blobName, string blobETag, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {customerId} and RowKey ge {RowPrefix} and RowKey lt {"r`"} and Blob eq {blobName} and BlobETag eq {blobETag}");
        UsageReportRecord? claimed = null;
        await foreach (var row in table.QueryAsync<TableEntity>(filter, select: OverlapColumns, cancellationToken: cancellationToken))
        {
            var record = FromEntity(row);
            if (record.IsClaimOf(blobName, blobETag) && record.Status != Failed && claimed is not { Status: Processed })
            {
                claimed = record;
            }
        }

        return claimed;
    }

    /// <summary>Reports that failed before <paramref name="failedBefore"/> whose abandoned rows are not known to be deleted yet.</summary>
    public async Task<List<UsageReportRecord>> FailedWithRowsAsync(DateTimeOffset failedBefore, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        var records = new List<UsageReportRecord>();
        // RowsDeleted is filtered here rather than in the query: a record written before the column existed lacks it,
        // and a comparison with a missing property matches nothing.
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"Status eq {Failed}"), cancellationToken: cancellationToken))
        {
            if (row.RowKey.StartsWith(RowPrefix, StringComparison.Ordinal) && FromEntity(row) is { RowsDeleted: false } record && !(record.FailedAt >= failedBefore))
            {
                records.Add(record);
            }
        }

        return records;
    }

    /// <summary>
    /// Notes that the rows of a failed record were deleted, under If-Match: if the record changed meanwhile (claimed
    /// again, or its reasons rewritten) it is left as it is and the next sweep looks again.
    /// </summary>
    public async Task MarkRowsDeletedAsync(UsageReportRecord failed, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReports, cancellationToken);
        try
        {
            await table.UpdateEntityAsync(new TableEntity(failed.CustomerId, RowKey(failed.ReportId)) { ["RowsDeleted"] = true }, failed.ETag, TableUpdateMode.Merge, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
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

        throw new StorageContentionException($"Could not record why a usage report was refused: its record kept changing through {MaxRaces} attempts.");
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

    /// <summary>
    /// Why a report's figures cannot be recorded, or null when they can. The record keeps each metric's figures and
    /// its share of every month (what monthly totals are computed from) in string properties of at most
    /// <see cref="ChunkedText.ChunkChars"/> characters each, and the whole record must stay within Table Storage's 1 MiB entity:
    /// very many metrics over a long period do not fit, whatever the configured limits allow.
    /// </summary>
    public static string? FiguresTooLarge(UsageReport report)
    {
        var chars = Figures(report).ToJsonString().Length + Months(report).ToJsonString().Length;
        return chars <= MaxFigureChars
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"The report's figures ({report.Metrics.Count} metrics over {report.Metrics.SelectMany(m => m.Months.Keys).Distinct().Count()} months) take {chars:N0} characters to record, more than the {MaxFigureChars:N0} a report's record holds: split the period into several reports.");
    }

    /// <summary>What the figures may take in all: 14 chunks, 896,000 bytes as UTF-16, leaving room for the rest of the record within 1 MiB.</summary>
    internal const int MaxFigureChars = 14 * ChunkedText.ChunkChars;

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

    private static readonly string[] OverlapColumns =
        ["PartitionKey", "RowKey", "InstallationKey", "InstallationId", "Status", "ContentHash", "PeriodStart", "PeriodEnd", "Blob", "BlobETag", "ProcessedAt", "Reasons", "Claim", "FailedAt", "RowsDeleted"];

    private static async Task<UsageReportRecord?> FindOverlapAsync(TableClient table, UsageReport report, string installationKey, CancellationToken cancellationToken)
    {
        // By the id as UsageReportKeys.Installation compares it, not the stored key: a record claimed before installation
        // ids were compared ignoring case, or while ids with invisible characters were accepted, or before they were
        // Unicode-normalized, has the hash of the id as written (or lower-cased with them, or not normalized). The
        // customer and the period narrow the query.
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {report.CustomerId} and RowKey ge {RowPrefix} and RowKey lt {"r`"} and PeriodStart lt {report.PeriodEnd.ToUniversalTime()} and PeriodEnd gt {report.PeriodStart.ToUniversalTime()}");
        // Only the columns that say whose period it is and the reason needs, not the figures: a customer with many
        // installations has many records overlapping a month, read on every claim.
        await foreach (var row in table.QueryAsync<TableEntity>(filter, select: OverlapColumns, cancellationToken: cancellationToken))
        {
            var sameInstallation = row.GetString("InstallationKey") == installationKey
                || (row.GetString("InstallationId") is { Length: > 0 } id && UsageReportKeys.Installation(id) == installationKey);
            if (!sameInstallation)
            {
                continue;
            }

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
        row.GetDateTimeOffset("PeriodStart") ?? default,
        row.GetDateTimeOffset("PeriodEnd") ?? default,
        row.GetString("Blob") ?? "",
        ChunkedText.Read(row, "Figures") is { Length: > 0 } figures ? JsonNode.Parse(figures) as JsonObject : null,
        ChunkedText.Read(row, "Months") is { Length: > 0 } months ? JsonNode.Parse(months) as JsonObject : null,
        row.GetDateTimeOffset("ProcessedAt"),
        ParseReasons(row.GetString("Reasons")),
        row.ETag)
    {
        Claim = row.GetInt32("Claim") ?? 0,
        FailedAt = row.GetDateTimeOffset("FailedAt"),
        RowsDeleted = row.GetBoolean("RowsDeleted") ?? false,
        BlobETag = row.GetString("BlobETag"),
    };
}
