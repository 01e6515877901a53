using Microsoft.Extensions.Options;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.LocalHost.UsageReports;

/// <summary>
/// The local host's stand-in for the blob trigger: every <c>Telemetry:UsageReports:WatchInterval</c> (5 s) it lists
/// the usage-reports container and processes each blob without an outcome, with the same processor as the Functions
/// app. So a report uploaded through the API, with the Azure Storage SDK or with Azure Storage Explorer against Azurite
/// is processed within seconds. A blob that fails is retried on the next look, up to its attempt limit.
/// </summary>
internal sealed partial class UsageReportWatcher(
    UsageReportReconciliation reconciliation,
    IOptions<UsageReportOptions> options,
    TimeProvider time,
    ILogger<UsageReportWatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.WatchInterval;
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await reconciliation.RunAsync(TimeSpan.Zero, stoppingToken);
                failing = false;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (!failing)
                {
                    LogWatchFailed(logger, e);
                }

                failing = true;
            }

            try
            {
                await Task.Delay(interval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Looking for new usage reports failed (is Azurite running?); trying again")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception);
}

internal static class UsageReportWatcherRegistration
{
    /// <summary>
    /// Starts the watcher unless it is switched off on its own (<c>TelemetryDisableUsageReportWatcher=true</c>) or,
    /// when that setting is absent, the timers are off (tests drive processing themselves). An explicit
    /// <c>false</c> keeps it on with the timers off, for a host whose jobs a test runs itself but whose reports it uploads.
    /// </summary>
    public static void AddUsageReportWatcher(this WebApplicationBuilder builder)
    {
        var disabled = builder.Configuration.GetValue<bool?>("TelemetryDisableUsageReportWatcher") ?? builder.Configuration.GetValue("TelemetryDisableTimers", false);
        if (!disabled)
        {
            builder.Services.AddHostedService<UsageReportWatcher>();
        }
    }
}
