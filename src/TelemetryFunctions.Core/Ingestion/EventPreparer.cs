using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// Applies privacy by design to one validated event: identifiers become keyed hashes (an IP address used as an
/// identifier is discarded, never hashed), the instance id is lifted out of the properties, the support e-mail is
/// set aside for its own table, and properties, context and traits are scrubbed of personal data.
/// </summary>
public sealed class EventPreparer
{
    private const int MaxAttributeLength = 64;
    private const int MaxErrorLength = 500;

    private readonly Pseudonymizer _pseudonymizer;
    private readonly Pseudonymizer _previewPseudonymizer;
    private readonly PersonalDataScrubber _scrubber;
    private readonly EventNamesOptions _names;
    private readonly SharingLevel _defaultLevel;
    private readonly ReportingCalendar _calendar;
    private readonly TimeSpan _maxEventAge;
    private readonly TimeSpan _maxFutureSkew;
    private readonly int _maxIdentifierLength;

    public EventPreparer(Pseudonymizer pseudonymizer, PersonalDataScrubber scrubber, ReportingCalendar calendar, IOptions<TelemetryOptions> options)
    {
        _calendar = calendar;
        _maxEventAge = options.Value.Ingestion.MaxEventAge;
        _maxFutureSkew = options.Value.Ingestion.MaxFutureSkew;
        _maxIdentifierLength = options.Value.Ingestion.MaxIdentifierLength;
        _pseudonymizer = pseudonymizer;
        _previewPseudonymizer = pseudonymizer.ForPreview();
        _scrubber = scrubber;
        _names = options.Value.Events;
        _defaultLevel = SharingLevels.TryParse(options.Value.Privacy.DefaultSharingLevel, out var level) ? level : SharingLevel.Advanced;
    }

    /// <summary>
    /// The top-level members of a stored document that hold a pseudonym, and the only ones: every other member holds
    /// what the sender sent (scrubbed). A preview shows its own pseudonyms in these (<see cref="PreviewPseudonyms"/>).
    /// </summary>
    public static readonly IReadOnlyList<string> PseudonymMembers = ["userKey", "anonymousKey", "instanceKey", "groupKey", "previousKey"];

    /// <summary>What one preview shows in place of the stored pseudonyms of the events it prepares (<see cref="Prepare"/>).</summary>
    public PreviewPseudonyms StartPreview() => new(_previewPseudonymizer);

    /// <summary>
    /// The event as it would be stored, or why it is not. With <paramref name="preview"/>, every pseudonym made is also
    /// recorded there, so that the preview can show its own in their place.
    /// </summary>
    public (PreparedEvent? Event, string? Rejection) Prepare(IncomingEvent e, string source, PreviewPseudonyms? preview = null)
    {
        string Pseudonymize(IdentifierKind kind, string value)
        {
            var stored = _pseudonymizer.Pseudonymize(kind, value);
            preview?.Record(stored, kind, value);
            return stored;
        }

        var flags = new List<string>(e.Flags);
        var scrubbed = 0;

        if (e.EventName is { } name && _scrubber.IsPersonalInEventName(name))
        {
            return (null, $"The event name of event {e.Index} contains personal data (an e-mail or IP address, a secret, a credential or a home directory's user name); it is not stored.");
        }

        var userKey = NonAddressSubject(e.UserId, "userId", flags, ref scrubbed) is { } user ? Pseudonymize(IdentifierKind.User, user) : null;
        var anonymousKey = NonAddressSubject(e.AnonymousId, "anonymousId", flags, ref scrubbed) is { } anonymous ? Pseudonymize(IdentifierKind.User, anonymous) : null;

        string? instanceKey = null;
        string? usedInstanceId = null;
        foreach (var path in _names.InstanceIdPaths)
        {
            // A number is read as the digits it was sent with (12345678901234567890 is not 12345678901234567000), so
            // that it matches an opt-out of the same digits; a fraction or an exponent identifies no instance.
            if (LocateNode(e, path) is not { } node)
            {
                continue;
            }

            var fraction = node is JsonValue number && number.GetValueKind() == JsonValueKind.Number && !IsIntegerText(number.ToJsonString());
            if (Take(e, path) is not { } rawInstance)
            {
                // An object, an array or a boolean: no identifier, removed and flagged like any unusable one rather
                // than left for the scrubber to remove silently.
                node.Parent!.AsObject().Remove(path.Split('.')[^1]);
                if (instanceKey is null)
                {
                    flags.Add($"{path} is not an instance identifier; ignored");
                }
            }
            else if (instanceKey is null)
            {
                if (!fraction && Usable(rawInstance) is { } instanceId)
                {
                    instanceKey = Pseudonymize(IdentifierKind.Instance, instanceId);
                    usedInstanceId = instanceId;
                }
                else if (!fraction && PersonalDataScrubber.LooksLikeIpAddress(rawInstance))
                {
                    // As for a userId: the event is kept, without an instance (opting out of an address is refused
                    // for the same reason).
                    DiscardIpAddress(path, flags, ref scrubbed);
                }
                else
                {
                    flags.Add($"{path} is not an instance identifier; ignored");
                }
            }
        }

        // Every path is read: when an event declares more than one level, the most restrictive wins. A declaration
        // the service does not recognize (a typo, false, 5, an object) must not widen collection: it counts as basic.
        SharingLevel? declared = null;
        var unrecognized = false;
        foreach (var path in _names.SharingLevelPaths)
        {
            if (LocateNode(e, path) is not { } node)
            {
                continue;
            }

            var text = node is JsonValue v && v.TryGetValue(out string? s) ? s : null;
            if (!SharingLevels.TryParse(text, out var level))
            {
                level = SharingLevel.Basic;
                unrecognized = true;
            }

            declared = declared is { } earlier && earlier < level ? earlier : level;
        }

        if (unrecognized)
        {
            flags.Add("unrecognized sharing level treated as basic");
        }

        var category = Categorize(e);
        string? installationKey = null;
        if (category is EventCategory.InstallationStarted or EventCategory.InstallationSucceeded or EventCategory.InstallationFailed or EventCategory.InstallationSupport)
        {
            var installationId = Usable(e.AnonymousId) ?? Usable(e.UserId);
            installationKey = installationId is null ? null : Pseudonymize(IdentifierKind.Installation, installationId);
            if (installationKey is null)
            {
                flags.Add("installation event without a usable anonymousId: no installation record");
            }
        }

        string? supportEmail = null;
        if (category == EventCategory.InstallationSupport)
        {
            foreach (var path in _names.SupportEmailPaths)
            {
                // Only the address is kept: whatever else the value holds ("(from 198.51.100.23)") is not what the
                // customer gave on purpose.
                if (Read(e, path) is { } text && supportEmail is null && PersonalDataScrubber.FindEmail(text) is { Length: <= 254 } email)
                {
                    supportEmail = email;
                }
            }
        }

        // The raw ids are stored only as keyed hashes: a copy of one elsewhere in the event would undo that. Ids shorter
        // than 8 characters ("1", "admin") are too common as ordinary values to remove every value equal to them; the
        // places Segment copies an id to (traits.id, context.traits.id, context.externalIds) are removed whatever it is.
        var rawIds = PersonalDataScrubber.CopiesToFind(
            new[] { e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, usedInstanceId }.Where(id => id is not null && IsUsableIdentifier(id)));
        if (e.EventName is { } named && PersonalDataScrubber.HoldsIdentifier(named, rawIds))
        {
            return (null, $"The event name of event {e.Index} contains one of the event's own identifiers, which are stored only pseudonymized; it is not stored.");
        }

        var version = Attribute(e, _names.VersionPaths, rawIds);
        var os = Attribute(e, _names.OsPaths, rawIds);
        var edition = Attribute(e, _names.EditionPaths, rawIds);
        var error = category == EventCategory.InstallationFailed ? ErrorText(e, rawIds) : null;
        scrubbed += _scrubber.Scrub(e.Properties, "properties", rawIds);
        scrubbed += _scrubber.Scrub(e.Context, "context", rawIds);
        scrubbed += _scrubber.Scrub(e.Traits, "traits", rawIds);

        var messageKey = Pseudonymize(IdentifierKind.Message, source + "\n" + e.MessageId);
        var previousKey = Usable(e.PreviousId) is { } p ? Pseudonymize(IdentifierKind.User, p) : null;
        var document = new JsonObject
        {
            ["type"] = e.Type,
            ["event"] = e.EventName,
            ["messageId"] = PersonalDataScrubber.LooksPersonal(e.MessageId) || PersonalDataScrubber.HoldsIdentifier(e.MessageId, rawIds) ? null : e.MessageId,
            ["userKey"] = userKey,
            ["anonymousKey"] = anonymousKey,
            ["instanceKey"] = instanceKey,
            ["groupKey"] = Usable(e.GroupId) is { } g ? Pseudonymize(IdentifierKind.Group, g) : null,
            ["previousKey"] = previousKey,
            ["timestamp"] = e.Timestamp,
            ["originalTimestamp"] = e.ClientTimestamp,
            ["sentAt"] = e.SentAt,
            ["receivedAt"] = e.ReceivedAt,
            ["sharingLevel"] = declared?.ToWire(),
            ["properties"] = e.Properties,
            ["context"] = e.Context,
            ["traits"] = e.Traits,
        };
        if (flags.Count > 0)
        {
            document["flags"] = new JsonArray(flags.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray());
        }

        var payloadBytes = RawEventStore.SerializePayload(document).Length;
        if (payloadBytes > RawEventStore.MaxPayloadBytes)
        {
            return (null, $"Event {e.Index} is {payloadBytes} bytes once stored as JSON (characters outside the Basic Multilingual Plane take 12 bytes each); the limit for a stored event is {RawEventStore.MaxPayloadBytes} bytes.");
        }

        var (rawDay, earlierRawDays) = RawDayOf(e);

        // The person under each id whose hash is stored (an IP address is discarded), with what an opt-out of them
        // erases: the subjects the event's sharing level applies to when it names no instance. Made for every such
        // event, whether or not its level changes anything, so that the ingestor has one set of subjects to decide and
        // declare with; it costs one one-shot HMAC per id (the installation key; the user key is the event's), little
        // beside the event's JSON work.
        IReadOnlyList<ErasureSubject> persons = instanceKey is null
            ? [.. new[] { (Id: e.UserId, Key: userKey), (Id: e.AnonymousId, Key: anonymousKey) }
                .Where(p => p.Key is not null).DistinctBy(p => p.Id, StringComparer.Ordinal)
                .Select(p => ErasureSubject.Person(_pseudonymizer, p.Id!, p.Key!))]
            : [];
        var prepared = new PreparedEvent
        {
            Index = e.Index,
            Source = source,
            MessageKey = messageKey,
            Category = category,
            Type = e.Type,
            EventName = e.EventName,
            UserKey = userKey,
            AnonymousKey = anonymousKey,
            PreviousKey = previousKey,
            InstanceKey = instanceKey,
            Persons = persons,
            InstallationKey = installationKey,
            Version = version,
            Os = os,
            Edition = edition,
            Error = error,
            DeclaredSharingLevel = declared,
            SharingLevelUnrecognized = unrecognized,
            SharingLevel = declared ?? _defaultLevel,
            ReceivedAt = e.ReceivedAt,
            Timestamp = e.Timestamp,
            EarlierRawDays = earlierRawDays,
            RawDay = rawDay,
            ActivityDay = _calendar.DayOf(e.Timestamp),
            Document = document,
            SupportEmail = supportEmail,
            Scrubbed = scrubbed,
        };
        return (prepared, null);
    }

    /// <summary>
    /// The UTC day of the raw-event partition, and the other days an earlier attempt of the same event may have used.
    /// The client's own timestamp is stable across retries (the corrected one moves with each attempt's <c>sentAt</c> and
    /// receive time), so a retry lands in the same partition and is rewritten in place. A clock so wrong that its day
    /// falls outside the accepted window (a device set to 2019 or 2099, whose events skew correction still accepts)
    /// would put the row where retention deletes it at once or never: such events, and events without a timestamp, use
    /// the receive day instead. Since that window moves with the receive time, an event near its edge can be filed under
    /// its client day on one attempt and under a receive day on a retry (or the other way round): those days are
    /// returned as earlier days, which the ingestor looks in before storing, so the retry is stored once.
    /// </summary>
    private (DateOnly Day, IReadOnlyList<DateOnly> EarlierDays) RawDayOf(IncomingEvent e)
    {
        var received = DateOnly.FromDateTime(e.ReceivedAt.UtcDateTime);
        if (e.ClientTimestamp is not { } client)
        {
            // A retry after midnight lands a day later.
            return (received, [received.AddDays(-1)]);
        }

        var day = DateOnly.FromDateTime(client.UtcDateTime);
        var earliest = DateOnly.FromDateTime((e.ReceivedAt - _maxEventAge).UtcDateTime).AddDays(-1);

        // Never later than the day after the event's own (skew-corrected) time plus the skew allowed, so that retention,
        // which looks by event time only that far past its cut (RetentionJob.LastPartitionDayBefore), finds every
        // event whose time has passed. A sentAt far ahead of the receipt dates an event long before it arrived: its
        // receive day is too late as well, and it is filed under the day of its own time.
        var earliestOfTimes = e.Timestamp < e.ReceivedAt ? e.Timestamp : e.ReceivedAt;
        var latest = DateOnly.FromDateTime((earliestOfTimes + _maxFutureSkew).UtcDateTime).AddDays(1);
        if (day >= earliest && day <= latest)
        {
            // A clock more than a day ahead: an earlier attempt, received when the window ended sooner, may have used its
            // receive day (or, after midnight, the day before).
            return day > received.AddDays(1) ? (day, [received, received.AddDays(-1)]) : (day, []);
        }

        // Outside the window now: an earlier attempt may have had the client's day inside it, or used another receive day.
        var fallback = received <= latest ? received : DateOnly.FromDateTime(e.Timestamp.UtcDateTime);
        return (fallback, new[] { fallback.AddDays(-1), day, received, received.AddDays(-1) }.Where(d => d != fallback).Distinct().ToList());
    }

    /// <summary>The identifier to pseudonymize as a person, or null when it is an IP address (discarded: an address is personal data, and hashing 2^32 values hides nothing).</summary>
    private static string? NonAddressSubject(string? raw, string field, List<string> flags, ref int scrubbed)
    {
        if (raw is null)
        {
            return null;
        }

        if (PersonalDataScrubber.LooksLikeIpAddress(raw))
        {
            DiscardIpAddress(field, flags, ref scrubbed);
            return null;
        }

        return raw;
    }

    /// <summary>Records that the identifier at <paramref name="field"/> was an IP address, which is neither hashed nor stored: the event is flagged and the address counts as scrubbed.</summary>
    private static void DiscardIpAddress(string field, List<string> flags, ref int scrubbed)
    {
        flags.Add($"{field} was an IP address and was discarded");
        scrubbed++;
    }

    private EventCategory Categorize(IncomingEvent e)
    {
        if (e.Type != "track" || e.EventName is not { } name)
        {
            return EventCategory.Usage;
        }

        if (Same(name, _names.InstallationStarted)) { return EventCategory.InstallationStarted; }
        if (Same(name, _names.InstallationSucceeded)) { return EventCategory.InstallationSucceeded; }
        if (Same(name, _names.InstallationFailed)) { return EventCategory.InstallationFailed; }
        if (Same(name, _names.InstallationSupport)) { return EventCategory.InstallationSupport; }
        if (Same(name, _names.Heartbeat)) { return EventCategory.Heartbeat; }
        return _names.HealthEvents.Any(h => Same(name, h)) ? EventCategory.Health : EventCategory.Usage;
    }

    private static bool Same(string a, string b) => string.Equals(a.Trim(), b, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The version, OS or edition at the first of <paramref name="paths"/> that holds a usable one: a value the
    /// scrubber would remove from the stored payload under that name (an e-mail or IP address, a secret; a four-part
    /// version such as 1.2.3.4 is a version under a version name) is passed over, as the payload's copy is removed.
    /// </summary>
    private string? Attribute(IncomingEvent e, List<string> paths, IReadOnlyCollection<string> rawIds)
    {
        foreach (var path in paths)
        {
            if (Read(e, path) is { } value)
            {
                var trimmed = value.Trim();
                if (trimmed.Length is > 0 and <= MaxAttributeLength && !SegmentEventReader.HasControlCharacters(trimmed)
                    && !_scrubber.IsPersonalInAllowedValue(path[(path.LastIndexOf('.') + 1)..], trimmed)
                    && !PersonalDataScrubber.HoldsIdentifier(trimmed, rawIds))
                {
                    return trimmed;
                }
            }
        }

        return null;
    }

    private string? ErrorText(IncomingEvent e, IReadOnlyCollection<string> rawIds)
    {
        foreach (var path in _names.ErrorPaths)
        {
            if (Read(e, path) is { } text)
            {
                // Scrubbed whole, then cut: a cut first could leave half an address the patterns no longer see.
                var scrubbed = _scrubber.ScrubText(text, rawIds);
                if (scrubbed is null)
                {
                    return "[error text removed: it contained personal data]";
                }

                return scrubbed.Length > MaxErrorLength ? scrubbed[..MaxErrorLength] : scrubbed;
            }
        }

        return null;
    }

    /// <summary>
    /// <paramref name="id"/> if it can identify someone or something: not a placeholder, at most
    /// <c>Ingestion:MaxIdentifierLength</c> characters (the limit the opt-out and the instance lookup apply too), no
    /// control characters, not an IP address.
    /// </summary>
    private string? Usable(string? id) => id is not null && IsUsableIdentifier(id) && !PersonalDataScrubber.LooksLikeIpAddress(id) ? id : null;

    private bool IsUsableIdentifier(string id) =>
        !SegmentEventReader.IsPlaceholder(id) && id.Length <= _maxIdentifierLength && !SegmentEventReader.HasControlCharacters(id);

    /// <summary>A JSON number written as an integer: digits, perhaps after a minus sign.</summary>
    private static bool IsIntegerText(string text)
    {
        var digits = text.AsSpan(text.StartsWith('-') ? 1 : 0);
        return digits.Length > 0 && !digits.ContainsAnyExceptInRange('0', '9');
    }

    /// <summary>The string (or number, as the text it was sent as) at a dot path such as <c>context.os.name</c>.</summary>
    private static string? Read(IncomingEvent e, string path) => Locate(e, path, remove: false);

    /// <summary>Reads the value at a dot path and removes it from the event.</summary>
    private static string? Take(IncomingEvent e, string path) => Locate(e, path, remove: true);

    private static string? Locate(IncomingEvent e, string path, bool remove)
    {
        if (LocateNode(e, path) is not JsonValue value)
        {
            return null;
        }

        string? text = value.TryGetValue(out string? s) ? s
            : value.GetValueKind() == JsonValueKind.Number ? value.ToJsonString()
            : null;
        if (text is not null && remove)
        {
            value.Parent!.AsObject().Remove(path.Split('.')[^1]);
        }

        return text;
    }

    /// <summary>The node (of any kind; JSON null is none) at a dot path.</summary>
    private static JsonNode? LocateNode(IncomingEvent e, string path)
    {
        var parts = path.Split('.');
        JsonObject? node = parts[0] switch
        {
            "properties" => e.Properties,
            "context" => e.Context,
            "traits" => e.Traits,
            _ => null,
        };
        for (var i = 1; i < parts.Length - 1 && node is not null; i++)
        {
            node = node[parts[i]] as JsonObject;
        }

        if (node is null || parts.Length < 2 || node[parts[^1]] is not { } found)
        {
            return null;
        }

        return found;
    }
}
