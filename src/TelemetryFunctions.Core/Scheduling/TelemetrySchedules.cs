using Microsoft.Extensions.Configuration;
using NCrontab;

namespace TelemetryFunctions.Scheduling;

/// <summary>A timer job: its name, the flat app setting holding its NCRONTAB expression (as <c>%Setting%</c> in the Functions app) and the default.</summary>
public sealed record ScheduleDefinition(string Name, string SettingName, string DefaultExpression);

/// <summary>
/// The timer jobs and their schedules, shared by the Functions app (<c>[TimerTrigger("%TelemetrySweepSchedule%")]</c>)
/// and the local host's scheduler, so both run on the same six-field NCRONTAB expressions (seconds first), in UTC.
/// </summary>
public static class TelemetrySchedules
{
    public static ScheduleDefinition Sweep { get; } = new("InactivitySweep", "TelemetrySweepSchedule", "0 */15 * * * *");

    public static ScheduleDefinition Rollup { get; } = new("DailyRollup", "TelemetryRollupSchedule", "0 15 0 * * *");

    public static ScheduleDefinition Retention { get; } = new("Retention", "TelemetryRetentionSchedule", "0 30 1 * * *");

    public static ScheduleDefinition Reconcile { get; } = new("UsageReportReconciliation", "TelemetryReconcileSchedule", "0 */30 * * * *");

    public static IReadOnlyList<ScheduleDefinition> All { get; } = [Sweep, Rollup, Retention, Reconcile];

    public static string ExpressionOf(this ScheduleDefinition definition, IConfiguration configuration) =>
        configuration[definition.SettingName] is { Length: > 0 } configured ? configured : definition.DefaultExpression;

    /// <summary>Parses a six-field NCRONTAB expression, or explains what is wrong with it.</summary>
    public static CrontabSchedule Parse(ScheduleDefinition definition, string expression)
    {
        var schedule = CrontabSchedule.TryParse(expression, new CrontabSchedule.ParseOptions { IncludingSeconds = true });
        return schedule ?? throw new InvalidOperationException(
            $"App setting {definition.SettingName} = '{expression}' is not a six-field NCRONTAB expression (second minute hour day month day-of-week), e.g. '{definition.DefaultExpression}'.");
    }

    public static DateTimeOffset NextAfter(this CrontabSchedule schedule, DateTimeOffset instant) =>
        new(DateTime.SpecifyKind(schedule.GetNextOccurrence(instant.UtcDateTime), DateTimeKind.Utc));
}
