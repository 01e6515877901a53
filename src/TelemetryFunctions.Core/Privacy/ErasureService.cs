using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Privacy;

/// <summary>The pseudonymous keys of one subject to erase.</summary>
public sealed record ErasureSubject(string? UserKey, string? InstanceKey, string? InstallationKey);

/// <summary>How many rows an erasure deleted, per table.</summary>
public sealed record ErasureResult(int RawEvents, int ActivityRows, int Instances, int Installations, int SupportRequests)
{
    public ErasureResult Plus(ErasureResult other) => new(
        RawEvents + other.RawEvents,
        ActivityRows + other.ActivityRows,
        Instances + other.Instances,
        Installations + other.Installations,
        SupportRequests + other.SupportRequests);
}

/// <summary>
/// Deletes what is stored about a subject: raw events, activity marks, the instance record with its deadline and
/// status history, the installation record and support requests, and the user's pseudonym in the daily digests.
/// Aggregates computed before the erasure hold only counts and are kept.
/// </summary>
/// <remarks>
/// Raw events are partitioned by day and source, not by subject, so erasing them is a filtered scan of the raw-event
/// table: acceptable for the rare opt-out at the retention sizes this product keeps (see docs/storage.md).
/// </remarks>
public sealed partial class ErasureService(
    TelemetryStorage storage,
    TableBatchWriter batches,
    ActivityStore activity,
    ActivityDigests digests,
    InstanceRegistry instances,
    ILogger<ErasureService> logger)
{
    public async Task<ErasureResult> EraseAsync(ErasureSubject subject, CancellationToken cancellationToken)
    {
        var rawFilters = new List<string>();
        var activityKeys = new List<string>();
        if (subject.UserKey is { } user)
        {
            rawFilters.Add(TableClient.CreateQueryFilter($"UserKey eq {user}"));
            rawFilters.Add(TableClient.CreateQueryFilter($"AnonymousKey eq {user}"));
            // An alias call links the person's earlier id to a new one: the row names the erased id too.
            rawFilters.Add(TableClient.CreateQueryFilter($"PreviousKey eq {user}"));
            activityKeys.Add(ActivityStore.UserPrefix + user);
        }

        if (subject.InstanceKey is { } instance)
        {
            rawFilters.Add(TableClient.CreateQueryFilter($"InstanceKey eq {instance}"));
            activityKeys.Add(ActivityStore.InstancePrefix + instance);
            activityKeys.Add(ActivityStore.FirstSeenPrefix + instance);
            activityKeys.Add(ActivityStore.GoneInactivePrefix + instance);
        }

        if (subject.InstallationKey is { } installation)
        {
            rawFilters.Add(TableClient.CreateQueryFilter($"InstallationKey eq {installation}"));
            activityKeys.Add(ActivityStore.InstallationPrefix + installation);
        }

        var raw = rawFilters.Count == 0 ? 0 : await DeleteMatchingAsync(TableNames.RawEvents, string.Join(" or ", rawFilters.Select(f => $"({f})")), cancellationToken);
        // The days the user was active, seen as their marks are deleted: they are then taken out of those days'
        // digests (the sorted pseudonyms WAU and MAU are counted from), which hold per-user data until retention.
        var userMark = subject.UserKey is { } active ? ActivityStore.UserPrefix + active : null;
        var userDays = new List<DateOnly>();
        var activityRows = activityKeys.Count == 0 ? 0 : await DeleteMatchingAsync(
            TableNames.Activity,
            string.Join(" or ", activityKeys.Select(k => $"({TableClient.CreateQueryFilter($"RowKey eq {k}")})")),
            cancellationToken,
            row =>
            {
                if (row.RowKey == userMark && TableKeys.TryParseDay(row.PartitionKey, out var day))
                {
                    userDays.Add(day);
                }
            });
        activity.Forget();
        foreach (var day in userDays)
        {
            await digests.RemoveUserAsync(day, subject.UserKey!, cancellationToken);
        }

        var instanceRows = 0;
        if (subject.InstanceKey is { } i)
        {
            instanceRows = await DeleteOneAsync(TableNames.Instances, InstanceRegistry.PartitionKeyOf(i), i, cancellationToken);
            instanceRows += await DeleteMatchingAsync(TableNames.InstanceDeadlines, TableClient.CreateQueryFilter($"RowKey eq {i}"), cancellationToken);
            instanceRows += await DeleteMatchingAsync(TableNames.InstanceStatusHistory, TableClient.CreateQueryFilter($"PartitionKey eq {i}"), cancellationToken);
            instances.Forget(i);
        }

        var installationRows = 0;
        var supportRows = 0;
        if (subject.InstallationKey is { } n)
        {
            installationRows = await DeleteOneAsync(TableNames.Installations, InstallationRecorder.PartitionKeyOf(n), n, cancellationToken);
            supportRows = await DeleteMatchingAsync(TableNames.SupportRequests, TableClient.CreateQueryFilter($"InstallationKey eq {n}"), cancellationToken);
        }

        var result = new ErasureResult(raw, activityRows, instanceRows, installationRows, supportRows);
        LogErased(logger, raw, activityRows, instanceRows, installationRows, supportRows);
        return result;
    }

    private async Task<int> DeleteMatchingAsync(string tableName, string filter, CancellationToken cancellationToken, Action<TableEntity>? found = null) =>
        await batches.DeleteMatchingAsync(await storage.GetTableAsync(tableName, cancellationToken), filter, cancellationToken, found);

    private async Task<int> DeleteOneAsync(string tableName, string partitionKey, string rowKey, CancellationToken cancellationToken) =>
        await TableBatchWriter.DeleteIfExistsAsync(await storage.GetTableAsync(tableName, cancellationToken), partitionKey, rowKey, cancellationToken);

    [LoggerMessage(Level = LogLevel.Information, Message = "Erasure deleted {RawEvents} raw events, {ActivityRows} activity rows, {Instances} instance rows, {Installations} installation rows and {SupportRequests} support requests")]
    private static partial void LogErased(ILogger logger, int rawEvents, int activityRows, int instances, int installations, int supportRequests);
}
