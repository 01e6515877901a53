using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Activity;

/// <summary>Days as the product team reads them: calendar days in <c>Telemetry:ReportingTimeZone</c>.</summary>
public sealed class ReportingCalendar
{
    private readonly TimeZoneInfo _zone;

    public ReportingCalendar(IOptions<TelemetryOptions> options)
    {
        TelemetryOptions.TryFindTimeZone(options.Value.ReportingTimeZone, out _zone);
    }

    public ReportingCalendar(TimeZoneInfo zone) => _zone = zone;

    public TimeZoneInfo Zone => _zone;

    /// <summary>The reporting day an instant falls on.</summary>
    public DateOnly DayOf(DateTimeOffset instant) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(instant, _zone).DateTime);

    /// <summary>The last day that has fully ended at <paramref name="now"/>.</summary>
    public DateOnly LastCompleteDay(DateTimeOffset now) => DayOf(now).AddDays(-1);
}
