using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Timers;

public sealed class LocalSchedulerTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = new(2026, 11, 20, 9, 7, 0, TimeSpan.Zero);

    [Fact]
    public async Task After_downtime_the_local_host_runs_past_due_jobs_at_start_like_a_monitored_functions_timer()
    {
        var time = new FakeTimeProvider(Now);
        await using var host = new LocalHostFactory(azurite, time, new() { ["TelemetryDisableTimers"] = "false" });
        var schedules = host.Tables.Table(TableNames.Schedules);
        await schedules.CreateIfNotExistsAsync(TestContext.Current.CancellationToken);
        foreach (var job in TelemetrySchedules.All)
        {
            // The host was last up two days ago: every job missed at least one run.
            await schedules.UpsertEntityAsync(new TableEntity("timer", job.Name) { ["LastRun"] = Now.AddDays(-2) }, cancellationToken: TestContext.Current.CancellationToken);
        }

        _ = host.Services;
        var monitor = host.Services.GetRequiredService<ScheduleMonitor>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var runs = await Task.WhenAll(TelemetrySchedules.All.Select(j => monitor.LastRunAsync(j.Name, TestContext.Current.CancellationToken)));
            if (runs.All(r => r == Now))
            {
                break;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        foreach (var job in TelemetrySchedules.All)
        {
            Assert.Equal(Now, await monitor.LastRunAsync(job.Name, TestContext.Current.CancellationToken));
        }

        var yesterday = DateOnly.FromDateTime(Now.UtcDateTime).AddDays(-1);
        Assert.Single(await host.Services.GetRequiredService<DailyRollup>().ReadAsync(yesterday, yesterday, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Without_a_missed_run_the_local_host_waits_for_the_next_occurrence()
    {
        var time = new FakeTimeProvider(Now);
        await using var host = new LocalHostFactory(azurite, time, new() { ["TelemetryDisableTimers"] = "false" });
        var monitor = host.Services.GetRequiredService<ScheduleMonitor>();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken) is null)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.Equal(Now, await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.DailyStats));

        // 09:15 is the next sweep: moving the clock there runs it.
        time.SetUtcNow(new DateTimeOffset(2026, 11, 20, 9, 15, 0, TimeSpan.Zero));
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken) == Now)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.Equal(time.GetUtcNow(), await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.DailyStats));
    }
}
