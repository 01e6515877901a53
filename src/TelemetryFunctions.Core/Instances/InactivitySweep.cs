using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Instances;

/// <summary>What one sweep did.</summary>
public sealed record SweepResult(int Examined, int MarkedInactive, int Rescheduled, int Removed);

/// <summary>
/// Marks instances inactive once they have been silent for longer than <c>InactiveAfter + HeartbeatGrace</c>,
/// judged on the server's receive time: once their deadline (<see cref="InactivityIndex.DeadlineOf"/>) has passed,
/// which allows for the stored last-seen time lagging the last event by up to <c>InstanceTouchInterval</c>, so an
/// instance is never marked early. It reads only the deadline index's passed slots, rereads each candidate's
/// row, and changes it with If-Match, so running twice, concurrently, or late after a missed run gives the same
/// result as running once.
/// </summary>
public sealed partial class InactivitySweep(
    TelemetryStorage storage,
    InactivityIndex index,
    InstanceRegistry registry,
    InstanceStatusLog statusLog,
    TimeProvider time,
    ILogger<InactivitySweep> logger)
{
    private const int MaxAttempts = 8;

    /// <summary>The reason recorded with an inactivity: no event for longer than the threshold.</summary>
    public const string SilentReason = "silent";

    private enum Outcome
    {
        MarkedInactive,
        StillActive,
        Gone,
    }

    public async Task<SweepResult> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var instances = await storage.GetTableAsync(TableNames.Instances, cancellationToken);
        int examined = 0, marked = 0, rescheduled = 0, removed = 0;

        await foreach (var due in index.DueAsync(now, cancellationToken))
        {
            if (due.GetDateTimeOffset("Deadline") is { } deadline && deadline >= now)
            {
                continue;
            }

            examined++;
            var (outcome, lastSeen) = await EvaluateAsync(instances, due.RowKey, now, cancellationToken);
            switch (outcome)
            {
                case Outcome.MarkedInactive:
                    marked++;
                    break;
                case Outcome.StillActive:
                    await index.ScheduleAsync(due.RowKey, lastSeen, cancellationToken);
                    rescheduled++;
                    break;
                default:
                    removed++;
                    break;
            }

            if (outcome != Outcome.StillActive || InactivityIndex.Slot(index.DeadlineOf(lastSeen)) != due.PartitionKey)
            {
                await index.DeleteAsync(due.PartitionKey, due.RowKey, cancellationToken);
            }

            if (examined % 10_000 == 0)
            {
                LogProgress(logger, examined, marked);
            }
        }

        LogSwept(logger, examined, marked, rescheduled, removed);
        return new SweepResult(examined, marked, rescheduled, removed);
    }

    private async Task<(Outcome Outcome, DateTimeOffset LastSeen)> EvaluateAsync(TableClient instances, string instanceKey, DateTimeOffset now, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var response = await instances.GetEntityIfExistsAsync<TableEntity>(InstanceRegistry.PartitionKeyOf(instanceKey), instanceKey, cancellationToken: cancellationToken);
            if (!response.HasValue)
            {
                return (Outcome.Gone, default);
            }

            var record = InstanceRegistry.FromEntity(response.Value!);
            if (!index.IsSilentAt(record.LastSeen, now))
            {
                return (Outcome.StillActive, record.LastSeen);
            }

            var changedAt = index.DeadlineOf(record.LastSeen);
            if (record.Status == InstanceRegistry.Inactive)
            {
                if (record.StatusChangedAt > record.LastSeen)
                {
                    // A sweep made it inactive for this silence but may have stopped before recording the change
                    // (the index row is removed only after): record it again under the same keys, which is harmless.
                    // The time is the one that sweep stored, which a sweep before the deadline gained the touch
                    // interval put at last seen + InactiveAfter + HeartbeatGrace.
                    if (await RecordSilenceAsync(instances, instanceKey, record.StatusChangedAt, cancellationToken) is { } undone)
                    {
                        return (Outcome.StillActive, undone.LastSeen);
                    }
                }

                return (Outcome.Gone, record.LastSeen);
            }

            try
            {
                var inactive = record with { Status = InstanceRegistry.Inactive, StatusChangedAt = changedAt };
                await instances.UpdateEntityAsync(InstanceRegistry.ToEntity(inactive), record.ETag, TableUpdateMode.Replace, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status is 412 or 404)
            {
                // A heartbeat (or an erasure) changed the row meanwhile: look again, having recorded nothing.
                continue;
            }

            // Only once the instance row says inactive: the history entry and the gone-inactive mark have keys from
            // the change's time, so a rerun after a crash between the two writes records the same rows again.
            registry.Forget(instanceKey);
            if (await RecordSilenceAsync(instances, instanceKey, changedAt, cancellationToken) is { } disproved)
            {
                return (Outcome.StillActive, disproved.LastSeen);
            }

            return (Outcome.MarkedInactive, record.LastSeen);
        }

        throw new StorageContentionException($"The instance row kept changing during {MaxAttempts} attempts of the sweep.");
    }

    /// <summary>
    /// Records the inactivity at <paramref name="changedAt"/>, then reads the row once more: a heartbeat received at or
    /// before that moment may have undone the inactivity meanwhile (the row is active again, since a time before
    /// <paramref name="changedAt"/>) and withdrawn what was recorded before these writes landed. The sweep then
    /// withdraws them itself and returns the row; otherwise null.
    /// </summary>
    /// <remarks>
    /// The heartbeat withdraws after writing its row and the sweep checks the row after recording, so whichever comes
    /// last sees the other's write. An active row whose status changed after <paramref name="changedAt"/> was
    /// reactivated by a later heartbeat, and the inactivity stands. Not covered: the two interleave and then this sweep
    /// fails between recording and rereading (or the heartbeat between its row write and its second withdrawal); the
    /// stale history entry and mark then stay beside an active row, and no later run looks at them again.
    /// </remarks>
    private async Task<InstanceRecord?> RecordSilenceAsync(TableClient instances, string instanceKey, DateTimeOffset changedAt, CancellationToken cancellationToken)
    {
        await statusLog.RecordAsync(instanceKey, InstanceRegistry.Inactive, changedAt, SilentReason, cancellationToken);
        var response = await instances.GetEntityIfExistsAsync<TableEntity>(InstanceRegistry.PartitionKeyOf(instanceKey), instanceKey, cancellationToken: cancellationToken);
        if (!response.HasValue || InstanceRegistry.FromEntity(response.Value!) is not { Status: InstanceRegistry.Active } record || record.StatusChangedAt >= changedAt)
        {
            return null;
        }

        await statusLog.RetractInactiveAsync(instanceKey, changedAt, cancellationToken);
        return record;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Inactivity sweep: {Examined} candidates examined so far, {Marked} marked inactive")]
    private static partial void LogProgress(ILogger logger, int examined, int marked);

    [LoggerMessage(Level = LogLevel.Information, Message = "Inactivity sweep done: {Examined} candidates, {Marked} marked inactive, {Rescheduled} still active, {Removed} stale entries removed")]
    private static partial void LogSwept(ILogger logger, int examined, int marked, int rescheduled, int removed);
}
