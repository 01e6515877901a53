using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Scheduling;

/// <summary>
/// Remembers when each timer job last ran (the local host's equivalent of the Functions timer's <c>UseMonitor</c>),
/// so a host that was down through a scheduled time runs the job as soon as it is back.
/// </summary>
public sealed class ScheduleMonitor(TelemetryStorage storage)
{
    private const string Partition = "timer";

    public async Task<DateTimeOffset?> LastRunAsync(string job, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Schedules, cancellationToken);
        var row = await table.GetEntityIfExistsAsync<TableEntity>(Partition, job, cancellationToken: cancellationToken);
        return row.HasValue ? row.Value!.GetDateTimeOffset("LastRun") : null;
    }

    public async Task RecordRunAsync(string job, DateTimeOffset ranAt, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Schedules, cancellationToken);
        await table.UpsertEntityAsync(new TableEntity(Partition, job) { ["LastRun"] = ranAt }, TableUpdateMode.Replace, cancellationToken);
    }
}
