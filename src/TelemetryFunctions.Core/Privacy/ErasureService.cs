using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// The pseudonymous keys of one subject to erase. Every path that erases a subject (an opt-out, a sharing level
/// disabled) builds its keys here, so each erases the same things.
/// </summary>
public sealed record ErasureSubject(string? UserKey, string? InstanceKey, string? InstallationKey)
{
    /// <summary>
    /// A person under one id (a userId or an anonymousId): with the installation recorded under the same id, as an
    /// installation is keyed by its events' anonymousId, else their userId. Its record outlives the raw events that
    /// would otherwise lead the erasure to it.
    /// </summary>
    public static ErasureSubject Person(Pseudonymizer pseudonymizer, string id) =>
        Person(pseudonymizer, id, pseudonymizer.Pseudonymize(IdentifierKind.User, id));

    /// <summary><see cref="Person(Pseudonymizer, string)"/> when the user key of <paramref name="id"/> is already made (an event's).</summary>
    public static ErasureSubject Person(Pseudonymizer pseudonymizer, string id, string userKey) =>
        new(userKey, null, pseudonymizer.Pseudonymize(IdentifierKind.Installation, id));

    /// <summary>An instance, by its pseudonymous key.</summary>
    public static ErasureSubject Instance(string instanceKey) => new(null, instanceKey, null);

    /// <summary>The suppression-list subject this erasure goes with: the person's <c>u_</c> row, else the instance's <c>i_</c> row.</summary>
    public string SuppressionSubject => UserKey is { } user ? SuppressionList.UserSubject(user)
        : InstanceKey is { } instance ? SuppressionList.InstanceSubject(instance)
        : throw new InvalidOperationException("An erasure subject names a person or an instance.");
}

/// <summary>
/// How many rows an erasure deleted, per table. A row counts when the erasure found it and deleted it; one that went
/// between the two (another erasure, the retention job) is counted too, a row the erasure did not find is not.
/// </summary>
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
/// Installations linked to the subject through another id (an install script's anonymousId on events that also
/// carried the subject's userId or instanceId) are erased with it: their records, marks, support requests and raw
/// events. Aggregates computed before the erasure hold only counts and are kept.
/// </summary>
/// <remarks>
/// Raw events are partitioned by day and source, not by subject, so erasing them is a filtered scan of the raw-event
/// table: acceptable for the rare opt-out at the retention sizes this product keeps (see docs/storage.md). They are
/// read first and deleted last, as are the activity marks that say which digests hold a user: they are what links
/// the subject to the rest, so an erasure interrupted half-way finds everything again when it is completed.
/// </remarks>
public sealed partial class ErasureService(
    TelemetryStorage storage,
    TableBatchWriter batches,
    ActivityStore activity,
    ActivityDigests digests,
    InstanceRegistry instances,
    ILogger<ErasureService> logger)
{
    /// <summary>Comparisons per query, well under the 15 a table-storage filter may hold.</summary>
    private const int ComparisonsPerQuery = 10;

    public async Task<ErasureResult> EraseAsync(ErasureSubject subject, CancellationToken cancellationToken)
    {
        var rawFilters = new List<string>();
        var activityKeys = new List<string>();
        var installationKeys = new SortedSet<string>(StringComparer.Ordinal);
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
            installationKeys.Add(installation);
        }

        // The subject's raw events, and the installations they name; then the raw events of those installations.
        var rawTable = await storage.GetTableAsync(TableNames.RawEvents, cancellationToken);
        var rawRows = new Dictionary<(string, string), TableEntity>();
        await CollectAsync(rawTable, rawFilters, rawRows, cancellationToken);
        var named = rawRows.Values.Select(r => r.GetString("InstallationKey")).OfType<string>().Where(k => !installationKeys.Contains(k)).ToList();
        installationKeys.UnionWith(named);
        await CollectAsync(rawTable, [.. named.Distinct(StringComparer.Ordinal).Select(k => TableClient.CreateQueryFilter($"InstallationKey eq {k}"))], rawRows, cancellationToken);
        activityKeys.AddRange(installationKeys.Select(k => ActivityStore.InstallationPrefix + k));

        // The days the user was active, read from their marks: they are taken out of those days' digests (the sorted
        // pseudonyms WAU and MAU are counted from, which hold per-user data until retention) before the marks go. A
        // rollup that read a mark before it went and writes its digest after this edit takes the user out again itself:
        // it sees the suppression, stored before this erasure began, or the mark gone (ActivityDigests.BuildFromMarksAsync).
        var activityTable = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        var activityRows = new Dictionary<(string, string), TableEntity>();
        await CollectAsync(activityTable, [.. activityKeys.Select(k => TableClient.CreateQueryFilter($"RowKey eq {k}"))], activityRows, cancellationToken);
        var userMark = subject.UserKey is { } active ? ActivityStore.UserPrefix + active : null;
        foreach (var row in activityRows.Values)
        {
            if (row.RowKey == userMark && TableKeys.TryParseDay(row.PartitionKey, out var day))
            {
                await digests.RemoveUserAsync(day, subject.UserKey!, cancellationToken);
            }
        }

        var activityDeleted = await batches.DeleteAsync(activityTable, activityRows.Values, cancellationToken);
        activity.Forget();

        var instanceRows = 0;
        if (subject.InstanceKey is { } i)
        {
            instanceRows = await DeleteOneAsync(TableNames.Instances, InstanceRegistry.PartitionKeyOf(i), i, cancellationToken);
            instanceRows += await DeleteMatchingAsync(TableNames.InstanceDeadlines, TableClient.CreateQueryFilter($"RowKey eq {i}"), cancellationToken);
            instanceRows += await DeleteMatchingAsync(TableNames.InstanceStatusHistory, TableClient.CreateQueryFilter($"PartitionKey eq {i}"), cancellationToken);
            instances.Forget(i);
        }

        var installationRows = 0;
        foreach (var n in installationKeys)
        {
            installationRows += await DeleteOneAsync(TableNames.Installations, InstallationRecorder.PartitionKeyOf(n), n, cancellationToken);
        }

        // Support requests are partitioned by day, not installation: one scan per chunk of installations, not per installation.
        var supportRows = 0;
        foreach (var chunk in installationKeys.Chunk(ComparisonsPerQuery))
        {
            var filter = string.Join(" or ", chunk.Select(k => $"({TableClient.CreateQueryFilter($"InstallationKey eq {k}")})"));
            supportRows += await DeleteMatchingAsync(TableNames.SupportRequests, filter, cancellationToken);
        }

        var raw = await batches.DeleteAsync(rawTable, rawRows.Values, cancellationToken);

        var result = new ErasureResult(raw, activityDeleted, instanceRows, installationRows, supportRows);
        LogErased(logger, raw, activityDeleted, instanceRows, installationRows, supportRows);
        return result;
    }

    /// <summary>Adds the rows matching any of <paramref name="filters"/> (their keys and installation) to <paramref name="rows"/>.</summary>
    private static async Task CollectAsync(TableClient table, IReadOnlyList<string> filters, Dictionary<(string, string), TableEntity> rows, CancellationToken cancellationToken)
    {
        foreach (var chunk in filters.Chunk(ComparisonsPerQuery))
        {
            var filter = string.Join(" or ", chunk.Select(f => $"({f})"));
            await foreach (var row in table.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey", "InstallationKey"], cancellationToken: cancellationToken))
            {
                rows[(row.PartitionKey, row.RowKey)] = row;
            }
        }
    }

    private async Task<int> DeleteMatchingAsync(string tableName, string filter, CancellationToken cancellationToken) =>
        await batches.DeleteMatchingAsync(await storage.GetTableAsync(tableName, cancellationToken), filter, cancellationToken);

    private async Task<int> DeleteOneAsync(string tableName, string partitionKey, string rowKey, CancellationToken cancellationToken) =>
        await TableBatchWriter.DeleteIfExistsAsync(await storage.GetTableAsync(tableName, cancellationToken), partitionKey, rowKey, cancellationToken);

    [LoggerMessage(Level = LogLevel.Information, Message = "Erasure deleted {RawEvents} raw events, {ActivityRows} activity rows, {Instances} instance rows, {Installations} installation rows and {SupportRequests} support requests")]
    private static partial void LogErased(ILogger logger, int rawEvents, int activityRows, int instances, int installations, int supportRequests);
}
