using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>How processing one blob ended.</summary>
public sealed record UsageReportOutcome(string Status, string BlobName, string? ReportId, IReadOnlyList<string> Reasons)
{
    /// <summary>The blob no longer exists (already moved to quarantine, or deleted).</summary>
    public const string Missing = "missing";
}

/// <summary>
/// Turns one uploaded blob into billing rows, exactly once: what the blob trigger (Event Grid) calls in Azure, and the
/// local host's watcher and the reconciliation pass call everywhere.
/// <list type="number">
/// <item>Count the attempt (<see cref="UsageBlobLedger"/>); past <see cref="UsageReportOptions.MaxAttempts"/> quarantine as failed.</item>
/// <item>Read and verify the report in one streaming pass (<see cref="UsageReportReader"/>); refused → quarantine with the reasons.</item>
/// <item>Claim its id (<see cref="UsageReportStore"/>): the same content already processed is a duplicate; other content
/// under an id that is counted or being processed is a conflict, and an overlapping period of the same installation is
/// refused, both quarantined. A report that failed holds its id for nobody: other content takes its place.</item>
/// <item>Write its rows (deterministic keys), then the commit marker, then recompute the months it touches.</item>
/// </list>
/// A storage failure propagates, so the trigger retries; every step is safe to repeat, so a crash at any point and a
/// re-run leave the rows of exactly one run. Contention (<see cref="StorageContentionException"/>: concurrent writers kept
/// changing a row through every retry) propagates too but is not counted as an attempt. Giving up deletes the rows the
/// report's runs wrote (the reconciliation pass deletes what this could not).
/// </summary>
public sealed partial class UsageReportProcessor(
    UsageReportContainers containers,
    UsageReportReader reader,
    UsageBlobLedger ledger,
    UsageReportStore reports,
    UsageRowStore rows,
    UsageMonthlyTotals monthly,
    IOptions<UsageReportOptions> options,
    ILogger<UsageReportProcessor> logger)
{
    public async Task<UsageReportOutcome> ProcessAsync(string blobName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(blobName);
        var container = await containers.ReportsAsync(cancellationToken);
        var blob = container.GetBlobClient(blobName);
        BlobProperties properties;
        try
        {
            properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return new UsageReportOutcome(UsageReportOutcome.Missing, blobName, null, []);
        }

        var entry = await ledger.BeginAttemptAsync(blobName, properties.ETag, cancellationToken);
        var blobKey = UsageBlobLedger.RowKey(blobName);
        if (entry.IsFinal)
        {
            if (entry.IsQuarantined)
            {
                // Judged before, but the move did not finish (the process stopped): finish it.
                await containers.QuarantineAsync(blobName, properties.ETag, ErrorDocument(entry, entry.Status, entry.ReportId, entry.Reasons), () => Task.CompletedTask, cancellationToken);
            }

            return new UsageReportOutcome(entry.Status, blobName, entry.ReportId, entry.Reasons);
        }

        var maxAttempts = options.Value.MaxAttempts;
        if (entry.Attempts > maxAttempts)
        {
            // The content an earlier attempt read, so that only its claim is failed, not another upload's of the same id
            // (null for an entry recorded before the ledger kept it: then the id's record is failed whatever it holds).
            var (heldId, heldContent) = await WhatTheBlobHeldAsync(entry, null, cancellationToken);
            if (!await IsCommittedAsync(entry, heldId, heldContent, cancellationToken))
            {
                return await FailAsync(entry, properties.ETag, heldId, heldContent, entry.LastError, cancellationToken);
            }
        }

        var attempt = new Attempt();
        try
        {
            return await ProcessOnceAsync(blob.Name, properties.ETag, entry, attempt, cancellationToken);
        }
        catch (StorageContentionException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Other writers (claims of the customer's other reports, another run of this report, recomputes of the same
            // month) kept changing a row: the report is not at fault, and the next try usually gets through. The attempt
            // is given back, so contention alone never quarantines a report; the trigger retries, then every
            // reconciliation pass.
            LogContended(logger, e, blobKey, entry.Attempts);
            await ledger.GiveBackAttemptAsync(entry, attempt.ReportId, attempt.ContentHash, $"{e.GetType().Name}: {Shorten(e.Message)}", attempt.Committed, cancellationToken);
            throw;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            var error = $"{e.GetType().Name}: {Shorten(e.Message)}";
            // Once the report is committed it is billed: it is never quarantined as failed. What is left (the monthly
            // totals, the ledger) is retried by the trigger and then by every reconciliation pass, past the attempt limit.
            var committed = attempt.Committed || entry.Committed;
            if (entry.Attempts >= maxAttempts && !committed)
            {
                // What this attempt read, or, when it failed before reading, what an earlier one read: its claim is the
                // one given up.
                var (heldId, heldContent) = await WhatTheBlobHeldAsync(entry, attempt, cancellationToken);
                committed = await IsCommittedAsync(entry, heldId, heldContent, cancellationToken);
                if (!committed)
                {
                    LogGaveUp(logger, e, blobKey, entry.Attempts);
                    return await FailAsync(entry with { LastError = error }, properties.ETag, heldId, heldContent, error, cancellationToken);
                }
            }

            if (committed)
            {
                LogCommittedAttemptFailed(logger, e, blobKey, entry.Attempts);
            }
            else
            {
                LogAttemptFailed(logger, e, blobKey, entry.Attempts, maxAttempts);
            }

            await ledger.RecordErrorAsync(entry, attempt.ReportId, attempt.ContentHash, error, committed, cancellationToken);
            throw;
        }
    }

    /// <summary>
    /// Whether this blob's report is already counted: an earlier attempt said so in the ledger, or (should that note
    /// have been lost with the storage that was failing) the report's record is processed and is this upload's: claimed
    /// by this very upload of the blob (its ETag), or holding the content this upload was read to hold. A record that
    /// names the blob but another upload of it (the name was reused) is not; one claimed before records kept the
    /// upload's ETag counts by its content, or, when no attempt noted the content, by the blob's name.
    /// </summary>
    private async Task<bool> IsCommittedAsync(BlobLedgerEntry entry, string? reportId, string? contentHash, CancellationToken cancellationToken)
    {
        if (entry.Committed)
        {
            return true;
        }

        if (reportId is null || options.Value.FindCustomer(UsageReportKeys.FolderOf(entry.BlobName)) is not { } customer)
        {
            return false;
        }

        var record = await reports.GetAsync(customer.Id, reportId, cancellationToken);
        return record is { Status: UsageReportStore.Processed }
            && (record.IsClaimOf(entry.BlobName, entry.BlobETag)
                || (contentHash is not null && record.ContentHash == contentHash)
                || (record.BlobETag is null && contentHash is null && record.Blob == entry.BlobName));
    }

    /// <summary>
    /// The report id and content this blob held, as far as its attempts found out: what <paramref name="attempt"/> read,
    /// else what the ledger noted an earlier attempt read, else, when no attempt lived to note it (each stopped after its
    /// claim: a host's timeout, a killed process), the report id this upload of the blob claimed (by the upload's ETag
    /// the claim keeps: an earlier upload under the same name claimed for itself). Giving up fails that claim, so that a
    /// report given up neither stays pending for ever, blocking its period and its id, nor is failed once committed.
    /// </summary>
    private async Task<(string? ReportId, string? ContentHash)> WhatTheBlobHeldAsync(BlobLedgerEntry entry, Attempt? attempt, CancellationToken cancellationToken)
    {
        if (attempt?.ReportId is { } read)
        {
            return (read, attempt.ContentHash);
        }

        if (entry.ReportId is { } noted)
        {
            return (noted, entry.ContentHash);
        }

        if (options.Value.FindCustomer(UsageReportKeys.FolderOf(entry.BlobName)) is not { } customer)
        {
            return (null, null);
        }

        var claimed = await reports.ClaimedByAsync(customer.Id, entry.BlobName, entry.BlobETag, cancellationToken);
        return (claimed?.ReportId, claimed?.ContentHash);
    }

    private async Task<UsageReportOutcome> ProcessOnceAsync(string blobName, ETag etag, BlobLedgerEntry entry, Attempt attempt, CancellationToken cancellationToken)
    {
        var customer = options.Value.FindCustomer(UsageReportKeys.FolderOf(blobName));
        if (customer is null)
        {
            return await QuarantineAsync(entry, etag, BlobLedgerEntry.Rejected, null,
                ["The blob is not in a configured customer's folder: upload a report as {customerId}/{name}.json (or .json.gz) in the usage-reports container."],
                cancellationToken);
        }

        var container = await containers.ReportsAsync(cancellationToken);
        UsageReportReadResult result;
        await using (var content = await container.GetBlobClient(blobName).OpenReadAsync(
            new BlobOpenReadOptions(allowModifications: false) { BufferSize = 1024 * 1024, Conditions = new BlobRequestConditions { IfMatch = etag } },
            cancellationToken))
        {
            result = await reader.ReadAsync(content, customer, cancellationToken);
        }

        attempt.ReportId = result.ReportId;
        attempt.ContentHash = result.ContentHash;
        if (result.Report is not { } report)
        {
            LogRejected(logger, customer.Id, UsageBlobLedger.RowKey(blobName), result.Reasons.Count);
            return await QuarantineAsync(entry, etag, BlobLedgerEntry.Rejected, result.ReportId, result.Reasons, cancellationToken);
        }

        if (UsageReportStore.FiguresTooLarge(report) is { } tooLarge)
        {
            LogRejected(logger, customer.Id, UsageBlobLedger.RowKey(blobName), 1);
            return await QuarantineAsync(entry, etag, BlobLedgerEntry.Rejected, report.ReportId, [tooLarge], cancellationToken);
        }

        await DeleteRowsOfReplacedReportAsync(report, cancellationToken);
        var claim = await reports.ClaimAsync(report, blobName, etag, cancellationToken);
        switch (claim.Outcome)
        {
            case ClaimOutcome.Conflict:
                LogConflict(logger, customer.Id, report.ReportId);
                return await QuarantineAsync(entry, etag, BlobLedgerEntry.Conflict, report.ReportId, [ConflictReason(report.ReportId, claim.Existing!)], cancellationToken);

            case ClaimOutcome.Overlap:
                var other = claim.Existing!;
                IReadOnlyList<string> overlap =
                    [$"The period {report.PeriodStart:O} to {report.PeriodEnd:O} overlaps report '{other.ReportId}' ({other.PeriodStart:O} to {other.PeriodEnd:O}) of the same installation; usage would be counted twice."];
                LogOverlap(logger, customer.Id, report.ReportId, other.ReportId);
                // A report id whose report failed keeps its failed record (whether this is that report brought back or
                // other content under its id): the record now says why this one was refused.
                await reports.RecordRefusalAsync(customer.Id, report.ReportId, overlap, cancellationToken);
                return await QuarantineAsync(entry, etag, BlobLedgerEntry.Rejected, report.ReportId, overlap, cancellationToken);

            case ClaimOutcome.AlreadyCommitted:
                attempt.Committed = true;
                // Counted before (this blob's earlier run, or the same report uploaded again): make sure its months are
                // up to date, as a crash may have come between the commit and the monthly totals.
                await monthly.RecomputeAsync(customer.Id, report.Metrics.SelectMany(m => m.Months.Keys), cancellationToken);
                var status = claim.Existing!.Blob == blobName ? BlobLedgerEntry.Processed : BlobLedgerEntry.Duplicate;
                await ledger.CompleteAsync(entry, status, report.ReportId, [], cancellationToken);
                if (status == BlobLedgerEntry.Duplicate)
                {
                    LogDuplicate(logger, customer.Id, report.ReportId);
                }

                return new UsageReportOutcome(status, blobName, report.ReportId, []);

            default:
                var written = await rows.WriteAsync(report, claim.Claim, cancellationToken);
                await reports.CommitAsync(report, claim.ClaimETag, claim.Claim, cancellationToken);
                attempt.Committed = true;
                await monthly.RecomputeAsync(customer.Id, report.Metrics.SelectMany(m => m.Months.Keys), cancellationToken);
                await ledger.CompleteAsync(entry, BlobLedgerEntry.Processed, report.ReportId, [], cancellationToken);
                LogProcessed(logger, customer.Id, report.ReportId, report.Metrics.Count, written, result.Bytes);
                return new UsageReportOutcome(BlobLedgerEntry.Processed, blobName, report.ReportId, []);
        }
    }

    /// <summary>
    /// Other content is about to take the report id over from a report that failed: the rows that report's runs left
    /// (its content hash) are deleted first, as the reconciliation pass would have, since it no longer finds them once the
    /// record is this report's. Before the claim, so a crash here is simply repeated by the retry. Rows of this report's
    /// own content are never touched; rows a run of the failed report still writes afterwards stay uncounted.
    /// </summary>
    private async Task DeleteRowsOfReplacedReportAsync(UsageReport report, CancellationToken cancellationToken)
    {
        if (await reports.GetAsync(report.CustomerId, report.ReportId, cancellationToken) is { Status: UsageReportStore.Failed, RowsDeleted: false } failed
            && failed.ContentHash != report.ContentHash)
        {
            var deleted = await rows.DeleteAbandonedAsync(failed, cancellationToken);
            await reports.MarkRowsDeletedAsync(failed, cancellationToken);
            LogAbandonedRowsDeleted(logger, report.CustomerId, report.ReportId, deleted);
        }
    }

    /// <summary>Why other content under a report id is not counted, as it stands: the first report counted, or still being processed.</summary>
    private static string ConflictReason(string reportId, UsageReportRecord existing)
    {
        var first = $"Report id '{reportId}' was already received with different content (blob '{existing.Blob}', content SHA-256 {existing.ContentHash})";
        return existing.Status == UsageReportStore.Processed
            ? $"{first}; that report is counted and this one is not. Give a corrected report a new report id."
            : $"{first}; that report is still being processed and this one is not counted. Should that report end failed, move this one back into the usage-reports container to have it processed in its place; otherwise give a corrected report a new report id.";
    }

    private async Task<UsageReportOutcome> FailAsync(BlobLedgerEntry entry, ETag etag, string? reportId, string? contentHash, string? lastError, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> reasons =
        [
            $"Processing failed after {entry.Attempts} attempts{(lastError is null ? "." : $"; the last error was {lastError}")}",
            "The report itself may be fine: once the cause is fixed, move it back to the usage-reports container to process it again.",
        ];
        if (reportId is not null && options.Value.FindCustomer(UsageReportKeys.FolderOf(entry.BlobName)) is { } customer
            && await reports.MarkFailedAsync(customer.Id, reportId, contentHash, reasons, cancellationToken) is { } failed)
        {
            // The report will not be committed under this claim: its rows are abandoned. Best effort, as storage may be
            // what failed; the reconciliation pass deletes what is left once no run of this claim can still be writing.
            try
            {
                var deleted = await rows.DeleteAbandonedAsync(failed, cancellationToken);
                LogAbandonedRowsDeleted(logger, customer.Id, reportId, deleted);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Whatever stopped the deletion, the quarantine below must still happen.
                LogAbandonedRowsLeft(logger, e, customer.Id, reportId);
            }
        }

        return await QuarantineAsync(entry, etag, BlobLedgerEntry.Failed, reportId, reasons, cancellationToken);
    }

    private async Task<UsageReportOutcome> QuarantineAsync(BlobLedgerEntry entry, ETag etag, string status, string? reportId, IReadOnlyList<string> reasons, CancellationToken cancellationToken)
    {
        await containers.QuarantineAsync(
            entry.BlobName,
            etag,
            ErrorDocument(entry, status, reportId, reasons),
            () => ledger.CompleteAsync(entry, status, reportId, reasons, cancellationToken),
            cancellationToken);
        LogQuarantined(logger, UsageBlobLedger.RowKey(entry.BlobName), status);
        return new UsageReportOutcome(status, entry.BlobName, reportId, reasons);
    }

    private JsonObject ErrorDocument(BlobLedgerEntry entry, string status, string? reportId, IReadOnlyList<string> reasons) => new()
    {
        ["blob"] = entry.BlobName,
        ["container"] = options.Value.Container,
        ["status"] = status,
        ["customerId"] = options.Value.FindCustomer(UsageReportKeys.FolderOf(entry.BlobName))?.Id,
        ["reportId"] = reportId,
        ["reasons"] = new JsonArray([.. reasons.Select(r => (JsonNode)JsonValue.Create(r))]),
        ["attempts"] = entry.Attempts,
        ["whatToDo"] = status == BlobLedgerEntry.Failed
            ? "Fix the cause (see the last error), then move the report back into the usage-reports container under its name there (blob); it is processed afresh."
            : "Nothing of this report was counted. Fix the report at its source and upload it again (a corrected report needs a new report id if its id was already counted). See docs/usage-reports.md.",
    };

    private static string Shorten(string message) => message.Length <= 300 ? message : message[..300] + "...";

    private sealed class Attempt
    {
        public string? ReportId { get; set; }

        /// <summary>The content this attempt read: giving up fails the report id's record only while it holds this content.</summary>
        public string? ContentHash { get; set; }

        /// <summary>The report is counted (committed by this attempt or before): whatever fails after, it is not quarantined.</summary>
        public bool Committed { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report {ReportId} of customer {CustomerId} processed: {Metrics} metrics, {Rows} rows, {Bytes} bytes")]
    private static partial void LogProcessed(ILogger logger, string customerId, string reportId, int metrics, int rows, long bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report {ReportId} of customer {CustomerId} was already processed; recorded as a duplicate")]
    private static partial void LogDuplicate(ILogger logger, string customerId, string reportId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report blob {BlobKey} of customer {CustomerId} refused for {Reasons} reasons")]
    private static partial void LogRejected(ILogger logger, string customerId, string blobKey, int reasons);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report {ReportId} of customer {CustomerId} conflicts with the report first received under that id")]
    private static partial void LogConflict(ILogger logger, string customerId, string reportId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report {ReportId} of customer {CustomerId} overlaps report {OtherReportId} of the same installation; refused")]
    private static partial void LogOverlap(ILogger logger, string customerId, string reportId, string otherReportId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report blob {BlobKey} moved to quarantine as {Status}")]
    private static partial void LogQuarantined(ILogger logger, string blobKey, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report blob {BlobKey} failed on attempt {Attempt} of {MaxAttempts}; it will be retried")]
    private static partial void LogAttemptFailed(ILogger logger, Exception exception, string blobKey, int attempt, int maxAttempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report blob {BlobKey} is counted but attempt {Attempt} failed after its commit; the monthly totals are retried, by the reconciliation pass at the latest")]
    private static partial void LogCommittedAttemptFailed(ILogger logger, Exception exception, string blobKey, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report blob {BlobKey} met concurrent writers on attempt {Attempt}; not counted as an attempt, it will be retried")]
    private static partial void LogContended(ILogger logger, Exception exception, string blobKey, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report {ReportId} of customer {CustomerId} failed; {Rows} rows its runs wrote were deleted")]
    private static partial void LogAbandonedRowsDeleted(ILogger logger, string customerId, string reportId, int rows);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report {ReportId} of customer {CustomerId} failed; its rows could not be deleted now, the reconciliation pass deletes them")]
    private static partial void LogAbandonedRowsLeft(ILogger logger, Exception exception, string customerId, string reportId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Usage report blob {BlobKey} failed {Attempts} times; quarantined as failed")]
    private static partial void LogGaveUp(ILogger logger, Exception exception, string blobKey, int attempts);
}
