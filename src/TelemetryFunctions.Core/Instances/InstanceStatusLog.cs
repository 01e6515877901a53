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
    public async Task RecordAsync(string instanceKey, string status, DateTimeOffset at, string reason, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceStatusHistory, cancellationToken);
        await table.UpsertEntityAsync(
            new TableEntity(instanceKey, string.Create(CultureInfo.InvariantCulture, $"{at.UtcTicks:D19}_{status}"))
            {
                ["Status"] = status,
                ["At"] = at,
                ["Reason"] = reason,
            },
            TableUpdateMode.Replace,
            cancellationToken);

        if (status == InstanceRegistry.Inactive)
        {
            await activity.MarkAsync(calendar.DayOf(at), ActivityStore.GoneInactivePrefix + instanceKey, cancellationToken);
        }
    }

    public async Task RecordFirstSeenAsync(string instanceKey, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await RecordAsync(instanceKey, InstanceRegistry.Active, at, "first seen", cancellationToken);
        await activity.MarkAsync(calendar.DayOf(at), ActivityStore.FirstSeenPrefix + instanceKey, cancellationToken);
    }

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
}
