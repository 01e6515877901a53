using System.ComponentModel.DataAnnotations;

namespace TelemetryFunctions.Reporting;

/// <summary>Read API settings, bound from <c>Telemetry:Reporting</c> (app settings <c>Telemetry__Reporting__...</c>).</summary>
public sealed class ReportingOptions
{
    public const string SectionName = "Telemetry:Reporting";

    /// <summary>How long the count of the instance registry behind <c>GET /api/stats/instances</c> is reused. Zero counts on every request.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan InstanceCountCacheFor { get; set; } = TimeSpan.FromMinutes(1);
}
