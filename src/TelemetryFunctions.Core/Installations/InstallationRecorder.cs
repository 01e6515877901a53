using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Installations;

/// <summary>
/// Keeps one record per installation (keyed by the pseudonymized anonymous id the install script sends):
/// when it started, succeeded or failed, its OS, version and last error. Updates are read, changed and written
/// with If-Match, so concurrent events of one installation do not overwrite each other.
/// </summary>
public sealed class InstallationRecorder(TelemetryStorage storage)
{
    private const int MaxAttempts = 8;

    public static string PartitionKeyOf(string installationKey) => TableKeys.Bucket(installationKey);

    public async Task RecordAsync(IReadOnlyList<PreparedEvent> events, CancellationToken cancellationToken)
    {
        var byInstallation = events
            .Where(e => e.InstallationKey is not null)
            .GroupBy(e => e.InstallationKey!, StringComparer.Ordinal)
            .ToList();
        if (byInstallation.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.Installations, cancellationToken);
        foreach (var group in byInstallation)
        {
            await RecordOneAsync(table, group.Key, group.OrderBy(e => e.Timestamp).ToList(), cancellationToken);
        }
    }

    private static async Task RecordOneAsync(TableClient table, string key, List<PreparedEvent> events, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var existing = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKeyOf(key), key, cancellationToken: cancellationToken);
            var row = existing.HasValue ? existing.Value! : new TableEntity(PartitionKeyOf(key), key);
            foreach (var e in events)
            {
                Apply(row, e);
            }

            try
            {
                if (existing.HasValue)
                {
                    await table.UpdateEntityAsync(row, row.ETag, TableUpdateMode.Replace, cancellationToken);
                }
                else
                {
                    await table.AddEntityAsync(row, cancellationToken);
                }

                return;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412 or 404)
            {
                // A concurrent writer (or a retried write whose first response was lost): read again and reapply.
            }
        }

        throw new StorageContentionException($"The installation record could not be updated after {MaxAttempts} attempts because of concurrent writers.");
    }

    /// <summary>The rows these events would write for installations not recorded before (what a preview shows).</summary>
    public static IEnumerable<TableEntity> Plan(IReadOnlyList<PreparedEvent> events)
    {
        foreach (var group in events.Where(e => e.InstallationKey is not null).GroupBy(e => e.InstallationKey!, StringComparer.Ordinal))
        {
            var row = new TableEntity(PartitionKeyOf(group.Key), group.Key);
            foreach (var e in group.OrderBy(e => e.Timestamp))
            {
                Apply(row, e);
            }

            yield return row;
        }
    }

    /// <summary>Applying the same event twice gives the same row: times are the earliest seen for each step.</summary>
    private static void Apply(TableEntity row, PreparedEvent e)
    {
        var field = e.Category switch
        {
            EventCategory.InstallationStarted => "StartedAt",
            EventCategory.InstallationSucceeded => "SucceededAt",
            EventCategory.InstallationFailed => "FailedAt",
            EventCategory.InstallationSupport => "SupportRequestedAt",
            _ => null,
        };
        if (field is null)
        {
            return;
        }

        var previous = row.GetDateTimeOffset(field);
        if (previous is null || e.Timestamp < previous)
        {
            row[field] = e.Timestamp;
        }

        var succeeded = row.GetDateTimeOffset("SucceededAt");
        var failed = row.GetDateTimeOffset("FailedAt");
        row["Status"] = succeeded is not null && (failed is null || succeeded >= failed) ? "succeeded"
            : failed is not null ? "failed"
            : "started";

        if (e.Os is not null)
        {
            row["Os"] = e.Os;
        }

        if (e.Version is not null)
        {
            row["Version"] = e.Version;
        }

        if (e.Error is not null && e.Category == EventCategory.InstallationFailed)
        {
            row["LastError"] = e.Error;
        }

        var updated = row.GetDateTimeOffset("UpdatedAt");
        if (updated is null || e.ReceivedAt > updated)
        {
            row["UpdatedAt"] = e.ReceivedAt;
        }
    }
}
