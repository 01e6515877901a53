using System.Text.Json.Nodes;

namespace TelemetryFunctions.Ingestion;

/// <summary>One event that passed validation, still holding the sender's raw identifiers. Never stored or logged as is.</summary>
public sealed class IncomingEvent
{
    public required int Index { get; init; }
    public required string Type { get; init; }
    public string? EventName { get; init; }
    public required string MessageId { get; init; }
    public bool MessageIdAssigned { get; init; }
    public string? UserId { get; init; }
    public string? AnonymousId { get; init; }
    public string? GroupId { get; init; }
    public string? PreviousId { get; init; }

    /// <summary>The client's own time for the event (<c>originalTimestamp</c>, else <c>timestamp</c>), when it sent a valid one.</summary>
    public DateTimeOffset? ClientTimestamp { get; init; }
    public DateTimeOffset? SentAt { get; init; }

    /// <summary>The server's receive time.</summary>
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary><c>receivedAt - (sentAt - clientTimestamp)</c>: the event's time on the server's clock.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    public JsonObject? Properties { get; init; }
    public JsonObject? Context { get; init; }
    public JsonObject? Traits { get; init; }
    public List<string> Flags { get; } = [];
}

/// <summary>Why one event of a request was not stored.</summary>
public sealed record EventRejection(int Index, string? MessageId, string Reason);
