using System.Collections.Concurrent;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Privacy;

/// <summary>Why a subject's events are suppressed.</summary>
public static class SuppressionReasons
{
    /// <summary>An explicit <c>POST /v1/opt-out</c>: permanent.</summary>
    public const string OptOut = "opt-out";

    /// <summary>
    /// The instance (or, for an event without one, the person) declared sharing level <c>disabled</c>: lifted when it
    /// declares basic or advanced again.
    /// </summary>
    public const string SharingDisabled = "sharing-disabled";
}

/// <summary>
/// A stored suppression: why, whether its erasure is still to be done, the keys that erasure covers, when it was
/// written and last erased, and the row's ETag (what a later conditional write or delete is checked against).
/// </summary>
public sealed record Suppression(string Reason, bool ErasurePending, ErasureSubject Keys, DateTimeOffset? CreatedAt, DateTimeOffset? ErasedAt, ETag ETag);

/// <summary>
/// Subjects (users, instances) whose events are dropped on arrival. The list lives in storage (shared by every host)
/// and is cached in memory for <c>SuppressionRefreshInterval</c>; a change made on this host takes effect at once,
/// one made on another host within that interval. Keys are <c>u_{userKey}</c> and <c>i_{instanceKey}</c>.
/// </summary>
public sealed class SuppressionList(TelemetryStorage storage, TableBatchWriter batches, IOptions<TelemetryOptions> options, TimeProvider time) : IDisposable
{
    public const string PartitionKey = "subject";

    /// <summary>
    /// True on a row whose erasure is still to be repeated once the stale window after its creation is over (set with
    /// the row, kept by an erasure that began within that window, cleared by one that began after it). Rows written
    /// before this property existed lack it; the retention job then goes by their times.
    /// </summary>
    public const string RepeatDueProperty = "ErasureRepeatDue";
    /// <summary>The start of a user's subject key; <see cref="UserSubjectsEnd"/> is the first key after every user's.</summary>
    private const string UserSubjectPrefix = "u_";
    private const string UserSubjectsEnd = "u`";

    private readonly TimeSpan _refreshInterval = options.Value.Ingestion.SuppressionRefreshInterval;
    private readonly SemaphoreSlim _refreshLock = new(1, 1);
    private volatile Snapshot _snapshot = new(new Dictionary<string, string>(StringComparer.Ordinal), DateTimeOffset.MinValue);

    public static string UserSubject(string userKey) => UserSubjectPrefix + userKey;

    public static string InstanceSubject(string instanceKey) => "i_" + instanceKey;

    /// <summary>The current list (refreshed from storage when older than the refresh interval).</summary>
    public async Task<IReadOnlyDictionary<string, string>> GetAsync(CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
        if (time.GetUtcNow() - snapshot.LoadedAt < _refreshInterval)
        {
            return snapshot.Reasons;
        }

        await _refreshLock.WaitAsync(cancellationToken);
        try
        {
            snapshot = _snapshot;
            if (time.GetUtcNow() - snapshot.LoadedAt < _refreshInterval)
            {
                return snapshot.Reasons;
            }

            var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
            var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
            await foreach (var row in table.QueryAsync<TableEntity>(
                TableClient.CreateQueryFilter($"PartitionKey eq {PartitionKey}"),
                select: ["RowKey", "Reason"],
                cancellationToken: cancellationToken))
            {
                reasons[row.RowKey] = ReasonOf(row);
            }

            _snapshot = new Snapshot(reasons, time.GetUtcNow());
            return reasons;
        }
        finally
        {
            _refreshLock.Release();
        }
    }

    /// <summary>
    /// The user keys suppressed now, read from storage rather than the cache: a host's cached list may be older than
    /// a suppression written on another host, and the daily rollup needs every suppression stored before it reads.
    /// </summary>
    public async Task<IReadOnlySet<string>> ReadSuppressedUsersAsync(CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        var users = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        await foreach (var row in table.QueryAsync<TableEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {PartitionKey} and RowKey ge {UserSubjectPrefix} and RowKey lt {UserSubjectsEnd}"),
            select: ["RowKey"],
            cancellationToken: cancellationToken))
        {
            users.Add(row.RowKey[UserSubjectPrefix.Length..]);
        }

        return users;
    }

    /// <summary>
    /// Adds subjects, and returns the subjects whose row this wrote, each with the ETag to mark it erased under
    /// (<see cref="ETag.All"/> for an opt-out). An explicit opt-out is never downgraded to a sharing-level suppression:
    /// a sharing-level row is only ever inserted, so a row already stored (an opt-out this host's cached list does not
    /// show yet, written on another host or meanwhile) is left as it is, with its own keys and pending erasure.
    /// </summary>
    /// <remarks>With <paramref name="erasures"/>, rows keep the subject's keys and are marked pending erasure until <see cref="MarkErasedAsync"/>.</remarks>
    public async Task<IReadOnlyDictionary<string, ETag>> AddAsync(IEnumerable<string> subjects, string reason, CancellationToken cancellationToken, IReadOnlyDictionary<string, ErasureSubject>? erasures = null)
    {
        var current = await GetAsync(cancellationToken);
        var rows = subjects
            .Distinct(StringComparer.Ordinal)
            .Where(s => reason == SuppressionReasons.OptOut || !(current.TryGetValue(s, out var existing) && existing == SuppressionReasons.OptOut))
            .Select(s =>
            {
                var row = new TableEntity(PartitionKey, s) { ["Reason"] = reason, ["CreatedAt"] = time.GetUtcNow() };
                if (erasures is not null && erasures.TryGetValue(s, out var keys))
                {
                    row["ErasurePending"] = true;
                    row[RepeatDueProperty] = true;
                    row["UserKey"] = keys.UserKey;
                    row["InstanceKey"] = keys.InstanceKey;
                    row["InstallationKey"] = keys.InstallationKey;
                }

                return row;
            })
            .ToList();
        if (rows.Count == 0)
        {
            return new Dictionary<string, ETag>(StringComparer.Ordinal);
        }

        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        IReadOnlyDictionary<string, ETag> written;
        if (reason == SuppressionReasons.OptOut)
        {
            await batches.SubmitAsync(table, rows.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), cancellationToken);
            written = rows.ToDictionary(r => r.RowKey, _ => ETag.All, StringComparer.Ordinal);
        }
        else
        {
            written = await InsertNewAsync(table, rows, cancellationToken);
        }

        Update(d =>
        {
            foreach (var subject in written.Keys)
            {
                d[subject] = reason;
            }
        });
        return written;
    }

    /// <summary>
    /// Inserts the rows not stored yet, a transaction of 100 at a time; a transaction refused because one of its rows
    /// exists is retried row by row, each existing row left as it is. Returns the rows inserted, with their ETags.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, ETag>> InsertNewAsync(TableClient table, List<TableEntity> rows, CancellationToken cancellationToken)
    {
        var written = new ConcurrentDictionary<string, ETag>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(
            rows.Chunk(TableBatchWriter.MaxOperationsPerTransaction),
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (chunk, token) =>
            {
                try
                {
                    var response = await batches.SubmitTransactionAsync(table, [.. chunk.Select(r => new TableTransactionAction(TableTransactionActionType.Add, r))], [409], token);
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        written[chunk[i].RowKey] = response.Value[i].Headers.ETag ?? ETag.All;
                    }
                }
                catch (RequestFailedException e) when (e.Status == 409)
                {
                    foreach (var row in chunk)
                    {
                        try
                        {
                            var added = await table.AddEntityAsync(row, token);
                            written[row.RowKey] = added.Headers.ETag ?? ETag.All;
                        }
                        catch (RequestFailedException c) when (c.Status == 409)
                        {
                            // Stored meanwhile (an opt-out, or the subject disabled on another host): left as it is.
                        }
                    }
                }
            });
        return written;
    }

    /// <summary>
    /// Marks a subject's suppression erased, and returns the row's new ETag; null when the row is gone (the suppression
    /// was lifted meanwhile) or changed since it was read as <paramref name="ifMatch"/> (<see cref="ETag.All"/>: any
    /// row). The row is only ever updated, never created: a lifted suppression recreated here would hold neither
    /// reason nor keys, and would suppress the subject that had just been allowed back. <paramref name="repeatDue"/>
    /// says whether the erasure began before other hosts' cached lists could have caught up with the suppression, so it
    /// is to be done once more after that (<see cref="RepeatDueProperty"/>); false once an erasure began after it.
    /// </summary>
    public async Task<ETag?> MarkErasedAsync(string subject, DateTimeOffset erasedAt, bool repeatDue, ETag ifMatch, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        try
        {
            var response = await table.UpdateEntityAsync(
                new TableEntity(PartitionKey, subject) { ["ErasurePending"] = false, ["ErasedAt"] = erasedAt, [RepeatDueProperty] = repeatDue },
                ifMatch,
                TableUpdateMode.Merge,
                cancellationToken);
            return response.Headers.ETag;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            return null;
        }
    }

    /// <summary>A subject's suppression as stored now, or null when it has none.</summary>
    public async Task<Suppression?> FindAsync(string subject, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKey, subject, cancellationToken: cancellationToken);
        return found.HasValue ? Read(found.Value!) : null;
    }

    /// <summary>
    /// Lifts the sharing-level suppressions of subjects that declared basic or advanced again, and returns the subjects
    /// lifted. Never an explicit opt-out, and never a suppression whose erasure is still pending: deleting that row would
    /// forget the erasure, so what was stored before the subject disabled sharing would survive. Each row is deleted
    /// only if unchanged since it was read: as given in <paramref name="read"/> (null: there was no row), else read here.
    /// </summary>
    public async Task<IReadOnlyList<string>> LiftSharingSuppressionAsync(IEnumerable<string> subjects, IReadOnlyDictionary<string, Suppression?> read, CancellationToken cancellationToken)
    {
        var current = await GetAsync(cancellationToken);
        var candidates = subjects
            .Distinct(StringComparer.Ordinal)
            .Where(s => current.TryGetValue(s, out var reason) && reason == SuppressionReasons.SharingDisabled)
            .ToList();
        if (candidates.Count == 0)
        {
            return [];
        }

        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        var lifted = new List<string>();
        foreach (var subject in candidates)
        {
            if (!read.TryGetValue(subject, out var found))
            {
                var stored = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKey, subject, cancellationToken: cancellationToken);
                found = stored.HasValue ? Read(stored.Value!) : null;
            }

            if (found is not null and not { Reason: SuppressionReasons.SharingDisabled, ErasurePending: false })
            {
                continue;
            }

            try
            {
                if (found is not null)
                {
                    await table.DeleteEntityAsync(PartitionKey, subject, found.ETag, cancellationToken);
                }

                lifted.Add(subject);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 412)
            {
                // Changed or lifted meanwhile: left as it is now; a later declaration lifts it if it still may.
            }
        }

        Update(d =>
        {
            foreach (var subject in lifted)
            {
                d.Remove(subject);
            }
        });
        return lifted;
    }

    public void Dispose() => _refreshLock.Dispose();

    private void Update(Action<Dictionary<string, string>> change)
    {
        var copy = new Dictionary<string, string>(_snapshot.Reasons, StringComparer.Ordinal);
        change(copy);
        _snapshot = new Snapshot(copy, _snapshot.LoadedAt);
    }

    /// <summary>The keys a suppression row's erasure covers, as <see cref="AddAsync"/> wrote them.</summary>
    public static ErasureSubject KeysOf(TableEntity row) =>
        new(row.GetString("UserKey"), row.GetString("InstanceKey"), row.GetString("InstallationKey"));

    private static Suppression Read(TableEntity row) => new(
        ReasonOf(row),
        row.GetBoolean("ErasurePending") == true,
        KeysOf(row),
        row.GetDateTimeOffset("CreatedAt"),
        row.GetDateTimeOffset("ErasedAt"),
        row.ETag);

    /// <summary>
    /// Every suppression is written with its reason. A row without one was left by marking erased a suppression lifted
    /// meanwhile (before that write stopped creating rows): it is read as a sharing-level suppression, so it still
    /// drops the subject's events (never less private than intended) but the subject's next basic or advanced
    /// declaration lifts it, rather than holding as a permanent opt-out nobody asked for.
    /// </summary>
    private static string ReasonOf(TableEntity row) => row.GetString("Reason") ?? SuppressionReasons.SharingDisabled;

    private sealed record Snapshot(Dictionary<string, string> Reasons, DateTimeOffset LoadedAt);
}
