using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TelemetryFunctions.UsageReports;

/// <summary>What one reconciliation pass found and did; <c>AbandonedRowsDeleted</c> counts rows of failed reports it deleted (what giving up could not delete at the time).</summary>
public sealed record ReconciliationResult(int Blobs, int Examined, int Processed, int Duplicates, int Quarantined, int Failures, int AbandonedRowsDeleted = 0);

/// <summary>
/// Finds blobs in the report container that have no final outcome (their blob event was missed, or their processing
/// stopped half-way) and processes them. The timer runs it every 30 minutes by default
/// (<c>TelemetryReconcileSchedule</c>), leaving blobs younger than <see cref="UsageReportOptions.ReconcileMinimumAge"/>
/// to their own event; the local host runs it every few seconds with no minimum age, as its way of noticing uploads.
/// A blob that fails is counted and left for the next pass (its attempts are counted, so it cannot loop forever; an
/// attempt stopped by contention is not, and is simply tried again).
/// Then it deletes the rows of reports that failed more than <see cref="UsageReportOptions.AbandonedRowsMinimumAge"/>
/// ago and whose rows giving up could not delete (storage was failing then): by that age no run of the failed claim can
/// still be writing, and a later claim's rows are never touched (<see cref="UsageRowStore.DeleteAbandonedAsync"/>).
/// </summary>
public sealed partial class UsageReportReconciliation(
    UsageReportContainers containers,
    UsageBlobLedger ledger,
    UsageReportProcessor processor,
    UsageReportStore reports,
    UsageRowStore rows,
    IOptions<UsageReportOptions> options,
    TimeProvider time,
    ILogger<UsageReportReconciliation> logger)
{
    public Task<ReconciliationResult> RunAsync(CancellationToken cancellationToken) =>
        RunAsync(options.Value.ReconcileMinimumAge, cancellationToken);

    public async Task<ReconciliationResult> RunAsync(TimeSpan minimumAge, CancellationToken cancellationToken)
    {
        var container = await containers.ReportsAsync(cancellationToken);
        var entries = await ledger.LoadAllAsync(cancellationToken);
        var newest = time.GetUtcNow() - minimumAge;
        int blobs = 0, examined = 0, processed = 0, duplicates = 0, quarantined = 0, failures = 0;
        await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions(), cancellationToken))
        {
            blobs++;
            if (entries.TryGetValue(blob.Name, out var entry) && entry.IsFinal && entry.BlobETag == UsageBlobLedger.Normalize(blob.Properties.ETag) && !entry.IsQuarantined)
            {
                continue;
            }

            if (minimumAge > TimeSpan.Zero && blob.Properties.LastModified > newest)
            {
                continue;
            }

            examined++;
            try
            {
                var outcome = await processor.ProcessAsync(blob.Name, cancellationToken);
                switch (outcome.Status)
                {
                    case BlobLedgerEntry.Processed:
                        processed++;
                        break;
                    case BlobLedgerEntry.Duplicate:
                        duplicates++;
                        break;
                    case BlobLedgerEntry.Rejected or BlobLedgerEntry.Conflict or BlobLedgerEntry.Failed:
                        quarantined++;
                        break;
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Already logged with its attempt count by the processor; the next pass tries again.
                failures++;
                LogBlobFailed(logger, e, UsageBlobLedger.RowKey(blob.Name));
            }
        }

        var abandonedRows = await DeleteAbandonedRowsAsync(cancellationToken);
        if (examined > 0 || abandonedRows > 0)
        {
            LogReconciled(logger, blobs, examined, processed, duplicates, quarantined, failures, abandonedRows);
        }

        return new ReconciliationResult(blobs, examined, processed, duplicates, quarantined, failures, abandonedRows);
    }

    private async Task<int> DeleteAbandonedRowsAsync(CancellationToken cancellationToken)
    {
        var deleted = 0;
        foreach (var failed in await reports.FailedWithRowsAsync(time.GetUtcNow() - options.Value.AbandonedRowsMinimumAge, cancellationToken))
        {
            deleted += await rows.DeleteAbandonedAsync(failed, cancellationToken);
            await reports.MarkRowsDeletedAsync(failed, cancellationToken);
        }

        return deleted;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report reconciliation: {Blobs} blobs, {Examined} examined, {Processed} processed, {Duplicates} duplicates, {Quarantined} quarantined, {Failures} failed, {AbandonedRows} rows of failed reports deleted")]
    private static partial void LogReconciled(ILogger logger, int blobs, int examined, int processed, int duplicates, int quarantined, int failures, int abandonedRows);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage report reconciliation could not process blob {BlobKey}; the next pass tries again")]
    private static partial void LogBlobFailed(ILogger logger, Exception exception, string blobKey);
}
