using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Scheduling;

namespace TelemetryFunctions.LocalHost.Scheduling;

/// <summary>
/// Runs the timer jobs on the same NCRONTAB schedules (the same app settings) as the Functions app. Like a Functions
/// timer with <c>UseMonitor</c>, it remembers each job's last run in storage: when the host was down through a
/// scheduled time, the job runs as soon as the host is back. A failed run is logged and, as in Azure, the job runs
/// again at its next occurrence.
/// </summary>
internal sealed partial class TimerScheduler(
    IConfiguration configuration,
    IServiceProvider services,
    ScheduleMonitor monitor,
    TimeProvider time,
    IOptions<TelemetryOptions> options,
    ILogger<TimerScheduler> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = options.Value;
        var loops = TelemetrySchedules.All
            .Select(job => (job, schedule: TelemetrySchedules.Parse(job, job.ExpressionOf(configuration))))
            .Select(x => RunScheduleAsync(x.job, x.schedule, stoppingToken))
            .ToList();
        return Task.WhenAll(loops);
    }

    private async Task RunScheduleAsync(ScheduleDefinition job, NCrontab.CrontabSchedule schedule, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var now = time.GetUtcNow();
                var lastRun = await monitor.LastRunAsync(job.Name, stoppingToken);
                var due = lastRun is { } last ? schedule.NextAfter(last) : schedule.NextAfter(now);
                if (lastRun is null)
                {
                    await monitor.RecordRunAsync(job.Name, now, stoppingToken);
                }

                if (due > now)
                {
                    LogNextRun(logger, job.Name, due);
                    await Task.Delay(due - now, time, stoppingToken);
                }
                else
                {
                    LogPastDue(logger, job.Name, due);
                }

                var jobs = services.GetRequiredService<TelemetryJobs>();
                await jobs.RunAsync(job, stoppingToken);
                await monitor.RecordRunAsync(job.Name, time.GetUtcNow(), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogJobFailed(logger, e, job.Name);
                await SkipToNextOccurrenceAsync(job, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Like a Functions timer, a failed run is not retried at once: it counts as run, so the job runs again at its next
    /// occurrence. If even that cannot be recorded (storage unavailable), it tries again every 30 seconds.
    /// </summary>
    private async Task SkipToNextOccurrenceAsync(ScheduleDefinition job, CancellationToken stoppingToken)
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
                await Task.Delay(TimeSpan.FromSeconds(30), time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Timer {Job} next runs at {Due:O}")]
    private static partial void LogNextRun(ILogger logger, string job, DateTimeOffset due);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Job} is past due (was due {Due:O}); running now")]
    private static partial void LogPastDue(ILogger logger, string job, DateTimeOffset due);

    [LoggerMessage(Level = LogLevel.Error, Message = "Timer {Job} failed; it runs again at its next occurrence")]
    private static partial void LogJobFailed(ILogger logger, Exception exception, string job);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer {Job}: its failed run could not be recorded; trying again in 30 seconds")]
    private static partial void LogRecordFailed(ILogger logger, Exception exception, string job);
}
