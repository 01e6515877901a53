using System.Threading;
using System.Threading.Tasks;
using Microsoft.Azure.Functions.Worker;
using TelemetryFunctions.Scheduling;

namespace TelemetryFunctions.Functions.Timers;

/// <summary>
/// The timer jobs. Schedules come from flat app settings (the same ones the local host reads, see
/// <see cref="TelemetrySchedules"/>); <c>UseMonitor</c> makes a run missed while the app was down happen as soon as it
/// is back. Failures propagate so the host logs and retries them; each job is safe to run twice.
/// </summary>
public sealed class TelemetryTimerFunctions(TelemetryJobs jobs)
{
    [Function("InactivitySweep")]
    public Task InactivitySweepAsync(
        [TimerTrigger("%TelemetrySweepSchedule%", RunOnStartup = false, UseMonitor = true)] TimerInfo timer,
        CancellationToken cancellationToken) =>
        jobs.SweepAsync(cancellationToken);

    [Function("DailyRollup")]
    public Task DailyRollupAsync(
        [TimerTrigger("%TelemetryRollupSchedule%", RunOnStartup = false, UseMonitor = true)] TimerInfo timer,
        CancellationToken cancellationToken) =>
        jobs.RollupAsync(cancellationToken);

    [Function("Retention")]
    public Task RetentionAsync(
        [TimerTrigger("%TelemetryRetentionSchedule%", RunOnStartup = false, UseMonitor = true)] TimerInfo timer,
        CancellationToken cancellationToken) =>
        jobs.RetentionAsync(cancellationToken);
}
