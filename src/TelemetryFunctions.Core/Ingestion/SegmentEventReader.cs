using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Text;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// Validates one Segment event (a JSON object) and turns it into an <see cref="IncomingEvent"/>, or says, with
/// the field path, why it cannot be accepted.
/// </summary>
internal sealed class SegmentEventReader(IngestionOptions limits)
{
    private static readonly HashSet<string> NonIdentifiers = new(StringComparer.OrdinalIgnoreCase)
    {
        "null", "undefined", "0", "nil", "none", "nan",
    };

    /// <summary>The field path of an event sent on its own rather than in a batch.</summary>
    public const string SingleEventPath = "event";

    /// <summary>
    /// Blank (nothing but white space and invisible formatting characters such as the zero-width space), or a word a
    /// client writes where it has no identifier ("null", "undefined", "0", ...), around which it may stand.
    /// </summary>
    public static bool IsPlaceholder(string value) => TrimInvisible(value) is var visible && (visible.Length == 0 || NonIdentifiers.Contains(visible));

    /// <summary>
    /// <paramref name="value"/> without the white space and the characters <see cref="InvisibleText.IsInvisibleInProse"/>
    /// calls invisible around it.
    /// </summary>
    private static string TrimInvisible(string value)
    {
        static bool Invisible(char c) => char.IsWhiteSpace(c) || InvisibleText.InvisibleInProseChars.Contains(c);
        var start = 0;
        var end = value.Length;
        while (start < end && Invisible(value[start]))
        {
            start++;
        }

        while (end > start && Invisible(value[end - 1]))
        {
            end--;
        }

        return value[start..end];
    }

    public (IncomingEvent? Event, EventRejection? Rejection) Read(
        JsonElement element,
        int index,
        string path,
        string? impliedType,
        JsonElement? batchContext,
        DateTimeOffset? batchSentAt,
        DateTimeOffset receivedAt)
    {
        string? messageId = null;
        EventRejection Reject(string reason) => new(index, messageId, reason);

        if (element.ValueKind != JsonValueKind.Object)
        {
            return (null, Reject($"{path} must be a JSON object."));
        }

        var size = JsonMarshal.GetRawUtf8Value(element).Length;
        if (size > limits.MaxEventBytes)
        {
            return (null, Reject($"{path} is {size} bytes; the limit for one event is {limits.MaxEventBytes} bytes."));
        }

        if (StrictJson.FindInvalidValue(element, path) is { } invalidPath)
        {
            return (null, Reject($"{invalidPath} holds invalid Unicode (a lone surrogate) or a number out of range."));
        }

        if (!TryGetString(element, "messageId", path, out messageId, out var error))
        {
            return (null, Reject(error!));
        }

        var messageIdAssigned = false;
        if (messageId is null)
        {
            messageId = "srv-" + Guid.NewGuid().ToString("N");
            messageIdAssigned = true;
        }
        else if (messageId.Length == 0 || messageId.Length > limits.MaxMessageIdLength || HasControlCharacters(messageId))
        {
            var reason = $"{path}.messageId must be 1-{limits.MaxMessageIdLength} characters without control characters.";
            messageId = null;
            return (null, Reject(reason));
        }

        if (!TryGetString(element, "type", path, out var type, out error))
        {
            return (null, Reject(error!));
        }

        if (impliedType is not null)
        {
            if (type is not null && !string.Equals(type, impliedType, StringComparison.Ordinal))
            {
                return (null, Reject($"{path}.type is '{Truncate(type)}' but this endpoint accepts '{impliedType}' events."));
            }

            type = impliedType;
        }
        else if (type is null)
        {
            return (null, Reject(path == SingleEventPath
                ? $"{path}.type is required to preview one event: give track, identify, page, screen, group or alias (the routes that store one event, such as /v1/track, imply it; /v1/preview does not)."
                : $"{path}.type is required in a batch (track, identify, page, screen, group or alias)."));
        }
        else if (!SegmentCalls.IsKnownType(type))
        {
            return (null, Reject($"{path}.type '{Truncate(type)}' is not a Segment event type (track, identify, page, screen, group or alias)."));
        }

        if (!TryGetIdentifier(element, "userId", path, out var userId, out error)
            || !TryGetIdentifier(element, "anonymousId", path, out var anonymousId, out error))
        {
            return (null, Reject(error!));
        }

        if (userId is null && anonymousId is null)
        {
            return (null, Reject($"{path} needs a userId or an anonymousId."));
        }

        string? eventName = null;
        if (type == "track")
        {
            if (!TryGetString(element, "event", path, out eventName, out error))
            {
                return (null, Reject(error!));
            }

            if (string.IsNullOrWhiteSpace(eventName))
            {
                return (null, Reject($"{path}.event is required for a track event."));
            }
        }
        else if (type is "page" or "screen")
        {
            if (!TryGetString(element, "name", path, out eventName, out error))
            {
                return (null, Reject(error!));
            }
        }

        if (eventName is not null && (eventName.Length > limits.MaxEventNameLength || HasControlCharacters(eventName)))
        {
            return (null, Reject($"{path}.event must be at most {limits.MaxEventNameLength} characters without control characters."));
        }

        string? groupId = null;
        string? previousId = null;
        if (type == "group" && (!TryGetIdentifier(element, "groupId", path, out groupId, out error) || groupId is null))
        {
            return (null, Reject(error ?? $"{path}.groupId is required for a group event."));
        }

        if (type == "alias" && (!TryGetIdentifier(element, "previousId", path, out previousId, out error) || previousId is null))
        {
            return (null, Reject(error ?? $"{path}.previousId is required for an alias event."));
        }

        if (!TryGetObject(element, "properties", path, out var properties, out error)
            || !TryGetObject(element, "context", path, out var context, out error)
            || !TryGetObject(element, "traits", path, out var traits, out error))
        {
            return (null, Reject(error!));
        }

        var propertyCount = CountKeys(properties) + CountKeys(traits);
        if (propertyCount > limits.MaxPropertiesPerEvent)
        {
            return (null, Reject($"{path} has {propertyCount} properties; the limit is {limits.MaxPropertiesPerEvent}."));
        }

        foreach (var (name, section) in new[] { ("properties", properties), ("context", context), ("traits", traits) })
        {
            if (section is { } s && FindBadNameOrValue(s, $"{path}.{name}") is { } problem)
            {
                return (null, Reject(problem));
            }
        }

        var flags = new List<string>();
        var notIso = new List<string>();
        if (!TryGetTimestamp(element, "originalTimestamp", path, notIso, out var originalTimestamp, out error)
            || !TryGetTimestamp(element, "timestamp", path, notIso, out var clientTimestamp, out error)
            || !TryGetTimestamp(element, "sentAt", path, notIso, out var sentAt, out error))
        {
            return (null, Reject(error!));
        }

        var eventTime = originalTimestamp ?? clientTimestamp;

        // An unreadable time is left out; when neither of the event's own times was readable, the server's dates it.
        flags.AddRange(notIso.Select(name => $"{name} is not ISO 8601; {(eventTime is null && name != "sentAt" ? "server time used" : "ignored")}"));

        var sent = sentAt ?? batchSentAt;
        var corrected = EventTimestamps.Correct(receivedAt, sent, eventTime);
        if (corrected < receivedAt - limits.MaxEventAge)
        {
            return (null, Reject(string.Create(CultureInfo.InvariantCulture, $"{path} happened at {corrected:O}, older than the accepted window of {limits.MaxEventAge.TotalDays:0.##} days.")));
        }

        if (corrected > receivedAt + limits.MaxFutureSkew)
        {
            return (null, Reject(string.Create(CultureInfo.InvariantCulture, $"{path} is dated {corrected:O}, more than {limits.MaxFutureSkew.TotalHours:0.##} hours in the future.")));
        }

        var contextNode = context is { } c ? JsonObject.Create(c) : null;
        if (batchContext is { ValueKind: JsonValueKind.Object } shared)
        {
            contextNode ??= new JsonObject();
            foreach (var property in shared.EnumerateObject())
            {
                if (!contextNode.ContainsKey(property.Name))
                {
                    contextNode[property.Name] = JsonNode.Parse(property.Value.GetRawText());
                }
            }
        }

        var incoming = new IncomingEvent
        {
            Index = index,
            Type = type,
            EventName = eventName,
            MessageId = messageId,
            MessageIdAssigned = messageIdAssigned,
            UserId = userId,
            AnonymousId = anonymousId,
            GroupId = groupId,
            PreviousId = previousId,
            ClientTimestamp = eventTime,
            SentAt = sent,
            ReceivedAt = receivedAt,
            Timestamp = corrected,
            Properties = properties is { } p ? JsonObject.Create(p) : null,
            Context = contextNode,
            Traits = traits is { } t ? JsonObject.Create(t) : null,
        };
        incoming.Flags.AddRange(flags);
        if (messageIdAssigned)
        {
            incoming.Flags.Add("messageId assigned by the server");
        }

        return (incoming, null);
    }

    /// <summary>
    /// A batch's own <c>sentAt</c>, the send time of every event that has none of its own, read by the rules of an
    /// event's own (absent or null: none), except that a value that is not ISO 8601 refuses the request rather than
    /// being flagged: it would move every event of the batch. Returns why it is refused, or null.
    /// </summary>
    public static string? ReadBatchSentAt(JsonElement batch, out DateTimeOffset? sentAt)
    {
        var notIso = new List<string>(1);
        if (!TryGetTimestamp(batch, "sentAt", "", notIso, out sentAt, out var error))
        {
            return error;
        }

        return notIso.Count == 0 ? null : "sentAt is not an ISO 8601 date-time (such as 2025-06-15T10:00:00.000Z); it is the send time of every event in the batch.";
    }

    /// <summary>
    /// A batch's own <c>context</c>, merged into each of its events (absent or null: none): an object that keeps the
    /// rules for an event's own context. Returns why it is refused, or null.
    /// </summary>
    public string? ReadBatchContext(JsonElement batch, out JsonElement? context)
    {
        if (!TryGetObject(batch, "context", "", out context, out var error))
        {
            return error;
        }

        return context is { } shared ? FindBadNameOrValue(shared, "context") : null;
    }

    /// <summary>A field's name in a reason: under its path, or alone for a member of the request itself (empty path).</summary>
    private static string Field(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private static bool TryGetString(JsonElement element, string name, string path, out string? value, out string? error)
    {
        value = null;
        error = null;
        if (!element.TryGetProperty(name, out var property) || property.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (property.ValueKind != JsonValueKind.String)
        {
            error = $"{Field(path, name)} must be a string, not {Describe(property.ValueKind)}.";
            return false;
        }

        value = property.GetString();
        return true;
    }

    /// <summary>
    /// An identifier: a string, or a whole number taken as the digits it was sent with (<c>"userId": 42</c> is
    /// <c>"42"</c>, as Segment casts it), so an integer id from the sender's database is not lost; a fraction or an
    /// exponent is refused.
    /// </summary>
    private bool TryGetIdentifier(JsonElement element, string name, string path, out string? value, out string? error)
    {
        if (element.TryGetProperty(name, out var number) && number.ValueKind == JsonValueKind.Number)
        {
            value = WholeNumberDigits(number);
            error = null;
            if (value is null)
            {
                error = $"{Field(path, name)} must be a string or a whole number, not {number.GetRawText()}.";
                return false;
            }
        }
        else if (!TryGetString(element, name, path, out value, out error) || value is null)
        {
            return error is null;
        }

        if (IsPlaceholder(value))
        {
            error = $"{path}.{name} '{Truncate(value)}' is not an identifier.";
            return false;
        }

        if (value.Length > limits.MaxIdentifierLength)
        {
            error = $"{path}.{name} is longer than {limits.MaxIdentifierLength} characters.";
            return false;
        }

        if (HasControlCharacters(value))
        {
            error = $"{path}.{name} contains control characters.";
            return false;
        }

        return true;
    }

    private static bool TryGetObject(JsonElement element, string name, string path, out JsonElement? value, out string? error)
    {
        value = null;
        error = null;
        if (!element.TryGetProperty(name, out var property) || property.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (property.ValueKind != JsonValueKind.Object)
        {
            error = $"{Field(path, name)} must be an object, not {Describe(property.ValueKind)}.";
            return false;
        }

        value = property;
        return true;
    }

    private static bool TryGetTimestamp(JsonElement element, string name, string path, List<string> notIso, out DateTimeOffset? value, out string? error)
    {
        value = null;
        if (!TryGetString(element, name, path, out var text, out error) || text is null)
        {
            return error is null;
        }

        switch (EventTimestamps.TryParse(text, out var parsed))
        {
            case EventTimestamps.ParseOutcome.Valid:
                value = parsed;
                return true;
            case EventTimestamps.ParseOutcome.OutOfRange:
                error = $"{Field(path, name)} is outside the years 1601-9999.";
                return false;
            default:
                notIso.Add(name);
                return true;
        }
    }

    private string? FindBadNameOrValue(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var name = property.Name;
                    if (name.Length == 0 || name.Length > limits.MaxPropertyNameLength)
                    {
                        return $"{path} has a property name that is empty or longer than {limits.MaxPropertyNameLength} characters.";
                    }

                    if (HasControlCharacters(name))
                    {
                        return $"{path} has a property name with control characters.";
                    }

                    if (FindBadNameOrValue(property.Value, path + "." + name) is { } inner)
                    {
                        return inner;
                    }
                }

                return null;

            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindBadNameOrValue(item, $"{path}[{i++}]") is { } inner)
                    {
                        return inner;
                    }
                }

                return null;

            case JsonValueKind.String:
                return JsonMarshal.GetRawUtf8Value(element).Length > limits.MaxStringValueBytes
                    ? $"{path} is longer than {limits.MaxStringValueBytes} bytes."
                    : null;

            default:
                return null;
        }
    }

    private static int CountKeys(JsonElement? element)
    {
        if (element is not { } e)
        {
            return 0;
        }

        var count = 0;
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in e.EnumerateObject())
                {
                    count += 1 + CountKeys(property.Value);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray())
                {
                    count += CountKeys(item);
                }

                break;
        }

        return count;
    }

    /// <summary>
    /// The digits of a JSON number written as a whole number (no sign, fraction or exponent), which is an identifier
    /// as the text of its digits; null for any other value.
    /// </summary>
    internal static string? WholeNumberDigits(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.GetRawText() is var digits && !digits.AsSpan().ContainsAnyExceptInRange('0', '9') ? digits : null;

    /// <summary>
    /// Whether <paramref name="text"/> can be an identifier a client names (to opt out of, to look up): not blank (as
    /// <see cref="IsPlaceholder"/> means it), at most <paramref name="maxLength"/> characters, no control characters.
    /// </summary>
    internal static bool IsIdentifierText(string text, int maxLength) =>
        TrimInvisible(text).Length > 0 && text.Length <= maxLength && !HasControlCharacters(text);

    /// <summary>What <see cref="IsIdentifierText"/> asks of an identifier, for the reason of a refusal.</summary>
    internal static string IdentifierTextRule(int maxLength) =>
        string.Create(CultureInfo.InvariantCulture, $"1-{maxLength} characters, not only invisible ones, without control characters");

    internal static bool HasControlCharacters(string value)
    {
        foreach (var c in value)
        {
            if (char.IsControl(c))
            {
                return true;
            }
        }

        return false;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string Truncate(string value) => value.Length <= 40 ? value : value[..40] + "...";
}
