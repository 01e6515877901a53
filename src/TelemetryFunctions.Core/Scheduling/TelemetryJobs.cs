using TelemetryFunctions.Activity;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Retention;

namespace TelemetryFunctions.Scheduling;

/// <summary>Runs a timer job by name: what each Functions timer calls, and what the local scheduler calls.</summary>
public sealed class TelemetryJobs(InactivitySweep sweep, DailyRollup rollup, RetentionJob retention)
{
    public Task<SweepResult> SweepAsync(CancellationToken cancellationToken) => sweep.RunAsync(cancellationToken);

    /// <summary>Computes every day not yet computed up to yesterday, re-doing the last one for late events.</summary>
    public Task<IReadOnlyList<DayFigures>> RollupAsync(CancellationToken cancellationToken) => rollup.CatchUpAsync(cancellationToken);

    public Task<RetentionResult> RetentionAsync(CancellationToken cancellationToken) => retention.RunAsync(cancellationToken);

    public async Task RunAsync(ScheduleDefinition job, CancellationToken cancellationToken)
    {
        if (job == TelemetrySchedules.Sweep)
        {
            await SweepAsync(cancellationToken);
        }
        else if (job == TelemetrySchedules.Rollup)
        {
            await RollupAsync(cancellationToken);
        }
        else if (job == TelemetrySchedules.Retention)
        {
            await RetentionAsync(cancellationToken);
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(job), job.Name, "Unknown timer job.");
        }
    }
}
