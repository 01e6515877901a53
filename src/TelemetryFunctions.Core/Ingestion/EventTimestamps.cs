using System.Globalization;
using System.Text.RegularExpressions;

namespace TelemetryFunctions.Ingestion;

/// <summary>Parsing of the ISO 8601 timestamps Segment clients send, and Segment's clock-skew correction.</summary>
public static partial class EventTimestamps
{
    public enum ParseOutcome
    {
        Valid,

        /// <summary>Not an ISO 8601 date-time: the server's time is used and the event is flagged.</summary>
        NotIso8601,

        /// <summary>An ISO date-time outside 1601-01-01..9999-12-31: rejected.</summary>
        OutOfRange,
    }

    public static ParseOutcome TryParse(string text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length > 64)
        {
            return ParseOutcome.NotIso8601;
        }

        if (ExpandedYear().IsMatch(text))
        {
            return ParseOutcome.OutOfRange;
        }

        if (!Iso8601().IsMatch(text))
        {
            return ParseOutcome.NotIso8601;
        }

        // Year 0000 (which DateTimeOffset cannot hold) is as much before 1601 as year 0001.
        if (int.Parse(text.AsSpan(0, 4), NumberStyles.None, CultureInfo.InvariantCulture) < 1601)
        {
            return ParseOutcome.OutOfRange;
        }

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value))
        {
            // The last day of 9999 with a negative offset is, in UTC, already in the year 10000.
            return text.StartsWith("9999-12-31", StringComparison.Ordinal) ? ParseOutcome.OutOfRange : ParseOutcome.NotIso8601;
        }

        if (value.UtcDateTime.Year < 1601)
        {
            return ParseOutcome.OutOfRange;
        }

        value = value.ToUniversalTime();
        return ParseOutcome.Valid;
    }

    /// <summary>
    /// Segment's skew correction: <c>timestamp = receivedAt - (sentAt - clientTimestamp)</c>. The offset between
    /// the client's clock and the server's is removed, so an event queued offline for days keeps its age while a
    /// client clock that is hours wrong does not move it.
    /// </summary>
    public static DateTimeOffset Correct(DateTimeOffset receivedAt, DateTimeOffset? sentAt, DateTimeOffset? clientTimestamp)
    {
        if (clientTimestamp is null)
        {
            return receivedAt;
        }

        if (sentAt is null)
        {
            return clientTimestamp.Value;
        }

        var age = sentAt.Value - clientTimestamp.Value;
        var ticks = receivedAt.UtcTicks - age.Ticks;
        return ticks < DateTimeOffset.MinValue.UtcTicks || ticks > DateTimeOffset.MaxValue.UtcTicks
            ? clientTimestamp.Value
            : new DateTimeOffset(ticks, TimeSpan.Zero);
    }

    [GeneratedRegex(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+\-][0-9]{2}(:?[0-9]{2})?)?)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex Iso8601();

    [GeneratedRegex(@"^[+\-]?[0-9]{5,}-[0-9]{2}-[0-9]{2}", RegexOptions.CultureInvariant)]
    private static partial Regex ExpandedYear();
}
