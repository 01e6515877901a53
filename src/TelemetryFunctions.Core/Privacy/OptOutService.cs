using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// An explicit opt-out: the subject is suppressed first (so no new event slips in), then everything stored about
/// it is erased, then the suppression row is marked erased. If erasure is interrupted, the row stays pending and
/// the daily retention job completes it; it also erases once more, once, anything another host accepted while its
/// cached opt-out list was older than the opt-out.
/// </summary>
public sealed partial class OptOutService(
    Pseudonymizer pseudonymizer,
    SuppressionList suppressions,
    ErasureService erasure,
    TelemetryStorage storage,
    TimeProvider time,
    IOptions<TelemetryOptions> options,
    ILogger<OptOutService> logger)
{
    /// <summary>How long after a suppression another host may still accept the subject's events (its cached list, plus a request in flight).</summary>
    private readonly TimeSpan _staleWindow = options.Value.Ingestion.SuppressionRefreshInterval + TimeSpan.FromMinutes(5);

    public async Task<(int Suppressed, ErasureResult Erased)> OptOutAsync(string? userId, string? anonymousId, string? instanceId, CancellationToken cancellationToken)
    {
        // Each id named is erased as a person (with the installation recorded under it), as a person declaring sharing
        // level disabled is (ErasureSubject.Person).
        var subjects = new[] { userId, anonymousId }.OfType<string>().Distinct(StringComparer.Ordinal)
            .Select(id => ErasureSubject.Person(pseudonymizer, id))
            .ToList();
        if (instanceId is not null)
        {
            subjects.Add(ErasureSubject.Instance(pseudonymizer.Pseudonymize(IdentifierKind.Instance, instanceId)));
        }

        var total = await SuppressAndEraseAsync(subjects, SuppressionReasons.OptOut, subjects.Count, cancellationToken);
        return (subjects.Count, total);
    }

    /// <summary>
    /// Suppresses the subjects in one write (each under its <see cref="ErasureSubject.SuppressionSubject"/>), each row
    /// keeping its keys and pending erasure, then erases the first
    /// <paramref name="eraseNow"/> of the rows it wrote and marks them erased; the daily retention job erases the rest.
    /// A row it did not write (a sharing-level suppression finding the subject's row already stored, such as an
    /// opt-out whose erasure of more keys is still pending) is neither erased nor marked here: its own pending state stands.
    /// </summary>
    public async Task<ErasureResult> SuppressAndEraseAsync(IReadOnlyList<ErasureSubject> subjects, string reason, int eraseNow, CancellationToken cancellationToken)
    {
        var written = await suppressions.AddAsync(subjects.Select(s => s.SuppressionSubject), reason, cancellationToken, subjects.ToDictionary(s => s.SuppressionSubject));

        var total = new ErasureResult(0, 0, 0, 0, 0);
        foreach (var keys in subjects.Where(s => written.ContainsKey(s.SuppressionSubject)).Take(eraseNow))
        {
            total = total.Plus(await EraseSuppressedAsync(keys.SuppressionSubject, keys, written[keys.SuppressionSubject], cancellationToken));
        }

        return total;
    }

    /// <summary>
    /// Erases a subject just suppressed and marks its suppression erased, only if the row is still as written
    /// (<paramref name="ifMatch"/>), with its erasure to be repeated once the stale window is over (the suppression
    /// was written just now, so this erasure began inside it).
    /// </summary>
    public async Task<ErasureResult> EraseSuppressedAsync(string subject, ErasureSubject keys, ETag ifMatch, CancellationToken cancellationToken)
    {
        var erased = await erasure.EraseAsync(keys, cancellationToken);
        await suppressions.MarkErasedAsync(subject, time.GetUtcNow(), repeatDue: true, ifMatch, cancellationToken);
        return erased;
    }

    /// <summary>
    /// Erases a sharing-level suppression that is to be lifted, and marks it erased only if the row is still as
    /// <paramref name="stored"/> read it. Returns the row as it now is, or null when it changed or went meanwhile (it is
    /// then not to be lifted on what was read).
    /// </summary>
    public async Task<Suppression?> EraseBeforeLiftAsync(string subject, Suppression stored, CancellationToken cancellationToken)
    {
        var (etag, erasedAt) = await EraseAndMarkAsync(subject, stored.Keys, stored.CreatedAt, stored.ETag, cancellationToken);
        return etag is { } current ? stored with { ErasurePending = false, ErasedAt = erasedAt, ETag = current } : null;
    }

    /// <summary>
    /// Erases a stored suppression's keys and marks its row erased if unchanged since it was read as
    /// <paramref name="ifMatch"/>, with its erasure to be repeated when it began within the stale window after
    /// <paramref name="createdAt"/>. Returns the row's new ETag (null when it changed or went) and the time of marking.
    /// </summary>
    private async Task<(ETag? ETag, DateTimeOffset ErasedAt)> EraseAndMarkAsync(string subject, ErasureSubject keys, DateTimeOffset? createdAt, ETag ifMatch, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        await erasure.EraseAsync(keys, cancellationToken);
        var erasedAt = time.GetUtcNow();
        return (await suppressions.MarkErasedAsync(subject, erasedAt, RepeatDue(createdAt, started), ifMatch, cancellationToken), erasedAt);
    }

    /// <summary>
    /// Whether a suppression still needs an erasure before it may be lifted: its erasure is pending, or it was last
    /// erased before other hosts' cached lists could have caught up with it.
    /// </summary>
    /// <remarks>
    /// Events another host accepted while its cached list was older than the suppression (or that were in flight when
    /// it was written) are stored after its erasure. The retention job erases them once the stale window is over, but
    /// a lift deletes the row the job goes by: a subject re-enabled before the job made its erasure final would keep
    /// them. So it is erased once more before the lift. Events accepted after the lift need no erasure: the subject
    /// has allowed sharing again by then.
    /// </remarks>
    public bool NeedsErasureBeforeLift(Suppression stored) =>
        stored.Keys is not { UserKey: null, InstanceKey: null }
        && (stored.ErasurePending || stored.CreatedAt is not { } created || stored.ErasedAt is not { } erasedAt || erasedAt < created + _staleWindow);

    /// <summary>
    /// Erases subjects whose erasure did not finish, and, once, those erased before other hosts' cached lists could
    /// have caught up with the suppression (events those hosts accepted meanwhile). An erasure begun after that window
    /// is final: it is never repeated, so the job's cost does not grow with the suppression list. Returns how many.
    /// </summary>
    /// <remarks>
    /// Which rows need it is stored on each row (<c>ErasurePending</c>, <see cref="SuppressionList.RepeatDueProperty"/>),
    /// not inferred from the time of the run, so a repeat left undone by missed or failed runs is done by the next one,
    /// however late. Rows written before the repeat was stored are found by the time window they were found by then
    /// (created within the last two days). Each row is marked erased only if unchanged since it was read: a run racing
    /// another run marks it once, and a suppression rewritten meanwhile (the subject opted out again, or was lifted and
    /// suppressed again) keeps what its new write says, for the next run.
    /// </remarks>
    public async Task<int> CompletePendingAsync(CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Suppressions, cancellationToken);
        var now = time.GetUtcNow();
        var recent = now.AddDays(-2);
        // ErasureRepeatDue is SuppressionList.RepeatDueProperty (a property name, so not a formatted value).
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {SuppressionList.PartitionKey} and (ErasurePending eq {true} or ErasureRepeatDue eq {true} or CreatedAt ge {recent})");
        var completed = 0;
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            var keys = SuppressionList.KeysOf(row);
            if ((keys.UserKey is null && keys.InstanceKey is null) || !NeedsErasure(row, now))
            {
                continue;
            }

            await EraseAndMarkAsync(row.RowKey, keys, row.GetDateTimeOffset("CreatedAt"), row.ETag, cancellationToken);
            completed++;
        }

        LogCompleted(logger, completed);
        return completed;
    }

    /// <summary>
    /// Pending; or erased within the stale window, which is now over: as the row's repeat flag says, or, on a row
    /// written before that flag, as its times say.
    /// </summary>
    private bool NeedsErasure(TableEntity row, DateTimeOffset now)
    {
        if (row.GetBoolean("ErasurePending") == true)
        {
            return true;
        }

        if (row.GetDateTimeOffset("CreatedAt") is not { } created)
        {
            return false;
        }

        var windowEnds = created + _staleWindow;
        if (now < windowEnds)
        {
            return false;
        }

        return row.GetBoolean(SuppressionList.RepeatDueProperty)
            ?? (row.GetDateTimeOffset("ErasedAt") is not { } erasedAt || erasedAt < windowEnds);
    }

    /// <summary>Whether an erasure begun at <paramref name="started"/> began before the stale window after the suppression was over.</summary>
    private bool RepeatDue(DateTimeOffset? created, DateTimeOffset started) => created is { } c && started < c + _staleWindow;

    [LoggerMessage(Level = LogLevel.Information, Message = "Completed or repeated {Count} erasures")]
    private static partial void LogCompleted(ILogger logger, int count);
}
