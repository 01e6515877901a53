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

    public static IReadOnlyList<string> All { get; } = [RawEvents, Activity, Instances, Installations, SupportRequests, Suppressions];
}
