using System.Globalization;
using Azure.Data.Tables;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Instances;

/// <summary>
/// Every change of an instance's status, with its time: PartitionKey the instance key, RowKey
/// <c>{ticks}_{status}</c>, so an instance's history is one partition read in time order. The change is also
/// marked on its day in the activity table (<c>o_</c> gone inactive, <c>f_</c> first seen) so the daily rollup
/// counts it without another scan. Keys come from the change's own time, so recording a change twice is harmless.
/// </summary>
public sealed class InstanceStatusLog(TelemetryStorage storage, ActivityStore activity, ReportingCalendar calendar)
{
    private const string FirstSeenReason = "first seen";

    /// <summary>The history entry of a change of status.</summary>
    public static TableEntity EntryOf(string instanceKey, string status, DateTimeOffset at, string reason) =>
        new(instanceKey, RowKey(at, status))
        {
            ["Status"] = status,
            ["At"] = at,
            ["Reason"] = reason,
        };

    public async Task RecordAsync(string instanceKey, string status, DateTimeOffset at, string reason, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceStatusHistory, cancellationToken);
        await table.UpsertEntityAsync(EntryOf(instanceKey, status, at, reason), TableUpdateMode.Replace, cancellationToken);

        if (status == InstanceRegistry.Inactive)
        {
            await activity.MarkAsync(calendar.DayOf(at), ActivityStore.GoneInactivePrefix + instanceKey, cancellationToken);
        }
    }

    /// <summary>
    /// Withdraws the inactivity recorded at <paramref name="at"/>, which a heartbeat received at or before that moment
    /// proved false: the gone-inactive mark of its day first (unless the history holds another inactivity on that
    /// reporting day), then the history entry, the reverse of the order <see cref="RecordAsync"/> writes them, so a
    /// mark never outlives its history entry. Harmless to repeat, and harmless if nothing was recorded yet.
    /// </summary>
    public async Task RetractInactiveAsync(string instanceKey, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var day = calendar.DayOf(at);
        var history = await HistoryAsync(instanceKey, cancellationToken);
        if (!history.Any(h => h.Status == InstanceRegistry.Inactive && h.At != at && calendar.DayOf(h.At) == day))
        {
            await activity.UnmarkAsync(day, ActivityStore.GoneInactivePrefix + instanceKey, cancellationToken);
        }

        // Not recorded yet (the sweep records after its update) or already withdrawn: nothing to delete.
        await RemoveAsync(instanceKey, InstanceRegistry.Inactive, at, cancellationToken);
    }

    /// <summary>Deletes one history entry (an inactivity withdrawn, a reactivation recorded by a write that then lost); harmless if it is not there.</summary>
    public async Task RemoveAsync(string instanceKey, string status, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceStatusHistory, cancellationToken);
        await TableBatchWriter.DeleteIfExistsAsync(table, instanceKey, RowKey(at, status), cancellationToken);
    }

    /// <summary>When the instance last became active before <paramref name="before"/>, by its history; null if the history does not say.</summary>
    public async Task<DateTimeOffset?> ActiveSinceAsync(string instanceKey, DateTimeOffset before, CancellationToken cancellationToken)
    {
        var history = await HistoryAsync(instanceKey, cancellationToken);
        return history.Where(h => h.Status == InstanceRegistry.Active && h.At < before).Select(h => (DateTimeOffset?)h.At).DefaultIfEmpty().Max();
    }

    public async Task RecordFirstSeenAsync(string instanceKey, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await RecordAsync(instanceKey, InstanceRegistry.Active, at, FirstSeenReason, cancellationToken);
        await activity.MarkAsync(calendar.DayOf(at), ActivityStore.FirstSeenPrefix + instanceKey, cancellationToken);
    }

    /// <summary>
    /// Withdraws a first seen recorded at <paramref name="at"/> that turned out not to be the first (the instance was
    /// seen at <paramref name="firstSeen"/>, earlier): its history entry, and its day's new-instance mark unless that is
    /// the first seen's day too. Harmless to repeat.
    /// </summary>
    public async Task RetractFirstSeenAsync(string instanceKey, DateTimeOffset at, DateTimeOffset firstSeen, CancellationToken cancellationToken)
    {
        var day = calendar.DayOf(at);
        if (day != calendar.DayOf(firstSeen))
        {
            await activity.UnmarkAsync(day, ActivityStore.FirstSeenPrefix + instanceKey, cancellationToken);
        }

        await RemoveAsync(instanceKey, InstanceRegistry.Active, at, cancellationToken);
    }

    /// <summary>The rows <see cref="RecordFirstSeenAsync"/> writes: the history entry and the first-seen mark of its day.</summary>
    public IEnumerable<(string Table, TableEntity Row)> PlanFirstSeen(string instanceKey, DateTimeOffset at) =>
    [
        (TableNames.InstanceStatusHistory, EntryOf(instanceKey, InstanceRegistry.Active, at, FirstSeenReason)),
        (TableNames.Activity, ActivityStore.LifeMark(calendar.DayOf(at), ActivityStore.FirstSeenPrefix + instanceKey)),
    ];

    public async Task<IReadOnlyList<(DateTimeOffset At, string Status, string? Reason)>> HistoryAsync(string instanceKey, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceStatusHistory, cancellationToken);
        var history = new List<(DateTimeOffset, string, string?)>();
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {instanceKey}"), cancellationToken: cancellationToken))
        {
            history.Add((row.GetDateTimeOffset("At") ?? default, row.GetString("Status") ?? "", row.GetString("Reason")));
        }

        return history;
    }

    private static string RowKey(DateTimeOffset at, string status) => string.Create(CultureInfo.InvariantCulture, $"{at.UtcTicks:D19}_{status}");
}
