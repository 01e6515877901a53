using System.Collections.Concurrent;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Instances;

/// <summary>What one request says about one instance.</summary>
/// <remarks>
/// <c>ReceivedAt</c> is when the server received it: first seen, last seen and status follow it. <c>OccurredAt</c> is
/// when the event happened: its skew-corrected timestamp, capped at <c>ReceivedAt</c> (a clock ahead must not date it
/// after events still to come). Version, OS, edition and sharing level follow it, so an event an offline client sends
/// days late does not undo what a newer one said. An observation merging several events (<see cref="InstanceRegistry.Merge"/>)
/// dates each attribute by the event that gave it (<c>VersionAt</c>, <c>OsAt</c>, <c>EditionAt</c>, <c>SharingLevelAt</c>);
/// an observation of one event dates them all by <c>OccurredAt</c>.
/// </remarks>
public sealed record InstanceObservation(string InstanceKey, string Source, DateTimeOffset ReceivedAt, DateTimeOffset OccurredAt, string? Version, string? Os, string? Edition, SharingLevel? SharingLevel)
{
    public DateTimeOffset VersionAt { get; init; } = OccurredAt;

    public DateTimeOffset OsAt { get; init; } = OccurredAt;

    public DateTimeOffset EditionAt { get; init; } = OccurredAt;

    public DateTimeOffset SharingLevelAt { get; init; } = OccurredAt;
}

/// <summary>One row of the instance registry.</summary>
/// <remarks>
/// <c>AttributesObservedAt</c> is the event time (<see cref="InstanceObservation.OccurredAt"/>) of the latest event that
/// replaced the row's version, OS, edition or sharing level: an attribute given by an earlier event does not replace them.
/// It is null on rows written before it was recorded (and on rows no observation gave an attribute to), whose attributes
/// the next observation received at or after their last seen replaces, as then.
/// </remarks>
public sealed record InstanceRecord(
    string InstanceKey,
    DateTimeOffset FirstSeen,
    DateTimeOffset LastSeen,
    string? Version,
    string? Os,
    string? Edition,
    string? SharingLevel,
    DateTimeOffset? AttributesObservedAt,
    string Status,
    DateTimeOffset StatusChangedAt,
    string? Source,
    ETag ETag);

/// <summary>
/// The registry of instances: first seen, last seen (the server's receive time, never moved backwards),
/// version, OS, edition, sharing level and status. Partitioned into 256 buckets by the instance key.
/// </summary>
/// <remarks>
/// Updates are optimistic: a host keeps the last row it read or wrote and its ETag, and writes with If-Match.
/// Another writer in between makes that write fail with 412; the row is then read again and the change reapplied,
/// so no update is lost. A row whose last-seen time would advance by less than <c>InstanceTouchInterval</c>, with
/// nothing else changed, is not rewritten.
/// A kept row is trusted for at most <c>InstanceRefreshInterval</c> after it was read or written: older, it is read
/// again before it answers <see cref="FindAsync"/> or lets a write be skipped, so a change another host made (a
/// sharing level lowered to basic) applies on this host within that interval.
/// </remarks>
public sealed partial class InstanceRegistry(
    TelemetryStorage storage,
    InactivityIndex index,
    InstanceStatusLog statusLog,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<InstanceRegistry> logger)
{
    public const string Active = "active";
    public const string Inactive = "inactive";
    private const int MaxCached = 200_000;
    private const int MaxAttempts = 8;

    private readonly ConcurrentDictionary<string, Kept> _cache = new(StringComparer.Ordinal);
    private readonly TimeSpan _touchInterval = options.Value.Ingestion.InstanceTouchInterval;
    private readonly TimeSpan _refreshInterval = options.Value.Ingestion.InstanceRefreshInterval;

    public static string PartitionKeyOf(string instanceKey) => TableKeys.Bucket(instanceKey);

    /// <summary>
    /// The row as this host last read or wrote it, if that was less than <c>InstanceRefreshInterval</c> ago; otherwise
    /// (or when it has not seen it) as read from storage now.
    /// </summary>
    public async Task<InstanceRecord?> FindAsync(string instanceKey, CancellationToken cancellationToken)
    {
        if (Fresh(instanceKey) is { } cached)
        {
            return cached;
        }

        var table = await storage.GetTableAsync(TableNames.Instances, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKeyOf(instanceKey), instanceKey, cancellationToken: cancellationToken);
        if (!response.HasValue)
        {
            _cache.TryRemove(instanceKey, out _);
            return null;
        }

        var record = FromEntity(response.Value!);
        Remember(record);
        return record;
    }

    /// <summary>
    /// What one request says about each instance: the latest receive time and, for each attribute, the value given by
    /// the latest event that gives one (by event time; of events at the same time, the later in the request), dated
    /// by that event; <c>OccurredAt</c> is the time of the latest event. Recording and previewing both start from this.
    /// </summary>
    public static IReadOnlyList<InstanceObservation> Merge(IEnumerable<InstanceObservation> observations) =>
        observations
            .GroupBy(o => o.InstanceKey, StringComparer.Ordinal)
            .Select(g => g.OrderBy(o => o.OccurredAt).Aggregate(static (a, b) => new InstanceObservation(
                a.InstanceKey,
                b.Source,
                a.ReceivedAt > b.ReceivedAt ? a.ReceivedAt : b.ReceivedAt,
                b.OccurredAt,
                b.Version ?? a.Version,
                b.Os ?? a.Os,
                b.Edition ?? a.Edition,
                b.SharingLevel ?? a.SharingLevel)
            {
                VersionAt = b.Version is null ? a.VersionAt : b.VersionAt,
                OsAt = b.Os is null ? a.OsAt : b.OsAt,
                EditionAt = b.Edition is null ? a.EditionAt : b.EditionAt,
                SharingLevelAt = b.SharingLevel is null ? a.SharingLevelAt : b.SharingLevelAt,
            }))
            .ToList();

    /// <summary>
    /// The rows recording these observations writes for instances not registered before (what a preview shows): the
    /// instance row, its inactivity deadline, and its first-seen history entry and activity mark.
    /// </summary>
    public IEnumerable<(string Table, TableEntity Row)> PlanNew(IEnumerable<InstanceObservation> observations)
    {
        foreach (var observation in Merge(observations))
        {
            var created = Apply(null, observation);
            yield return (TableNames.Instances, ToEntity(created));
            yield return (TableNames.InstanceDeadlines, index.EntryOf(created.InstanceKey, created.LastSeen));
            foreach (var row in statusLog.PlanFirstSeen(created.InstanceKey, created.FirstSeen))
            {
                yield return row;
            }
        }
    }

    public async Task RecordAsync(IEnumerable<InstanceObservation> observations, CancellationToken cancellationToken)
    {
        var merged = Merge(observations);
        if (merged.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.Instances, cancellationToken);
        await Parallel.ForEachAsync(
            merged,
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (observation, token) => await RecordOneAsync(table, observation, token));
    }

    public void Forget(string instanceKey) => _cache.TryRemove(instanceKey, out _);

    private async Task RecordOneAsync(TableClient table, InstanceObservation observation, CancellationToken cancellationToken)
    {
        // A kept row of any age serves the If-Match write (a stale one fails with 412 and is read again), but only a
        // fresh one may decide that nothing needs writing.
        var current = _cache.TryGetValue(observation.InstanceKey, out var kept) ? kept.Record : null;
        var fresh = current is not null && Fresh(observation.InstanceKey) is not null;
        var lastStatus = 0;

        // What this call recorded before a row write that then lost to another writer's (a reactivation, and the silence
        // before it when no sweep had recorded that): kept, or withdrawn, once the row as that writer left it is read.
        (DateTimeOffset? Silence, DateTimeOffset Reactivated)? recorded = null;

        // The first seen this call recorded before a row write that then lost to another request's (an insert, or an
        // update moving first seen earlier): it stays only if the row ends up first seen at that moment.
        DateTimeOffset? recordedFirstSeen = null;

        // Once the row is written (or needs no write), the first seen it was read with and the one this call recorded
        // are withdrawn unless the row is first seen at that moment.
        async Task RetractStaleFirstSeenAsync(InstanceRecord read, InstanceRecord final)
        {
            foreach (var stale in new[] { read.FirstSeen, recordedFirstSeen }.OfType<DateTimeOffset>().Distinct().Where(at => at != final.FirstSeen))
            {
                await statusLog.RetractFirstSeenAsync(final.InstanceKey, stale, final.FirstSeen, cancellationToken);
            }
        }
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            try
            {
                var readNow = false;
                if (current is null)
                {
                    var response = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKeyOf(observation.InstanceKey), observation.InstanceKey, cancellationToken: cancellationToken);
                    current = response.HasValue ? FromEntity(response.Value!) : null;
                    fresh = true;
                    readNow = true;
                }

                if (recorded is { } earlier)
                {
                    await SettleRecordedAsync(observation.InstanceKey, current, earlier, cancellationToken);
                    recorded = null;
                }

                if (current is null)
                {
                    // Deadline and history first: if the insert then fails, they are harmless hints a retry rewrites.
                    var created = Apply(null, observation);
                    await index.ScheduleAsync(created.InstanceKey, created.LastSeen, cancellationToken);
                    await statusLog.RecordFirstSeenAsync(created.InstanceKey, created.FirstSeen, cancellationToken);
                    recordedFirstSeen = created.FirstSeen;
                    var added = await table.AddEntityAsync(ToEntity(created), cancellationToken);
                    Remember(created with { ETag = added.Headers.ETag ?? default });
                    return;
                }

                var updated = Apply(current, observation);
                var disproved = Disproves(current, observation) ? current.StatusChangedAt : (DateTimeOffset?)null;
                if (disproved is { } silentAt)
                {
                    // Received at or before the moment the sweep declared the instance silent (its write lost to the
                    // sweep's, which is why it reads an inactive row): the instance was not surely silent for longer
                    // than the threshold, the rule the sweep goes by. It stays active since it last became active, and the inactivity is withdrawn
                    // once its new deadline is filed and before the row is written (so a failure in between leaves a
                    // row a later sweep records again, at that deadline), and once more after (removing what a sweep
                    // still recording it wrote meanwhile).
                    var activeSince = await statusLog.ActiveSinceAsync(updated.InstanceKey, silentAt, cancellationToken) ?? current.FirstSeen;
                    updated = updated with { Status = Active, StatusChangedAt = activeSince };
                }

                // Silent past its deadline (so for longer than the threshold) with no sweep having said so (the next
                // one was not due yet, or runs were missed): judged by the same rule as the sweep, the silence is
                // recorded as a sweep on time would have recorded it, inactive at the deadline, then active again now.
                // A sweep recording it meanwhile writes the same entry.
                var unrecordedSilence = current.Status == Active && index.IsSilentAt(current.LastSeen, observation.ReceivedAt) ? index.DeadlineOf(current.LastSeen) : (DateTimeOffset?)null;
                if (unrecordedSilence is not null)
                {
                    if (!readNow)
                    {
                        // Judged on a kept row, which another host may have moved on since: a silence is recorded only
                        // as storage holds the row now.
                        current = null;
                        continue;
                    }

                    updated = updated with { StatusChangedAt = observation.ReceivedAt };
                }

                if (!NeedsWrite(current, updated))
                {
                    if (fresh)
                    {
                        await RetractStaleFirstSeenAsync(current, updated);
                        return;
                    }

                    // Kept too long to trust that storage still holds it: read it and decide again.
                    current = null;
                    continue;
                }

                var moved = updated.LastSeen != current.LastSeen;
                if (moved)
                {
                    await index.ScheduleAsync(updated.InstanceKey, updated.LastSeen, cancellationToken);
                }

                if (disproved is { } retracted)
                {
                    await statusLog.RetractInactiveAsync(updated.InstanceKey, retracted, cancellationToken);
                }

                // Received before the row's first seen (it lost the insert to a request received after it, or was
                // replayed): first seen moves earlier, and so do its history entry and mark.
                if (updated.FirstSeen != current.FirstSeen)
                {
                    await statusLog.RecordFirstSeenAsync(updated.InstanceKey, updated.FirstSeen, cancellationToken);
                    recordedFirstSeen = updated.FirstSeen;
                }

                if (unrecordedSilence is { } silenceStarted)
                {
                    await statusLog.RecordAsync(updated.InstanceKey, Inactive, silenceStarted, InactivitySweep.SilentReason, cancellationToken);
                }

                if ((current.Status != Active && updated.Status == Active && disproved is null) || unrecordedSilence is not null)
                {
                    await statusLog.RecordAsync(updated.InstanceKey, Active, updated.StatusChangedAt, "reactivated", cancellationToken);
                    recorded = (unrecordedSilence, updated.StatusChangedAt);
                }

                var written = await table.UpdateEntityAsync(ToEntity(updated), current.ETag, TableUpdateMode.Replace, cancellationToken);
                Remember(updated with { ETag = written.Headers.ETag ?? default });
                if (disproved is { } withdrawn)
                {
                    await statusLog.RetractInactiveAsync(updated.InstanceKey, withdrawn, cancellationToken);
                }

                if (moved)
                {
                    await index.UnscheduleAsync(updated.InstanceKey, current.LastSeen, keep: updated.LastSeen, cancellationToken);
                }

                await RetractStaleFirstSeenAsync(current, updated);
                return;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412 or 404)
            {
                // Another writer got there first (or the row was erased): read it again and reapply.
                LogConcurrentUpdate(logger, observation.InstanceKey, e.Status, attempt);
                lastStatus = e.Status;
                _cache.TryRemove(observation.InstanceKey, out _);
                current = null;
            }
        }

        throw new StorageContentionException($"The instance row could not be updated after {MaxAttempts} attempts (last status {lastStatus}).");
    }

    /// <summary>
    /// After a row write that lost to another writer's, what this call recorded before it stays only as far as the row now
    /// confirms it. Its reactivation stays if the row is active since that very moment; otherwise it goes (the next
    /// attempt records it again if it still applies; another request's reactivation after the same silence stands
    /// instead). The silence before it stays if the row shows it: inactive since that moment (a sweep recorded the same),
    /// or active since a later one (another request ended the same silence first). Otherwise the silence was not what
    /// this call saw (a heartbeat received before the deadline got its write in first, or the instance was erased) and it
    /// is withdrawn; the next attempt records the silence the row shows, if any.
    /// </summary>
    private async Task SettleRecordedAsync(string instanceKey, InstanceRecord? now, (DateTimeOffset? Silence, DateTimeOffset Reactivated) recorded, CancellationToken cancellationToken)
    {
        if (now is not { Status: Active } || now.StatusChangedAt != recorded.Reactivated)
        {
            await statusLog.RemoveAsync(instanceKey, Active, recorded.Reactivated, cancellationToken);
        }

        if (recorded.Silence is { } silence
            && !(now is { Status: Inactive } && now.StatusChangedAt == silence)
            && !(now is { Status: Active } && now.StatusChangedAt > silence))
        {
            await statusLog.RetractInactiveAsync(instanceKey, silence, cancellationToken);
        }
    }

    /// <summary>The kept row of <paramref name="instanceKey"/> if it was read or written less than <c>InstanceRefreshInterval</c> ago.</summary>
    private InstanceRecord? Fresh(string instanceKey) =>
        _cache.TryGetValue(instanceKey, out var kept) && time.GetUtcNow() - kept.At < _refreshInterval ? kept.Record : null;

    private static InstanceRecord Apply(InstanceRecord? current, InstanceObservation o)
    {
        // A new row is an empty one the observation fills.
        current ??= new InstanceRecord(o.InstanceKey, o.ReceivedAt, o.ReceivedAt, null, null, null, null, null, Active, o.ReceivedAt, o.Source, default);

        var lastSeen = o.ReceivedAt > current.LastSeen ? o.ReceivedAt : current.LastSeen;
        var firstSeen = o.ReceivedAt < current.FirstSeen ? o.ReceivedAt : current.FirstSeen;
        var newer = o.ReceivedAt >= current.LastSeen;

        // The attributes follow event time: each one the observation gives replaces the row's unless the row holds
        // those of a later event; given by an earlier one, it only fills what the row lacks. A row from before event
        // times were recorded is judged on receive time, as it was then, until an observation replacing its attributes
        // dates them. The row is then dated by the latest attribute that replaced.
        DateTimeOffset? replacedAt = null;
        string? Take(string? stored, string? given, DateTimeOffset givenAt)
        {
            if (given is null)
            {
                return stored;
            }

            if (current.AttributesObservedAt is { } storedAt ? givenAt < storedAt : !newer)
            {
                return stored ?? given;
            }

            if (replacedAt is null || givenAt > replacedAt)
            {
                replacedAt = givenAt;
            }

            return given;
        }

        var version = Take(current.Version, o.Version, o.VersionAt);
        var os = Take(current.Os, o.Os, o.OsAt);
        var edition = Take(current.Edition, o.Edition, o.EditionAt);
        var sharingLevel = Take(current.SharingLevel, o.SharingLevel?.ToWire(), o.SharingLevelAt);

        var status = current.Status;
        var statusChangedAt = current.StatusChangedAt;

        // An inactive row's StatusChangedAt is the moment it went silent (its deadline: last seen + threshold + the
        // touch interval, see InactivityIndex.DeadlineOf): only an observation
        // received after that moment is a reactivation. One received between last seen and that moment disproves the
        // inactivity instead (RecordOneAsync undoes it); one received at or before last seen says nothing new.
        if (status != Active && o.ReceivedAt > current.StatusChangedAt)
        {
            status = Active;
            statusChangedAt = o.ReceivedAt;
        }

        return current with
        {
            FirstSeen = firstSeen,
            LastSeen = lastSeen,
            Version = version,
            Os = os,
            Edition = edition,
            SharingLevel = sharingLevel,
            AttributesObservedAt = replacedAt ?? current.AttributesObservedAt,
            Status = status,
            StatusChangedAt = statusChangedAt,
            Source = newer ? o.Source : current.Source,
        };
    }

    /// <summary>Whether <paramref name="o"/>, received after the row's last seen time and at or before its inactivity, shows the instance was not silent.</summary>
    private static bool Disproves(InstanceRecord current, InstanceObservation o) =>
        current.Status == Inactive && o.ReceivedAt > current.LastSeen && o.ReceivedAt <= current.StatusChangedAt;

    /// <remarks>
    /// <see cref="InstanceRecord.AttributesObservedAt"/> moving alone (a later event confirming the same attributes) is
    /// not written (every event would otherwise rewrite the row), nor kept in this host's copy of the row. It is written
    /// only when the same observation needs the write anyway (last seen moved by the touch interval, or anything else
    /// changed); otherwise it is dropped. The row keeps the time of an earlier event with those attributes, and a late
    /// event dated after that time still replaces them. Being dated after them, it reports a change since; it is wrong
    /// only when they changed back before the dropped confirmation (2.0, then 1.0, then 2.0 again, the 1.0 event
    /// arriving last), and then only until the next event dated after it.
    /// </remarks>
    private bool NeedsWrite(InstanceRecord before, InstanceRecord after) =>
        after.LastSeen - before.LastSeen >= _touchInterval
        || after.FirstSeen != before.FirstSeen
        || after.Version != before.Version
        || after.Os != before.Os
        || after.Edition != before.Edition
        || after.SharingLevel != before.SharingLevel
        || after.Status != before.Status
        || after.StatusChangedAt != before.StatusChangedAt
        || after.Source != before.Source;

    private void Remember(InstanceRecord record)
    {
        if (_cache.Count > MaxCached)
        {
            _cache.Clear();
        }

        _cache[record.InstanceKey] = new Kept(record, time.GetUtcNow());
    }

    /// <summary>A row as this host last read or wrote it, and when.</summary>
    private sealed record Kept(InstanceRecord Record, DateTimeOffset At);

    public static InstanceRecord FromEntity(TableEntity e) => new(
        e.RowKey,
        e.GetDateTimeOffset("FirstSeen") ?? default,
        e.GetDateTimeOffset("LastSeen") ?? default,
        e.GetString("Version"),
        e.GetString("Os"),
        e.GetString("Edition"),
        e.GetString("SharingLevel"),
        e.GetDateTimeOffset("AttributesObservedAt"),
        e.GetString("Status") ?? Active,
        e.GetDateTimeOffset("StatusChangedAt") ?? default,
        e.GetString("Source"),
        e.ETag);

    public static TableEntity ToEntity(InstanceRecord r) => new(PartitionKeyOf(r.InstanceKey), r.InstanceKey)
    {
        ["FirstSeen"] = r.FirstSeen,
        ["LastSeen"] = r.LastSeen,
        ["Version"] = r.Version,
        ["Os"] = r.Os,
        ["Edition"] = r.Edition,
        ["SharingLevel"] = r.SharingLevel,
        ["AttributesObservedAt"] = r.AttributesObservedAt,
        ["Status"] = r.Status,
        ["StatusChangedAt"] = r.StatusChangedAt,
        ["Source"] = r.Source,
    };

    [LoggerMessage(Level = LogLevel.Debug, Message = "Instance {InstanceKey} changed under this write (status {Status}); attempt {Attempt} rereads it")]
    private static partial void LogConcurrentUpdate(ILogger logger, string instanceKey, int status, int attempt);
}
