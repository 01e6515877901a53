using TelemetryFunctions.Activity;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Retention;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Scheduling;

/// <summary>Runs a timer job by name: what each Functions timer calls, and what the local scheduler calls.</summary>
public sealed class TelemetryJobs(InactivitySweep sweep, DailyRollup rollup, RetentionJob retention, UsageReportReconciliation reconciliation)
{
    public Task<SweepResult> SweepAsync(CancellationToken cancellationToken) => sweep.RunAsync(cancellationToken);

    /// <summary>Computes every day not yet computed up to yesterday, and the days late activity made dirty (with the WAU/MAU days after them).</summary>
    public Task<IReadOnlyList<DayFigures>> RollupAsync(CancellationToken cancellationToken) => rollup.CatchUpAsync(cancellationToken);

    public Task<RetentionResult> RetentionAsync(CancellationToken cancellationToken) => retention.RunAsync(cancellationToken);

    /// <summary>Processes usage-report blobs whose blob event was missed or whose processing stopped half-way.</summary>
    public Task<ReconciliationResult> ReconcileAsync(CancellationToken cancellationToken) => reconciliation.RunAsync(cancellationToken);

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
        else if (job == TelemetrySchedules.Reconcile)
        {
            await ReconcileAsync(cancellationToken);
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(job), job.Name, "Unknown timer job.");
        }
    }
}
