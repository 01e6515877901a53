using Azure.Data.Tables;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.LocalHost;
using TelemetryFunctions.LocalHost.UsageReports;
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

    [Fact]
    public async Task A_job_that_fell_due_while_the_machine_slept_runs_within_a_minute_of_waking()
    {
        var time = new SleepingClock(Now);
        var logs = new CapturedLogs();
        var settings = new Dictionary<string, string?>
        {
            ["TelemetryDisableTimers"] = "false",
            ["Logging:LogLevel:TelemetryFunctions.LocalHost.Scheduling"] = "Information", // "next runs at": the scheduler is waiting
        };
        await using var host = new LocalHostFactory(azurite, time, settings, logs: logs);
        await RecordLastRunsAsync(host, Now);
        _ = host.Services;
        var monitor = host.Services.GetRequiredService<ScheduleMonitor>();
        var quarterPast = new DateTimeOffset(2026, 11, 20, 9, 15, 0, TimeSpan.Zero);
        Assert.True(await EventuallyAsync(() => Task.FromResult(IsWaitingFor(logs, quarterPast))));

        // The machine sleeps for an hour: the wall clock moves past 09:15, but no timer counted that hour. One minute
        // after waking, the sweep that fell due during the sleep has run.
        time.Sleep(TimeSpan.FromHours(1));
        time.Advance(TimeSpan.FromMinutes(1));
        var woken = time.GetUtcNow();
        Assert.Equal(new DateTimeOffset(2026, 11, 20, 10, 8, 0, TimeSpan.Zero), woken);
        Assert.True(
            await EventuallyAsync(async () => await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken) == woken),
            "the sweep due at 09:15 ran once the machine had been awake for a minute");
    }

    /// <summary>
    /// The application itself (LocalHostApp, as Program runs it) on a free port, not the test server: a start-up that
    /// fails there is reported by its own exception, where the test server's deferred start may report only that its
    /// services were disposed.
    /// </summary>
    [Fact]
    public async Task A_schedule_that_is_not_a_six_field_expression_stops_start_up_before_the_host_serves()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = LocalHostApp.Build([], builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["TelemetryDisableTimers"] = "false",
            ["TelemetryDisableUsageReportWatcher"] = "true",
            ["TelemetryRollupSchedule"] = "0 15 * * *",
            ["Telemetry:Storage:ConnectionString"] = azurite.ConnectionString,
            ["Telemetry:Storage:TablePrefix"] = AzuriteFixture.UniquePrefix(),
            ["Telemetry:WriteKeys:0:Key"] = LocalHostFactory.WriteKey,
            ["Telemetry:WriteKeys:0:Source"] = "server",
            ["Telemetry:AdminKey"] = "dev-admin-key",
            ["Telemetry:Privacy:PseudonymizationKey"] = new string('k', 40),
            ["Logging:LogLevel:Default"] = "Warning",
        }));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(ct));

        Assert.Contains("TelemetryRollupSchedule = '0 15 * * *' is not a six-field NCRONTAB expression", error.Message, StringComparison.Ordinal);
        Assert.Empty(app.Urls);
    }

    [Theory]
    [InlineData("0 30 1 1 6 *", "2027-06-01T01:30:00+00:00")] // months away: longer than one timer can wait (~49.7 days)
    [InlineData("0 0 0 30 2 *", "9999-12-31T23:59:59.9999999+00:00")] // 30 February: never
    public async Task A_schedule_whose_next_occurrence_is_months_away_or_never_is_waited_for_without_warnings(string expression, string expectedDue)
    {
        var logs = new CapturedLogs();
        var settings = new Dictionary<string, string?>
        {
            ["TelemetryDisableTimers"] = "false",
            ["TelemetryRetentionSchedule"] = expression,
            ["Logging:LogLevel:TelemetryFunctions.LocalHost.Scheduling"] = "Information", // "next runs at": the scheduler is waiting
        };
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now), settings, logs: logs);
        await RecordLastRunsAsync(host, Now);
        _ = host.Services;

        var due = DateTimeOffset.Parse(expectedDue, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(await EventuallyAsync(() => Task.FromResult(IsWaitingFor(logs, TelemetrySchedules.Retention, due))), $"waits for {expectedDue}");
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning && e.Category.StartsWith("TelemetryFunctions.LocalHost.Scheduling", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failed_run_is_logged_and_counts_as_run_so_the_job_waits_for_its_next_occurrence_while_the_others_run()
    {
        var time = new FakeTimeProvider(Now);
        var logs = new CapturedLogs();
        var faults = new StorageFaults();
        var settings = new Dictionary<string, string?>
        {
            ["TelemetryDisableTimers"] = "false",
            ["Logging:LogLevel:TelemetryFunctions.LocalHost.Scheduling"] = "Information", // "next runs at": the scheduler is waiting
        };
        await using var host = new LocalHostFactory(azurite, time, settings, faults, logs);
        await RecordLastRunsAsync(host, Now.AddDays(-2));

        // The sweep reads the deadline index; storage refuses that table (403 is not retried), so every sweep throws.
        faults.Outage(m => m.Request.Uri.Path.Contains(host.TablePrefix + TableNames.InstanceDeadlines, StringComparison.Ordinal), status: 403);
        _ = host.Services;
        var monitor = host.Services.GetRequiredService<ScheduleMonitor>();

        Assert.True(await EventuallyAsync(async () => (await LastRunsAsync(monitor)).All(r => r == Now)), "every past-due job, the failing one included, is recorded as run");
        var failure = Assert.Single(SweepFailures(logs));
        Assert.IsType<Azure.RequestFailedException>(failure.Exception, exactMatch: false);
        var yesterday = DateOnly.FromDateTime(Now.UtcDateTime).AddDays(-1);
        Assert.Single(await host.Services.GetRequiredService<DailyRollup>().ReadAsync(yesterday, yesterday, TestContext.Current.CancellationToken));

        // No busy loop: with the clock standing still, the failed sweep is not tried again.
        var injected = faults.Injected;
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        Assert.Equal(injected, faults.Injected);
        Assert.Single(SweepFailures(logs));
        Assert.Equal(Now, await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken));

        // 09:15, its next occurrence: it runs (and fails) again, once, and that run is recorded too.
        var quarterPast = new DateTimeOffset(2026, 11, 20, 9, 15, 0, TimeSpan.Zero);
        Assert.True(await EventuallyAsync(() => Task.FromResult(IsWaitingFor(logs, quarterPast))));
        time.SetUtcNow(quarterPast);
        Assert.True(await EventuallyAsync(async () => await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken) == quarterPast));
        Assert.Equal(2, SweepFailures(logs).Count);

        // Storage heals; 09:30 runs it successfully.
        faults.Heal();
        var halfPast = new DateTimeOffset(2026, 11, 20, 9, 30, 0, TimeSpan.Zero);
        Assert.True(await EventuallyAsync(() => Task.FromResult(IsWaitingFor(logs, halfPast))));
        time.SetUtcNow(halfPast);
        Assert.True(await EventuallyAsync(async () => await monitor.LastRunAsync(TelemetrySchedules.Sweep.Name, TestContext.Current.CancellationToken) == halfPast));
        Assert.Equal(2, SweepFailures(logs).Count);
    }

    [Fact]
    public async Task When_storage_cannot_tell_the_last_run_nothing_is_recorded_and_the_missed_runs_still_happen_once_it_answers()
    {
        var time = new FakeTimeProvider(Now);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, new() { ["TelemetryDisableTimers"] = "false" }, faults);
        await RecordLastRunsAsync(host, Now.AddDays(-2));

        // Reads of the schedule table fail at start-up: the scheduler cannot know whether it missed a run.
        faults.Outage(m => !StorageFaults.IsWrite(m) && m.Request.Uri.Path.Contains(host.TablePrefix + TableNames.Schedules, StringComparison.Ordinal), status: 403);
        _ = host.Services;
        Assert.True(await EventuallyAsync(() => Task.FromResult(faults.Injected >= TelemetrySchedules.All.Count)));
        await Task.Delay(TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        Assert.All(await host.Tables.RowsAsync(TableNames.Schedules), row => Assert.Equal(Now.AddDays(-2), row.GetDateTimeOffset("LastRun")));

        // Storage answers again; 30 seconds later the scheduler asks again and catches up on the missed runs.
        faults.Heal();
        time.Advance(TimeSpan.FromSeconds(30));
        var monitor = host.Services.GetRequiredService<ScheduleMonitor>();
        Assert.True(await EventuallyAsync(async () => (await LastRunsAsync(monitor)).All(r => r == time.GetUtcNow())));
        var yesterday = DateOnly.FromDateTime(Now.UtcDateTime).AddDays(-1);
        Assert.Single(await host.Services.GetRequiredService<DailyRollup>().ReadAsync(yesterday, yesterday, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("false", null, true)]
    [InlineData("true", null, false)]
    [InlineData("true", "false", true)]
    [InlineData("false", "true", false)]
    public async Task The_usage_report_watcher_follows_the_timers_unless_its_own_setting_says_otherwise(string disableTimers, string? disableWatcher, bool runs)
    {
        var settings = new Dictionary<string, string?> { ["TelemetryDisableTimers"] = disableTimers };
        if (disableWatcher is not null)
        {
            settings["TelemetryDisableUsageReportWatcher"] = disableWatcher;
        }

        // The clock stands still, so a watcher or timer that does start does nothing after its first look.
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now), settings);
        Assert.Equal(runs, host.Services.GetServices<IHostedService>().OfType<UsageReportWatcher>().Any());
    }

    private static async Task RecordLastRunsAsync(LocalHostFactory host, DateTimeOffset lastRun)
    {
        var schedules = host.Tables.Table(TableNames.Schedules);
        await schedules.CreateIfNotExistsAsync(TestContext.Current.CancellationToken);
        foreach (var job in TelemetrySchedules.All)
        {
            await schedules.UpsertEntityAsync(new TableEntity("timer", job.Name) { ["LastRun"] = lastRun }, cancellationToken: TestContext.Current.CancellationToken);
        }
    }

    private static Task<DateTimeOffset?[]> LastRunsAsync(ScheduleMonitor monitor) =>
        Task.WhenAll(TelemetrySchedules.All.Select(j => monitor.LastRunAsync(j.Name, TestContext.Current.CancellationToken)));

    /// <summary>Whether the sweep's loop waits for <paramref name="due"/> (a clock moved before it starts waiting would move its wait too).</summary>
    private static bool IsWaitingFor(CapturedLogs logs, DateTimeOffset due) => IsWaitingFor(logs, TelemetrySchedules.Sweep, due);

    private static bool IsWaitingFor(CapturedLogs logs, ScheduleDefinition job, DateTimeOffset due) =>
        logs.Entries.Any(e => e.State.Any(p => p.Key == "Job" && Equals(p.Value, job.Name)) && e.State.Any(p => p.Key == "Due" && Equals(p.Value, due)));

    private static List<LogEntry> SweepFailures(CapturedLogs logs) =>
        [.. logs.Entries.Where(e => e.Level == LogLevel.Error && e.State.Any(p => p.Key == "Job" && Equals(p.Value, TelemetrySchedules.Sweep.Name)))];

    /// <summary>Polls <paramref name="condition"/> for up to 30 seconds of real time (the jobs run against Azurite).</summary>
    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return await condition();
    }

    /// <summary>
    /// A clock whose wall time can jump ahead without its timers noticing, as when a machine is suspended: timers count
    /// the time the machine was awake, the wall clock counts the sleep too.
    /// </summary>
    private sealed class SleepingClock(DateTimeOffset start) : FakeTimeProvider(start)
    {
        private TimeSpan _slept;

        public void Sleep(TimeSpan duration) => _slept += duration;

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + _slept;
    }
}
