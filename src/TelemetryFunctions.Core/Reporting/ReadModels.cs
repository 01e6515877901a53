using System.Text.Json;
using System.Text.Json.Serialization;

namespace TelemetryFunctions.Reporting;

/// <summary>One day of <c>GET /api/stats/active-users</c>.</summary>
public sealed record ActiveUsersDay(
    DateOnly Day,
    int Dau,
    int Wau,
    int Mau,
    int ActiveInstances,
    IReadOnlyDictionary<string, int> ActiveInstancesByVersion,
    IReadOnlyDictionary<string, int> ActiveInstancesByOs);

public sealed record ActiveUsersResponse(DateOnly From, DateOnly To, string ReportingTimeZone, DateOnly Today, IReadOnlyList<ActiveUsersDay> Days);

/// <summary>Installation counts, for a day or a range, overall or for one OS or version.</summary>
public sealed record InstallationCounts(int Started, int Succeeded, int Failed, int SupportRequests, double? SuccessRate);

public sealed record InstallationGroup(string Value, int Started, int Succeeded, int Failed, double? SuccessRate);

public sealed record InstallationsDay(
    DateOnly Day,
    int Started,
    int Succeeded,
    int Failed,
    int SupportRequests,
    double? SuccessRate,
    IReadOnlyList<InstallationGroup> ByOs,
    IReadOnlyList<InstallationGroup> ByVersion);

public sealed record InstallationsResponse(
    DateOnly From,
    DateOnly To,
    string ReportingTimeZone,
    DateOnly Today,
    InstallationCounts Totals,
    IReadOnlyList<InstallationGroup> ByOs,
    IReadOnlyList<InstallationGroup> ByVersion,
    IReadOnlyList<InstallationsDay> Days);

public sealed record InstanceGroup(string Value, int Active, int Inactive, int Total);

public sealed record InstanceChangesDay(DateOnly Day, int NewInstances, int InstancesGoneInactive);

public sealed record InstancesResponse(
    DateTimeOffset AsOf,
    int Active,
    int Inactive,
    int Total,
    int NewLast7Days,
    int GoneInactiveLast7Days,
    IReadOnlyList<InstanceGroup> ByVersion,
    IReadOnlyList<InstanceGroup> ByOs,
    IReadOnlyList<InstanceChangesDay> RecentDays,
    int InactiveAfterMinutes);

public sealed record InstanceStatusChange(DateTimeOffset At, string Status, string? Reason);

public sealed record InstanceResponse(
    string InstanceKey,
    DateTimeOffset FirstSeen,
    DateTimeOffset LastSeen,
    string? Version,
    string? Os,
    string? Edition,
    string? SharingLevel,
    DateTimeOffset? AttributesObservedAt,
    string Status,
    DateTimeOffset StatusChangedAt,
    string? Source,
    IReadOnlyList<InstanceStatusChange> History);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ActiveUsersResponse))]
[JsonSerializable(typeof(InstallationsResponse))]
[JsonSerializable(typeof(InstancesResponse))]
[JsonSerializable(typeof(InstanceResponse))]
internal sealed partial class ReadJsonContext : JsonSerializerContext;
