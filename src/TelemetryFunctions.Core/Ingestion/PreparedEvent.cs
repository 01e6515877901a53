using System.Text.Json.Nodes;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Ingestion;

/// <summary>What an event means to the product: it decides what besides the raw event it updates.</summary>
public enum EventCategory
{
    Usage,
    InstallationStarted,
    InstallationSucceeded,
    InstallationFailed,
    InstallationSupport,
    Heartbeat,
    Health,
}

/// <summary>An event after pseudonymization and scrubbing: everything in it may be stored.</summary>
public sealed record PreparedEvent
{
    public required int Index { get; init; }
    public required string Source { get; init; }
    public required string MessageKey { get; init; }
    public required EventCategory Category { get; init; }
    public required string Type { get; init; }
    public string? EventName { get; init; }
    public string? UserKey { get; init; }
    public string? AnonymousKey { get; init; }

    /// <summary>The pseudonymous person behind the event (user id, else anonymous id): the unit of DAU/WAU/MAU.</summary>
    public string? SubjectKey => UserKey ?? AnonymousKey;

    /// <summary>The pseudonymous key of an alias call's <c>previousId</c> (same key space as <see cref="UserKey"/>).</summary>
    public string? PreviousKey { get; init; }
    public string? InstanceKey { get; init; }

    /// <summary>
    /// The person under each id the event names (<see cref="UserKey"/>, <see cref="AnonymousKey"/>), with what erasing
    /// them covers (<see cref="ErasureSubject.Person(Pseudonymizer, string)"/>): set on every event without an instance, the subjects its
    /// sharing level applies to (whether it suppresses, re-enables or is withheld for them); empty on an event with one,
    /// whose level applies to the instance. Stored pseudonyms: a preview never shows them.
    /// </summary>
    public IReadOnlyList<ErasureSubject> Persons { get; init; } = [];
    public string? InstallationKey { get; init; }
    public string? Version { get; init; }
    public string? Os { get; init; }
    public string? Edition { get; init; }
    public string? Error { get; init; }
    public SharingLevel? DeclaredSharingLevel { get; init; }
    public required SharingLevel SharingLevel { get; init; }

    /// <summary>The event declared a sharing level the service does not recognize; it was taken as <c>basic</c>.</summary>
    public bool SharingLevelUnrecognized { get; init; }

    /// <summary>The event clearly declared basic or advanced: this lifts a sharing-level suppression of its instance.</summary>
    public bool EnablesSharing => DeclaredSharingLevel is SharingLevel.Basic or SharingLevel.Advanced && !SharingLevelUnrecognized;
    public required DateTimeOffset ReceivedAt { get; init; }
    public required DateTimeOffset Timestamp { get; init; }
    /// <summary>
    /// Other raw-event partitions an earlier attempt of this event may have used: the day before a receive day (a retry
    /// after midnight), and where the client's clock is so far off that the day chosen depends on the receive time, the
    /// days another attempt would have chosen. Empty for an event with a plausible client clock.
    /// </summary>
    public required IReadOnlyList<DateOnly> EarlierRawDays { get; init; }

    /// <summary>The UTC day of the raw-event partition: the client's own timestamp (stable across retries) when it is plausible, else the receive day.</summary>
    public required DateOnly RawDay { get; init; }

    /// <summary>The reporting-time-zone day the event counts towards.</summary>
    public required DateOnly ActivityDay { get; init; }
    public required JsonObject Document { get; init; }
    public string? SupportEmail { get; init; }
    public int Scrubbed { get; init; }
}

/// <summary>Why a valid event was not stored. Counted and reported, never silently lost.</summary>
public enum DropReason
{
    /// <summary>Its user or instance opted out.</summary>
    OptedOut,

    /// <summary>It declared sharing level <c>disabled</c>.</summary>
    SharingDisabled,

    /// <summary>A feature-usage event from an instance at sharing level <c>basic</c>.</summary>
    SharingBasic,

    /// <summary>The same messageId was already in this request.</summary>
    Duplicate,
}
