using TelemetryFunctions.Activity;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>The read range's refusals name days as the API writes them, whatever the host's culture.</summary>
public sealed class ReadRangeCultureTests
{
    [Theory]
    [InlineData("th-TH")]
    [InlineData("ar-SA")]
    public void A_range_ending_in_the_future_is_refused_naming_today_in_the_gregorian_calendar_whatever_the_current_culture(string culture)
    {
        using var scope = new CultureScope(culture);

        var (_, _, error) = ReadRange.Parse("2026-11-01", "2026-11-09", new ReportingCalendar(TimeZoneInfo.Utc), new DateTimeOffset(2026, 11, 5, 12, 0, 0, TimeSpan.Zero));

        Assert.Equal("to must not be in the future: 2026-11-05 (UTC) or earlier.", error?.Reason);
    }
}
