using System.Globalization;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Instances;

/// <summary>
/// When each active instance will count as silent (<see cref="DeadlineOf"/>): one row per instance in the partition of its deadline's
/// 15-minute slot (<c>yyyyMMddHHmm</c>, UTC). The sweep reads only slots that have passed, so its cost follows the
/// number of instances that may have gone silent, not the size of the fleet.
/// </summary>
/// <remarks>
/// The index is a hint that is never trusted on its own: the sweep rereads the instance row before changing it.
/// A heartbeat writes the new deadline before the instance row and removes the old one after, so a failure in
/// between leaves at most a stale row, which the sweep reschedules or removes.
/// </remarks>
public sealed class InactivityIndex(TelemetryStorage storage, IOptions<TelemetryOptions> options)
{
    private static readonly TimeSpan SlotLength = TimeSpan.FromMinutes(15);

    /// <summary>Silence longer than this makes an instance inactive: <c>InactiveAfter + HeartbeatGrace</c>.</summary>
    public TimeSpan Threshold { get; } = options.Value.Activity.InactiveAfter + options.Value.Activity.HeartbeatGrace;

    /// <summary>
    /// How far an instance's last event may be ahead of the last-seen time its row holds: <c>InstanceTouchInterval</c>,
    /// since the row is not rewritten for an event received less than that after its stored last seen.
    /// </summary>
    public TimeSpan LastSeenLag { get; } = options.Value.Ingestion.InstanceTouchInterval;

    /// <summary>
    /// The deadline of an instance whose row holds <paramref name="lastSeen"/>: <c>lastSeen + Threshold + LastSeenLag</c>.
    /// Its last event was received less than <c>LastSeenLag</c> after <paramref name="lastSeen"/>, so after this moment
    /// it has surely been silent for longer than <see cref="Threshold"/>; before it, it may not have been. An instance
    /// still silent after its deadline is inactive, and the deadline is the moment recorded as when it went inactive:
    /// never before its silence passed the threshold, and at most <c>LastSeenLag</c> after.
    /// </summary>
    public DateTimeOffset DeadlineOf(DateTimeOffset lastSeen) => lastSeen + Threshold + LastSeenLag;

    /// <summary>
    /// Whether an instance whose row holds <paramref name="lastSeen"/> counts as silent at <paramref name="at"/>:
    /// strictly after its deadline. The sweep and a heartbeat ending a silence judge it alike.
    /// </summary>
    public bool IsSilentAt(DateTimeOffset lastSeen, DateTimeOffset at) => at > DeadlineOf(lastSeen);

    public static string Slot(DateTimeOffset instant)
    {
        var utc = instant.UtcDateTime;
        var floored = new DateTime(utc.Ticks - (utc.Ticks % SlotLength.Ticks), DateTimeKind.Utc);
        return floored.ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture);
    }

    /// <summary>The index row of an instance last seen at <paramref name="lastSeen"/>.</summary>
    public TableEntity EntryOf(string instanceKey, DateTimeOffset lastSeen)
    {
        var deadline = DeadlineOf(lastSeen);
        return new TableEntity(Slot(deadline), instanceKey) { ["Deadline"] = deadline, ["LastSeen"] = lastSeen };
    }

    public async Task ScheduleAsync(string instanceKey, DateTimeOffset lastSeen, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceDeadlines, cancellationToken);
        await table.UpsertEntityAsync(EntryOf(instanceKey, lastSeen), TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>Removes the row a previous last-seen time put in the index, unless it is the same slot as <paramref name="keep"/>.</summary>
    public async Task UnscheduleAsync(string instanceKey, DateTimeOffset lastSeen, DateTimeOffset? keep, CancellationToken cancellationToken)
    {
        var slot = Slot(DeadlineOf(lastSeen));
        if (keep is { } k && Slot(DeadlineOf(k)) == slot)
        {
            return;
        }

        await DeleteAsync(slot, instanceKey, cancellationToken);
    }

    public async Task DeleteAsync(string slot, string instanceKey, CancellationToken cancellationToken)
    {
        // Already gone (a concurrent sweep or heartbeat removed it): nothing to delete.
        await TableBatchWriter.DeleteIfExistsAsync(await storage.GetTableAsync(TableNames.InstanceDeadlines, cancellationToken), slot, instanceKey, cancellationToken);
    }

    /// <summary>Index rows whose slot has started by <paramref name="now"/>.</summary>
    public async IAsyncEnumerable<TableEntity> DueAsync(DateTimeOffset now, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.InstanceDeadlines, cancellationToken);
        var slot = Slot(now);
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey le {slot}"), cancellationToken: cancellationToken))
        {
            yield return row;
        }
    }
}
