using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>What happened to one uploaded blob: how often it was tried and how it ended.</summary>
public sealed record BlobLedgerEntry(
    string BlobName,
    string BlobETag,
    int Attempts,
    string Status,
    string? ReportId,
    IReadOnlyList<string> Reasons,
    string? LastError,
    DateTimeOffset? UpdatedAt,
    ETag ETag)
{
    /// <summary>Attempts are still being made (or the last one crashed).</summary>
    public const string Processing = "processing";
    public const string Processed = "processed";
    public const string Duplicate = "duplicate";
    public const string Rejected = "rejected";
    public const string Conflict = "conflict";
    public const string Failed = "failed";

    /// <summary>An attempt got as far as the commit: the report is counted, so the blob is never quarantined as failed.</summary>
    public bool Committed { get; init; }

    /// <summary>
    /// The SHA-256 of the report content an attempt read, with <see cref="ReportId"/>: giving up on the blob fails the
    /// report id's record only while it holds this content, never another upload's claim of the same id.
    /// </summary>
    public string? ContentHash { get; init; }

    public bool IsFinal => Status != Processing;

    /// <summary>The blob belongs in the quarantine container.</summary>
    public bool IsQuarantined => Status is Rejected or Conflict or Failed;
}

/// <summary>
/// The <c>UsageReportBlobs</c> table: one row per uploaded blob, PartitionKey its customer folder (or <c>_</c>),
/// RowKey the hash of its name (a name is the uploader's text). It counts attempts, so a blob that keeps failing ends
/// in quarantine after <see cref="UsageReportOptions.MaxAttempts"/>, and it holds the outcome the reconciliation pass
/// and the status endpoint read. A blob uploaded again under the same name (a new ETag) starts afresh.
/// </summary>
public sealed class UsageBlobLedger(TelemetryStorage storage, TimeProvider time)
{
    private const int MaxRaces = 16;

    public static string PartitionKey(string blobName) =>
        UsageReportKeys.FolderOf(blobName) is { } folder && UsageReportOptions.CustomerIdPattern().IsMatch(folder) ? folder : UsageReportKeys.NoCustomer;

    public static string RowKey(string blobName) => UsageReportKeys.Hash(blobName);

    /// <summary>A blob's ETag as text, the same whether it came from a listing (unquoted) or from its properties (quoted).</summary>
    public static string Normalize(ETag? etag) => (etag?.ToString() ?? "").Trim('"');

    /// <summary>Counts an attempt at <paramref name="blobName"/> as it is now; an entry that is already final is returned unchanged.</summary>
    public async Task<BlobLedgerEntry> BeginAttemptAsync(string blobName, ETag blobETag, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
        var partition = PartitionKey(blobName);
        var rowKey = RowKey(blobName);
        for (var race = 0; race < MaxRaces; race++)
        {
            var existing = await table.GetEntityIfExistsAsync<TableEntity>(partition, rowKey, cancellationToken: cancellationToken);
            var current = existing.HasValue ? FromEntity(existing.Value!) : null;
            if (current is not null && current.BlobETag == Normalize(blobETag) && current.IsFinal)
            {
                return current;
            }

            // The same upload tried before carries on (an attempt given back may have left its count at 0); a new upload starts afresh.
            var again = current is not null && current.BlobETag == Normalize(blobETag);
            var attempts = again ? current!.Attempts + 1 : 1;
            var row = new TableEntity(partition, rowKey)
            {
                ["BlobName"] = blobName,
                ["BlobETag"] = Normalize(blobETag),
                ["Attempts"] = attempts,
                ["Status"] = BlobLedgerEntry.Processing,
                ["ReportId"] = again ? current!.ReportId : null,
                ["LastError"] = again ? current!.LastError : null,
                ["Committed"] = again && current!.Committed,
                ["ContentHash"] = again ? current!.ContentHash : null,
                ["Reasons"] = "[]",
                ["UpdatedAt"] = time.GetUtcNow(),
            };

            try
            {
                var response = existing.HasValue
                    ? await table.UpdateEntityAsync(row, existing.Value!.ETag, TableUpdateMode.Replace, cancellationToken)
                    : await table.AddEntityAsync(row, cancellationToken);
                return FromEntity(row) with { ETag = response.Headers.ETag ?? default };
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                // Another attempt at the same blob counted itself first: count again.
            }
        }

        throw new StorageContentionException($"Could not record an attempt at a usage report blob: other attempts kept changing its entry through {MaxRaces} tries.");
    }

    /// <summary>
    /// Takes back the attempt <see cref="BeginAttemptAsync"/> counted, for an attempt that concurrent writers stopped
    /// (<see cref="StorageContentionException"/>): that is not a failure of the report, so it does not bring the blob
    /// nearer quarantine. Under If-Match: if another attempt began meanwhile, only the error is recorded. Best effort.
    /// </summary>
    public async Task GiveBackAttemptAsync(BlobLedgerEntry entry, string? reportId, string? contentHash, string error, bool committed, CancellationToken cancellationToken)
    {
        try
        {
            var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
            await table.UpdateEntityAsync(
                new TableEntity(PartitionKey(entry.BlobName), RowKey(entry.BlobName))
                {
                    ["Attempts"] = Math.Max(0, entry.Attempts - 1),
                    ["LastError"] = error,
                    ["ReportId"] = reportId ?? entry.ReportId,
                    ["ContentHash"] = contentHash ?? entry.ContentHash,
                    ["Committed"] = committed || entry.Committed,
                    ["UpdatedAt"] = time.GetUtcNow(),
                },
                entry.ETag,
                TableUpdateMode.Merge,
                cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            await RecordErrorAsync(entry, reportId, contentHash, error, committed, cancellationToken);
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken) || e is RequestFailedException)
        {
            // As for RecordErrorAsync: the attempt stays counted, which only brings the quarantine nearer.
        }
    }

    /// <summary>Remembers the last failure and whether the report got committed (best effort: storage may be what is failing).</summary>
    public async Task RecordErrorAsync(BlobLedgerEntry entry, string? reportId, string? contentHash, string error, bool committed, CancellationToken cancellationToken)
    {
        try
        {
            var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
            await table.UpdateEntityAsync(
                new TableEntity(PartitionKey(entry.BlobName), RowKey(entry.BlobName))
                {
                    ["LastError"] = error,
                    ["ReportId"] = reportId ?? entry.ReportId,
                    ["ContentHash"] = contentHash ?? entry.ContentHash,
                    ["Committed"] = committed || entry.Committed,
                    ["UpdatedAt"] = time.GetUtcNow(),
                },
                ETag.All,
                TableUpdateMode.Merge,
                cancellationToken);
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken) || e is RequestFailedException)
        {
            // The failure being recorded is more important than its record; the attempt count is already stored.
        }
    }

    public async Task<BlobLedgerEntry> CompleteAsync(BlobLedgerEntry entry, string status, string? reportId, IReadOnlyList<string> reasons, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
        var row = new TableEntity(PartitionKey(entry.BlobName), RowKey(entry.BlobName))
        {
            ["BlobName"] = entry.BlobName,
            ["BlobETag"] = entry.BlobETag,
            ["Attempts"] = entry.Attempts,
            ["Status"] = status,
            ["ReportId"] = reportId ?? entry.ReportId,
            ["LastError"] = entry.LastError,
            ["ContentHash"] = entry.ContentHash,
            ["Reasons"] = UsageReportStore.ReasonsJson(reasons),
            ["UpdatedAt"] = time.GetUtcNow(),
        };
        var response = await table.UpsertEntityAsync(row, TableUpdateMode.Replace, cancellationToken);
        return FromEntity(row) with { ETag = response.Headers.ETag ?? default };
    }

    /// <summary>Every blob's entry, by blob name: the reconciliation pass reads them once instead of once per blob.</summary>
    public async Task<Dictionary<string, BlobLedgerEntry>> LoadAllAsync(CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
        var entries = new Dictionary<string, BlobLedgerEntry>(StringComparer.Ordinal);
        await foreach (var row in table.QueryAsync<TableEntity>(cancellationToken: cancellationToken))
        {
            var entry = FromEntity(row);
            entries[entry.BlobName] = entry;
        }

        return entries;
    }

    /// <summary>
    /// Entries of a customer's blobs that carried <paramref name="reportId"/> or bear one of its upload names
    /// (<see cref="UsageReportKeys.IsUploadBlobName"/>); such a blob may have held another report, which its
    /// <see cref="BlobLedgerEntry.ReportId"/> then names.
    /// </summary>
    public async Task<List<BlobLedgerEntry>> FindAsync(string customerId, string reportId, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.UsageReportBlobs, cancellationToken);
        var plain = UsageReportKeys.UploadBlobName(customerId, reportId, compressed: false);
        var compressed = UsageReportKeys.UploadBlobName(customerId, reportId, compressed: true);
        var tagged = UsageReportKeys.TaggedUploadPrefix(customerId, reportId);
        // The names that begin with the prefix sort from it up to (not including) the prefix with its '~' raised by one.
        var afterTagged = tagged[..^1] + (char)('~' + 1);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {customerId} and (ReportId eq {reportId} or BlobName eq {plain} or BlobName eq {compressed} or (BlobName ge {tagged} and BlobName lt {afterTagged}))");
        var entries = new List<BlobLedgerEntry>();
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            entries.Add(FromEntity(row));
        }

        return [.. entries.OrderByDescending(e => e.UpdatedAt)];
    }

    private static BlobLedgerEntry FromEntity(TableEntity row) => new(
        row.GetString("BlobName") ?? "",
        row.GetString("BlobETag") ?? "",
        row.GetInt32("Attempts") ?? 0,
        row.GetString("Status") ?? BlobLedgerEntry.Processing,
        row.GetString("ReportId"),
        UsageReportStore.ParseReasons(row.GetString("Reasons")),
        row.GetString("LastError"),
        row.GetDateTimeOffset("UpdatedAt"),
        row.ETag)
    {
        Committed = row.GetBoolean("Committed") ?? false,
        ContentHash = row.GetString("ContentHash"),
    };
}
