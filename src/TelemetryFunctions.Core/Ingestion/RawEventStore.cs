using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// Every accepted event, pseudonymized and scrubbed. PartitionKey <c>{yyyyMMdd}_{source}_{shard}</c>, RowKey the
/// keyed hash of the source and messageId: a retried or concurrent copy of an event lands on the same row, so the
/// same messageId from one source is stored once without reading first.
/// </summary>
/// <remarks>
/// The day is the client's own timestamp for the event, which a retry repeats unchanged; an event without one uses
/// the receive day, and is first looked up in the previous day's partition so a retry that crosses midnight is not
/// stored twice.
/// </remarks>
public sealed class RawEventStore(TelemetryStorage storage, TableBatchWriter batches, IOptions<TelemetryOptions> options)
{
    /// <summary>The largest stored event: Azure Table storage holds at most 64 KiB in one binary property.</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    private static readonly JsonWriterOptions PayloadWriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly int _shards = options.Value.Ingestion.RawEventShards;

    /// <summary>
    /// The stored form of an event: compact UTF-8 JSON with only the escapes JSON needs, so text is not inflated
    /// up to sixfold by HTML-safe escaping (the payload is data, never embedded in a page as is). Characters outside
    /// the Basic Multilingual Plane are still written as escaped surrogate pairs.
    /// </summary>
    public static byte[] SerializePayload(JsonObject document)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, PayloadWriterOptions))
        {
            document.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    public string PartitionKeyOf(DateOnly day, string source, string messageKey) =>
        string.Create(CultureInfo.InvariantCulture, $"{TableKeys.Day(day)}_{source}_{Shard(messageKey):00}");

    public TableEntity ToEntity(PreparedEvent e)
    {
        var entity = new TableEntity(PartitionKeyOf(e.RawDay, e.Source, e.MessageKey), e.MessageKey)
        {
            ["Source"] = e.Source,
            ["Type"] = e.Type,
            ["Event"] = e.EventName,
            ["Category"] = e.Category.ToString(),
            ["UserKey"] = e.UserKey,
            ["AnonymousKey"] = e.AnonymousKey,
            ["PreviousKey"] = e.PreviousKey,
            ["InstanceKey"] = e.InstanceKey,
            ["InstallationKey"] = e.InstallationKey,
            ["EventTime"] = e.Timestamp,
            ["ReceivedAt"] = e.ReceivedAt,
            ["SharingLevel"] = e.SharingLevel.ToString(),
            ["Payload"] = SerializePayload(e.Document),
        };
        return entity;
    }

    /// <summary>
    /// Events an earlier attempt already stored under another day's partition (<see cref="PreparedEvent.EarlierRawDays"/>:
    /// a receive day before midnight, or the other day a far-off client clock put it under). One point read per day and
    /// event, only for such events.
    /// </summary>
    public async Task<HashSet<string>> FindStoredEarlierAsync(IEnumerable<PreparedEvent> events, CancellationToken cancellationToken)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        var candidates = events.Where(e => e.EarlierRawDays.Count > 0).ToList();
        if (candidates.Count == 0)
        {
            return found;
        }

        var table = await storage.GetTableAsync(TableNames.RawEvents, cancellationToken);
        foreach (var e in candidates)
        {
            foreach (var day in e.EarlierRawDays)
            {
                var partition = PartitionKeyOf(day, e.Source, e.MessageKey);
                var existing = await table.GetEntityIfExistsAsync<TableEntity>(partition, e.MessageKey, select: ["RowKey"], cancellationToken);
                if (existing.HasValue)
                {
                    found.Add(e.MessageKey);
                    break;
                }
            }
        }

        return found;
    }

    public async Task StoreAsync(IReadOnlyList<PreparedEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.RawEvents, cancellationToken);
        await batches.SubmitAsync(table, events.Select(e => new TableTransactionAction(TableTransactionActionType.UpsertReplace, ToEntity(e))), cancellationToken);
    }

    private int Shard(string messageKey) =>
        _shards == 1 ? 0 : int.Parse(messageKey.AsSpan(0, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture) % _shards;
}
