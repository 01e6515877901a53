using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// What happened to a request's events. Every valid event is accepted, dropped for a stated reason, or rejected.
/// <paramref name="Instances"/> is what the request records in the instance registry: the accepted events' instances,
/// and those of events dropped at sharing level basic that declared their level.
/// </summary>
public sealed record IngestOutcome(
    IReadOnlyList<PreparedEvent> Accepted,
    IReadOnlyList<EventRejection> Rejected,
    IReadOnlyDictionary<DropReason, int> Dropped,
    int Scrubbed,
    IReadOnlyList<InstanceObservation> Instances);

/// <summary>
/// Turns validated events into stored rows: privacy decisions (opt-out, sharing level), de-duplication, then the
/// raw events, activity marks, installation records, support requests and instance registry, all written before the
/// request is acknowledged. Every write is idempotent, so a retry after a failure stores nothing twice.
/// </summary>
public sealed partial class EventIngestor(
    EventPreparer preparer,
    SuppressionList suppressions,
    InstanceRegistry instances,
    RawEventStore rawEvents,
    ActivityStore activity,
    InstallationRecorder installations,
    SupportRequestStore supportRequests,
    OptOutService optOut,
    IngestionMetrics metrics,
    ILogger<EventIngestor> logger)
{
    /// <summary>Subjects declaring sharing level disabled that one request erases itself; the retention job erases the rest.</summary>
    public const int MaxErasuresPerRequest = 10;

    /// <summary>
    /// Decides and, unless <paramref name="dryRun"/>, stores. A dry run reads (the opt-out list, instances) but writes
    /// nothing, and decides with the stored pseudonyms as ingestion does; the events and instances it returns carry the
    /// pseudonyms a preview shows instead (<see cref="PreviewPseudonyms"/>), never the stored ones.
    /// </summary>
    public async Task<IngestOutcome> IngestAsync(string source, IReadOnlyList<IncomingEvent> events, IReadOnlyList<EventRejection> rejectedUpstream, bool dryRun, CancellationToken cancellationToken)
    {
        var rejected = new List<EventRejection>(rejectedUpstream);
        var dropped = new Dictionary<DropReason, int>();
        var accepted = new List<PreparedEvent>(events.Count);
        var observed = new List<PreparedEvent>(events.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var declarations = new List<SharingDeclaration>();
        var scrubbed = 0;
        var knownLevels = new Dictionary<string, SharingLevel?>(StringComparer.Ordinal);

        var preview = dryRun ? preparer.StartPreview() : null;
        var preparedEvents = new List<PreparedEvent>(events.Count);
        foreach (var incoming in events)
        {
            var (prepared, rejection) = preparer.Prepare(incoming, source, preview);
            if (prepared is null)
            {
                rejected.Add(new EventRejection(incoming.Index, incoming.MessageId, rejection!));
            }
            else
            {
                preparedEvents.Add(prepared);
            }
        }

        // Storage is read only once at least one event is valid: a request with none is refused (400) whatever
        // storage does, so a sender learns what to fix even while storage is down.
        if (preparedEvents.Count == 0)
        {
            if (!dryRun)
            {
                metrics.Record(source, 0, rejected.Count, dropped, scrubbed);
                LogIngested(logger, source, 0, rejected.Count, 0, scrubbed);
            }

            return new IngestOutcome([], rejected, dropped, scrubbed, []);
        }

        var suppressed = await suppressions.GetAsync(cancellationToken);

        // An event that does not declare a sharing level gets its instance's: the one declared in this request,
        // else the one on record.
        var declaredInRequest = new Dictionary<string, SharingLevel>(StringComparer.Ordinal);
        foreach (var e in preparedEvents)
        {
            if (e is { InstanceKey: { } key, DeclaredSharingLevel: { } level })
            {
                declaredInRequest[key] = level;
            }
        }

        foreach (var candidate in preparedEvents)
        {
            var prepared = candidate;
            if (prepared.DeclaredSharingLevel is null && prepared.InstanceKey is { } instanceKey)
            {
                if (declaredInRequest.TryGetValue(instanceKey, out var requestLevel))
                {
                    prepared = prepared with { SharingLevel = requestLevel };
                }
                else
                {
                    // Looked up once per instance and request: an instance the registry does not know yet is not
                    // cached by it, and would otherwise cost one storage read for every event of its first batch.
                    if (!knownLevels.TryGetValue(instanceKey, out var knownLevel))
                    {
                        knownLevel = await instances.FindAsync(instanceKey, cancellationToken) is { SharingLevel: { } known }
                            && SharingLevels.TryParse(known, out var parsed) ? parsed : null;
                        knownLevels[instanceKey] = knownLevel;
                    }

                    if (knownLevel is { } level)
                    {
                        prepared = prepared with { SharingLevel = level };
                    }
                }
            }

            scrubbed += prepared.Scrubbed;
            var decision = Decide(prepared, suppressed);
            if (decision is { } reason)
            {
                Count(dropped, reason);
                if (reason == DropReason.SharingDisabled)
                {
                    Declare(declarations, prepared, enables: false);
                }
                else if (reason == DropReason.SharingBasic && prepared.DeclaredSharingLevel is not null)
                {
                    // The event is dropped, but the level it declares (a downgrade, or basic after disabled) holds:
                    // it is recorded on the instance, so later events that declare none inherit it.
                    if (prepared.EnablesSharing)
                    {
                        Declare(declarations, prepared, enables: true);
                    }

                    if (prepared.InstanceKey is not null)
                    {
                        observed.Add(prepared);
                    }
                }

                continue;
            }

            if (!seen.Add(prepared.MessageKey))
            {
                Count(dropped, DropReason.Duplicate);
                continue;
            }

            if (prepared.EnablesSharing)
            {
                Declare(declarations, prepared, enables: true);
            }

            accepted.Add(prepared);
            observed.Add(prepared);
        }

        var sharing = await PlanSharingChangesAsync(declarations, suppressed, cancellationToken);
        Withhold(sharing.StillSuppressed, DropReason.OptedOut, accepted, observed, dropped);
        Withhold(sharing.Disabling.Select(d => d.Subject).ToHashSet(StringComparer.Ordinal), DropReason.SharingDisabled, accepted, observed, dropped);
        WithholdSentBeforeDisabling(sharing.LastDisabledAt, accepted, observed, dropped);

        if (!dryRun)
        {
            var storedBefore = await rawEvents.FindStoredEarlierAsync(accepted, cancellationToken);
            if (storedBefore.Count > 0)
            {
                var duplicates = accepted.Where(e => storedBefore.Contains(e.MessageKey)).ToHashSet(ReferenceEqualityComparer.Instance);
                accepted.RemoveAll(duplicates.Contains);
                observed.RemoveAll(duplicates.Contains);
                dropped[DropReason.Duplicate] = dropped.GetValueOrDefault(DropReason.Duplicate) + storedBefore.Count;
            }

            var (erasures, read, changed) = await ReenableAsync(sharing, cancellationToken);
            var lifted = await suppressions.LiftSharingSuppressionAsync(sharing.Reenabling.Select(r => r.Subject).Where(s => !changed.Contains(s)), read, cancellationToken);
            Withhold(sharing.Reenabling.Select(r => r.Subject).Except(lifted).ToHashSet(StringComparer.Ordinal), DropReason.OptedOut, accepted, observed, dropped);

            // The five writes go to different tables and each is an idempotent upsert or an ETag-checked update, so
            // they run side by side: a request costs its longest round trip, not their sum. If any fails, the
            // request fails (503) once all have finished, and the client's retry completes the rest without
            // doubling anything (the raw-event rows are the dedupe state and are rewritten in place).
            await Task.WhenAll(
                rawEvents.StoreAsync(accepted, cancellationToken),
                activity.MarkAsync(accepted, cancellationToken),
                installations.RecordAsync(accepted, cancellationToken),
                supportRequests.StoreAsync(accepted, cancellationToken),
                instances.RecordAsync(Observations(observed), cancellationToken));
            await TreatAsOptOutAsync(sharing.Disabling, suppressed, MaxErasuresPerRequest - erasures, cancellationToken);
            metrics.Record(source, accepted.Count, rejected.Count, dropped, scrubbed);
            var droppedTotal = dropped.Values.Sum();
            LogIngested(logger, source, accepted.Count, rejected.Count, droppedTotal, scrubbed);
        }

        return preview is null
            ? new IngestOutcome(accepted, rejected, dropped, scrubbed, Observations(observed))
            : new IngestOutcome(accepted.Select(preview.Show).ToList(), rejected, dropped, scrubbed, Observations(observed).Select(preview.Show).ToList());
    }

    private static List<InstanceObservation> Observations(List<PreparedEvent> observed) =>
        observed.Where(e => e.InstanceKey is not null)
            .Select(e => new InstanceObservation(e.InstanceKey!, e.Source, e.ReceivedAt, e.Timestamp < e.ReceivedAt ? e.Timestamp : e.ReceivedAt, e.Version, e.Os, e.Edition, e.DeclaredSharingLevel))
            .ToList();

    private static DropReason? Decide(PreparedEvent e, IReadOnlyDictionary<string, string> suppressed)
    {
        // A person whose events carry no instance declares their own sharing level: a suppression for declaring it
        // disabled is lifted by their declaring basic or advanced again. An explicit opt-out never is.
        bool PersonSuppressed(string? key) =>
            key is not null && suppressed.TryGetValue(SuppressionList.UserSubject(key), out var reason)
            && (reason == SuppressionReasons.OptOut || e.InstanceKey is not null || !e.EnablesSharing);

        if (PersonSuppressed(e.UserKey) || PersonSuppressed(e.AnonymousKey))
        {
            return DropReason.OptedOut;
        }

        // An alias naming an opted-out person as its previousId would link the erased person to a new id.
        if (e.PreviousKey is { } p && suppressed.ContainsKey(SuppressionList.UserSubject(p)))
        {
            return DropReason.OptedOut;
        }

        if (e.SharingLevel == SharingLevel.Disabled)
        {
            return DropReason.SharingDisabled;
        }

        if (e.InstanceKey is { } i && suppressed.TryGetValue(SuppressionList.InstanceSubject(i), out var instanceReason)
            && (instanceReason == SuppressionReasons.OptOut || !e.EnablesSharing))
        {
            return DropReason.OptedOut;
        }

        return e.SharingLevel == SharingLevel.Basic && e.Category == EventCategory.Usage ? DropReason.SharingBasic : null;
    }

    /// <summary>
    /// The subjects a sharing level applies to, each with what erasing it covers: the event's instance, or without one
    /// the person under each id the event names (<see cref="PreparedEvent.Persons"/>), with the same keys an opt-out of
    /// the instance, or of the person's ids, erases (<see cref="ErasureSubject"/>).
    /// </summary>
    private static IReadOnlyList<ErasureSubject> SharingSubjects(PreparedEvent e) =>
        e.InstanceKey is { } instance ? [ErasureSubject.Instance(instance)] : e.Persons;

    private static void Declare(List<SharingDeclaration> declarations, PreparedEvent e, bool enables)
    {
        foreach (var keys in SharingSubjects(e))
        {
            declarations.Add(new SharingDeclaration(keys, enables, e.Index));
        }
    }

    /// <summary>
    /// What a request's sharing-level declarations change, each subject taking the last level it declared in the
    /// request. A subject that ends disabled is suppressed and erased, and none of its events in the request is stored.
    /// A subject that ends enabled while suppressed for sharing (or after declaring disabled earlier in the request) is
    /// re-enabled, but only once what was stored before it disabled sharing is erased: the erasures it still needs are
    /// done by the request, at most <see cref="MaxErasuresPerRequest"/>; a subject beyond that stays suppressed (its
    /// events dropped) until the retention job has erased it, and its next declaration then lifts the suppression.
    /// Events a subject sent in the request before its last declaration of disabled are not stored either: they were
    /// sent before the disable, which erases what was sent before it.
    /// </summary>
    private async Task<SharingPlan> PlanSharingChangesAsync(List<SharingDeclaration> declarations, IReadOnlyDictionary<string, string> suppressed, CancellationToken cancellationToken)
    {
        var last = new Dictionary<string, SharingDeclaration>(StringComparer.Ordinal);
        var lastDisabledAt = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var d in declarations)
        {
            last[d.Subject] = d;
            if (!d.Enables)
            {
                lastDisabledAt[d.Subject] = Math.Max(d.Index, lastDisabledAt.GetValueOrDefault(d.Subject, int.MinValue));
            }
        }

        var disabling = new List<SharingDeclaration>();
        var reenabling = new List<Reenabling>();
        var stillSuppressed = new HashSet<string>(StringComparer.Ordinal);
        var erasures = 0;
        foreach (var d in declarations.Where(d => ReferenceEquals(last[d.Subject], d)))
        {
            if (!d.Enables)
            {
                disabling.Add(d);
                continue;
            }

            var wasSuppressed = suppressed.TryGetValue(d.Subject, out var reason);
            if (wasSuppressed && reason != SuppressionReasons.SharingDisabled)
            {
                continue;
            }

            // Still to erase: a suppression whose erasure is pending or not yet final, or what this request's own
            // disable would erase. The row read here is the one lifted (or not, if it changed since).
            ErasureSubject? erase = null;
            Suppression? stored = null;
            if (wasSuppressed)
            {
                stored = await suppressions.FindAsync(d.Subject, cancellationToken);
                if (stored is { Reason: SuppressionReasons.SharingDisabled } && optOut.NeedsErasureBeforeLift(stored))
                {
                    erase = stored.Keys;
                }
            }
            else if (lastDisabledAt.ContainsKey(d.Subject))
            {
                erase = d.Keys;
            }
            else
            {
                continue;
            }

            if (erase is not null && erasures++ >= MaxErasuresPerRequest)
            {
                stillSuppressed.Add(d.Subject);
                if (!wasSuppressed)
                {
                    disabling.Add(d);
                }

                continue;
            }

            reenabling.Add(new Reenabling(d.Subject, erase, wasSuppressed, stored));
        }

        return new SharingPlan(disabling, reenabling, stillSuppressed, lastDisabledAt);
    }

    /// <summary>
    /// Erases what the re-enabled subjects stored before they disabled sharing. Returns how many erasures, the
    /// suppression rows as they now are (each to be lifted only if still so), and the subjects whose row changed
    /// meanwhile (not to be lifted on what was read).
    /// </summary>
    private async Task<(int Erasures, Dictionary<string, Suppression?> Read, HashSet<string> Changed)> ReenableAsync(SharingPlan plan, CancellationToken cancellationToken)
    {
        var erasures = 0;
        var read = new Dictionary<string, Suppression?>(StringComparer.Ordinal);
        var changed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in plan.Reenabling.Where(r => r.WasSuppressed && r.Erase is null))
        {
            read[r.Subject] = r.Stored;
        }

        foreach (var r in plan.Reenabling.Where(r => r.Erase is not null))
        {
            if (r.WasSuppressed)
            {
                if (await optOut.EraseBeforeLiftAsync(r.Subject, r.Stored!, cancellationToken) is { } erased)
                {
                    read[r.Subject] = erased;
                }
                else
                {
                    changed.Add(r.Subject);
                }
            }
            else
            {
                // Suppressed first, as any disable is, so an erasure interrupted here is completed by the retention job.
                await optOut.SuppressAndEraseAsync([r.Erase!], SuppressionReasons.SharingDisabled, 1, cancellationToken);
            }

            erasures++;
        }

        return (erasures, read, changed);
    }

    /// <summary>
    /// Drops, counting them as sharing disabled, the events to be stored that a subject sent before its last
    /// declaration of disabled in the request: even if it declares basic or advanced later, the disable erases what was
    /// sent before it, and the erasure runs before this request stores anything.
    /// </summary>
    private static void WithholdSentBeforeDisabling(Dictionary<string, int> lastDisabledAt, List<PreparedEvent> accepted, List<PreparedEvent> observed, Dictionary<DropReason, int> dropped)
    {
        if (lastDisabledAt.Count > 0)
        {
            Withhold(e => SharingSubjects(e).Any(s => lastDisabledAt.TryGetValue(s.SuppressionSubject, out var at) && e.Index < at), DropReason.SharingDisabled, accepted, observed, dropped);
        }
    }

    /// <summary>Drops the events of <paramref name="subjects"/> that were to be stored, counting them as <paramref name="reason"/>.</summary>
    private static void Withhold(HashSet<string> subjects, DropReason reason, List<PreparedEvent> accepted, List<PreparedEvent> observed, Dictionary<DropReason, int> dropped)
    {
        if (subjects.Count > 0)
        {
            Withhold(e => SharingSubjects(e).Any(s => subjects.Contains(s.SuppressionSubject)), reason, accepted, observed, dropped);
        }
    }

    /// <summary>Drops the events <paramref name="concerns"/> picks from those to be stored and recorded, counting the stored ones as <paramref name="reason"/>.</summary>
    private static void Withhold(Predicate<PreparedEvent> concerns, DropReason reason, List<PreparedEvent> accepted, List<PreparedEvent> observed, Dictionary<DropReason, int> dropped)
    {
        var withheld = accepted.RemoveAll(concerns);
        if (withheld > 0)
        {
            dropped[reason] = dropped.GetValueOrDefault(reason) + withheld;
        }

        observed.RemoveAll(concerns);
    }

    /// <summary>
    /// An instance (or, without one, a person) whose last declaration in a request is sharing level disabled is erased
    /// and suppressed until it declares basic or advanced again. The suppressions are written at once, in one go, each
    /// with its keys and pending erasure; as many as the request has erasures left (of
    /// <see cref="MaxErasuresPerRequest"/>) are erased now, the rest by the daily retention job, so one batch naming
    /// thousands of disabled instances cannot make its request scan storage for hours.
    /// </summary>
    /// <remarks>
    /// A subject already suppressed is left alone: rewriting its row would mark it pending again and have every
    /// request (and every retention run) erase, for as long as it keeps declaring disabled, what was erased long ago.
    /// </remarks>
    private async Task TreatAsOptOutAsync(List<SharingDeclaration> disabling, IReadOnlyDictionary<string, string> suppressed, int eraseNow, CancellationToken cancellationToken)
    {
        var subjects = disabling
            .Where(d => !suppressed.ContainsKey(d.Subject))
            .DistinctBy(d => d.Subject)
            .Select(d => d.Keys)
            .ToList();
        if (subjects.Count == 0)
        {
            return;
        }

        eraseNow = Math.Max(0, eraseNow);
        await optOut.SuppressAndEraseAsync(subjects, SuppressionReasons.SharingDisabled, eraseNow, cancellationToken);

        if (subjects.Count > eraseNow)
        {
            LogErasuresDeferred(logger, subjects.Count - eraseNow);
        }
    }

    /// <summary>A sharing level an event declared for one subject: disabled, or basic/advanced (<paramref name="Enables"/>).</summary>
    /// <remarks><paramref name="Index"/> is the declaring event's position in the request.</remarks>
    private sealed record SharingDeclaration(ErasureSubject Keys, bool Enables, int Index)
    {
        /// <summary>The suppression-list subject of <see cref="Keys"/>.</summary>
        public string Subject => Keys.SuppressionSubject;
    }

    /// <summary>
    /// A subject re-enabling sharing, with what is to be erased first (null: nothing), whether it was suppressed before
    /// the request, and its suppression row as read then (null: none, or not suppressed before).
    /// </summary>
    private sealed record Reenabling(string Subject, ErasureSubject? Erase, bool WasSuppressed, Suppression? Stored);

    /// <summary><paramref name="LastDisabledAt"/>: per subject, the position of its last declaration of disabled in the request.</summary>
    private sealed record SharingPlan(List<SharingDeclaration> Disabling, List<Reenabling> Reenabling, HashSet<string> StillSuppressed, Dictionary<string, int> LastDisabledAt);

    private static void Count(Dictionary<DropReason, int> dropped, DropReason reason) =>
        dropped[reason] = dropped.GetValueOrDefault(reason) + 1;

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} subjects that declared sharing level disabled are suppressed; their erasure is left to the retention job")]
    private static partial void LogErasuresDeferred(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ingested from {Source}: {Accepted} accepted, {Rejected} rejected, {Dropped} dropped, {Scrubbed} values scrubbed")]
    private static partial void LogIngested(ILogger logger, string source, int accepted, int rejected, int dropped, int scrubbed);
}

/// <summary>Counters an operator can chart (OpenTelemetry meter <c>TelemetryFunctions.Ingestion</c>).</summary>
public sealed class IngestionMetrics : IDisposable
{
    public const string MeterName = "TelemetryFunctions.Ingestion";
    private readonly Meter _meter;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _scrubbed;

    public IngestionMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _accepted = _meter.CreateCounter<long>("telemetry.events.accepted", description: "Events stored.");
        _rejected = _meter.CreateCounter<long>("telemetry.events.rejected", description: "Events refused as invalid.");
        _dropped = _meter.CreateCounter<long>("telemetry.events.dropped", description: "Valid events not stored: opt-out, sharing level or duplicate.");
        _scrubbed = _meter.CreateCounter<long>("telemetry.values.scrubbed", description: "Personal-data keys and values removed before storage.");
    }

    public void Record(string source, int accepted, int rejected, IReadOnlyDictionary<DropReason, int> dropped, int scrubbed)
    {
        var tag = new KeyValuePair<string, object?>("source", source);
        _accepted.Add(accepted, tag);
        _rejected.Add(rejected, tag);
        _scrubbed.Add(scrubbed, tag);
        foreach (var (reason, count) in dropped)
        {
            _dropped.Add(count, tag, new KeyValuePair<string, object?>("reason", reason.ToString()));
        }
    }

    public void Dispose() => _meter.Dispose();
}
