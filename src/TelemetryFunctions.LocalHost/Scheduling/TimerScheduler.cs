using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Scheduling;

namespace TelemetryFunctions.LocalHost.Scheduling;

/// <summary>
/// Runs the timer jobs on the same NCRONTAB schedules (the same app settings) as the Functions app. Like a Functions
/// timer with <c>UseMonitor</c>, it remembers each job's last run in storage: when the host was down through a
/// scheduled time, the job runs as soon as the host is back. A failed run is logged and counts as run: as in Azure, the
/// job runs again at its next occurrence. When storage cannot tell the last run, nothing is recorded (the host may have
/// missed a run); it asks again 30 seconds later.
/// </summary>
internal sealed partial class TimerScheduler(
    IConfiguration configuration,
    IServiceProvider services,
    ScheduleMonitor monitor,
    TimeProvider time,
    IOptions<TelemetryOptions> options,
    ILogger<TimerScheduler> logger) : BackgroundService
{
    /// <summary>How long the scheduler waits before it tries storage again when it cannot read or record a run.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(30);

    /// <summary>The longest single wait before the scheduler looks at the clock again.</summary>
    private static readonly TimeSpan MaxWaitStep = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Parsed when the host creates the scheduler, before it starts listening: an expression that is not a six-field
    /// NCRONTAB stops start-up with a message naming its setting, rather than stopping a host that already serves.
    /// </summary>
    private readonly List<(ScheduleDefinition Job, NCrontab.CrontabSchedule Schedule)> _schedules =
        [.. TelemetrySchedules.All.Select(job => (job, TelemetrySchedules.Parse(job, job.ExpressionOf(configuration))))];

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = options.Value;
        return Task.WhenAll(_schedules.Select(s => RunScheduleAsync(s.Job, s.Schedule, stoppingToken)).ToList());
    }

    private async Task RunScheduleAsync(ScheduleDefinition job, NCrontab.CrontabSchedule schedule, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await WaitUntilDueAsync(job, schedule, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The last run could not be read (storage unavailable): nothing ran, so nothing is recorded, and a run
                // missed while the host was down still happens once storage answers.
                LogScheduleUnavailable(logger, e, job.Name);
                await PauseAsync(stoppingToken);
                continue;
            }

            try
            {
                await services.GetRequiredService<TelemetryJobs>().RunAsync(job, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogJobFailed(logger, e, job.Name);
            }

            await RecordRunAsync(job, stoppingToken);
        }
    }

    /// <summary>
    /// Waits for the job's next occurrence after its last run; returns at once if that is past (the host was down). An
    /// occurrence months away, or none at all (30 February), is waited for a minute at a time like any other.
    /// </summary>
    private async Task WaitUntilDueAsync(ScheduleDefinition job, NCrontab.CrontabSchedule schedule, CancellationToken stoppingToken)
    {
        var now = time.GetUtcNow();
        var lastRun = await monitor.LastRunAsync(job.Name, stoppingToken);
        var due = lastRun is { } last ? schedule.NextAfter(last) : schedule.NextAfter(now);
        if (lastRun is null)
        {
            await monitor.RecordRunAsync(job.Name, now, stoppingToken);
        }

        if (due <= now)
        {
            LogPastDue(logger, job.Name, due);
            return;
        }

        // The wait is cut into steps of at most a minute, the wall clock read after each: a timer's delay does not
        // count time the machine spent suspended, so one long delay would run a job due during a laptop's sleep that
        // much later. Waking up each minute runs it within a minute of the machine waking.
        var wait = Task.Delay(Step(due - now), time, stoppingToken);
        LogNextRun(logger, job.Name, due); // once the wait has started: from then on, the clock moving ends it
        await wait;
        while (time.GetUtcNow() is var current && due > current)
        {
            await Task.Delay(Step(due - current), time, stoppingToken);
        }
    }

    private static TimeSpan Step(TimeSpan remaining) => remaining < MaxWaitStep ? remaining : MaxWaitStep;

    /// <summary>
    /// Records the run, whether it succeeded or failed: like a Functions timer, a failed run is not retried at once but
    /// counts as run, so the job runs again at its next occurrence. If the run cannot be recorded (storage unavailable),
    /// it tries again every 30 seconds; a host stopped meanwhile runs the job again when it starts.
    /// </summary>
    private async Task RecordRunAsync(ScheduleDefinition job, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await monitor.RecordRunAsync(job.Name, time.GetUtcNow(), stoppingToken);
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogRecordFailed(logger, e, job.Name);
                await PauseAsync(stoppingToken);
            }
        }
    }

    /// <summary>Waits <see cref="RetryDelay"/> before storage is tried again, returning early (without throwing) when the host stops.</summary>
    private Task PauseAsync(CancellationToken stoppingToken) =>
        Task.Delay(RetryDelay, time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);

    [LoggerMessage(Level = LogLevel.Information, Message = "Timer {Job} next runs at {Due:O}")]
    private static partial void LogNextRun(ILogger logger, string job, DateTimeOffset due);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Job} is past due (was due {Due:O}); running now")]
    private static partial void LogPastDue(ILogger logger, string job, DateTimeOffset due);

    [LoggerMessage(Level = LogLevel.Error, Message = "Timer {Job} failed; it runs again at its next occurrence")]
    private static partial void LogJobFailed(ILogger logger, Exception exception, string job);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Job}: its run could not be recorded; trying again in 30 seconds")]
    private static partial void LogRecordFailed(ILogger logger, Exception exception, string job);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Job}: its last run could not be read; trying again in 30 seconds")]
    private static partial void LogScheduleUnavailable(ILogger logger, Exception exception, string job);
}
