using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// "Installation Support" is the one event that carries an e-mail address on purpose: the user asks to be contacted.
/// The address goes here, in its own table that analytics never reads, partitioned by day of receipt so rows past
/// their retention are deleted by day; it is never copied into raw events or aggregates.
/// </summary>
public sealed class SupportRequestStore(TelemetryStorage storage, TableBatchWriter batches, IOptions<TelemetryOptions> options)
{
    private readonly int _retentionDays = options.Value.Privacy.SupportRequestRetentionDays;

    public IEnumerable<TableEntity> Plan(IEnumerable<PreparedEvent> events) =>
        events
            .Where(e => e.SupportEmail is not null && e.InstallationKey is not null)
            .Select(e => new TableEntity(TableKeys.Day(DateOnly.FromDateTime(e.ReceivedAt.UtcDateTime)), e.InstallationKey + "_" + e.MessageKey)
            {
                ["Email"] = e.SupportEmail,
                ["InstallationKey"] = e.InstallationKey,
                ["Source"] = e.Source,
                ["Os"] = e.Os,
                ["Version"] = e.Version,
                ["ReceivedAt"] = e.ReceivedAt,
                ["DeleteAfter"] = e.ReceivedAt.AddDays(_retentionDays),
            });

    public async Task StoreAsync(IReadOnlyList<PreparedEvent> events, CancellationToken cancellationToken)
    {
        var rows = Plan(events).ToList();
        if (rows.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.SupportRequests, cancellationToken);
        await batches.SubmitAsync(table, rows.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), cancellationToken);
    }
}
