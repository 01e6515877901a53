using System.Globalization;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Reporting;

/// <summary>
/// The <c>from</c>/<c>to</c> days of a read request, in the reporting calendar. Both or neither: neither means the
/// last <see cref="DefaultDays"/> complete days. A range may end today (whose figures appear once the rollup has run)
/// but not later, and covers at most <see cref="MaxDays"/> days.
/// </summary>
public static class ReadRange
{
    public const int MaxDays = 366;
    public const int DefaultDays = 30;

    public static (DateOnly From, DateOnly To, IngestError? Error) Parse(string? fromText, string? toText, ReportingCalendar calendar, DateTimeOffset now)
    {
        var today = calendar.DayOf(now);
        if (string.IsNullOrEmpty(fromText) && string.IsNullOrEmpty(toText))
        {
            var last = today.AddDays(-1);
            return (last.AddDays(-(DefaultDays - 1)), last, null);
        }

        if (!TryParseDay(fromText, out var from) || !TryParseDay(toText, out var to))
        {
            return (default, default, IngestError.BadRequest("invalid_range", "Give both from and to as days in the form YYYY-MM-DD (or neither, for the last 30 complete days)."));
        }

        if (from > to)
        {
            return (default, default, IngestError.BadRequest("invalid_range", "from must not be after to."));
        }

        if (to > today)
        {
            return (default, default, IngestError.BadRequest("invalid_range", string.Create(CultureInfo.InvariantCulture, $"to must not be in the future: {today:yyyy-MM-dd} ({calendar.Zone.Id}) or earlier.")));
        }

        if (to.DayNumber - from.DayNumber + 1 > MaxDays)
        {
            return (default, default, IngestError.BadRequest("invalid_range", $"The range covers more than {MaxDays} days; ask for at most {MaxDays} days at a time."));
        }

        return (from, to, null);
    }

    private static bool TryParseDay(string? text, out DateOnly day) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);
}
