namespace TelemetryFunctions.Storage;

/// <summary>The tables TelemetryFunctions owns. Each is prefixed with <c>Telemetry:Storage:TablePrefix</c>. docs/storage.md explains their keys.</summary>
public static class TableNames
{
    public const string RawEvents = "RawEvents";
    public const string Activity = "Activity";
    public const string Instances = "Instances";
    public const string Installations = "Installations";
    public const string SupportRequests = "SupportRequests";
    public const string Suppressions = "Suppressions";
    public const string InstanceDeadlines = "InstanceDeadlines";
    public const string InstanceStatusHistory = "InstanceStatusHistory";
    public const string DailyStats = "DailyStats";
    public const string Schedules = "Schedules";
    public const string UsageReports = "UsageReports";
    public const string UsageReportBlobs = "UsageReportBlobs";
    public const string UsageRows = "UsageRows";
    public const string UsageMonthly = "UsageMonthly";

    public static IReadOnlyList<string> All { get; } = [RawEvents, Activity, Instances, Installations, SupportRequests, Suppressions, InstanceDeadlines, InstanceStatusHistory, DailyStats, Schedules, UsageReports, UsageReportBlobs, UsageRows, UsageMonthly];

    /// <summary>Blob container of the per-day sorted lists of active users' pseudonyms that make WAU/MAU exact and cheap.</summary>
    public const string ActivityDigestsContainer = "activity-digests";
}
