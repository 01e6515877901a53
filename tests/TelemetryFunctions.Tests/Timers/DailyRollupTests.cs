using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Timers;

public sealed class DailyRollupTests(AzuriteFixture azurite)
{
    private static readonly DateOnly Monday = new(2026, 11, 2);

    private static DateTimeOffset At(DateOnly day, int hour) => new(day.ToDateTime(new TimeOnly(hour, 0)), TimeSpan.Zero);

    private static async Task SendAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset at, params JsonObject[] events)
    {
        time.SetUtcNow(at);
        foreach (var e in events)
        {
            e["timestamp"] = at.ToString("O");
        }

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(events)), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static JsonObject Use(string user, string os = "linux", string version = "1.0.0") =>
        Segment.Track("Report Opened", userId: user, properties: new JsonObject { ["os"] = os, ["version"] = version });

    private static JsonObject Install(string step, string installation, string os) =>
        Segment.Track(step, userId: null, anonymousId: installation, properties: new JsonObject { ["os"] = os });

    /// <summary>
    /// A known population over one week: users u0..u9 each active on the days listed, so the expected figures can be
    /// worked out by hand. Monday: u0-u4; Tuesday: u3-u6; Wednesday: nobody; Thursday-Sunday: u0 only, plus u7
    /// on Sunday. Installations on Monday: three started, two succeeded, one failed (on windows).
    /// </summary>
    private static async Task IngestWeekAsync(LocalHostFactory host, FakeTimeProvider time)
    {
        await SendAsync(host, time, At(Monday, 9), [.. Enumerable.Range(0, 5).Select(i => Use($"u{i}"))]);
        await SendAsync(host, time, At(Monday, 10), Use("u0", "windows", "1.1.0"), Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = "i-1" }));
        await SendAsync(host, time, At(Monday, 11),
            Install("Installation Started", "n1", "ubuntu"), Install("Installation Started", "n2", "ubuntu"), Install("Installation Started", "n3", "windows"),
            Install("Installation Success", "n1", "ubuntu"), Install("Installation Success", "n2", "ubuntu"), Install("Installation Errors", "n3", "windows"));
        await SendAsync(host, time, At(Monday.AddDays(1), 9), [.. Enumerable.Range(3, 4).Select(i => Use($"u{i}"))]);
        for (var d = 3; d <= 6; d++)
        {
            await SendAsync(host, time, At(Monday.AddDays(d), 12), Use("u0"));
        }

        await SendAsync(host, time, At(Monday.AddDays(6), 13), Use("u7"));
    }

    [Fact]
    public async Task A_week_of_known_activity_gives_exact_dau_wau_mau_and_installation_figures_through_the_admin_endpoint()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await IngestWeekAsync(host, time);
        time.SetUtcNow(At(Monday.AddDays(7), 1));

        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        var response = await client.PostAsync("/api/admin/rollup?from=2026-11-02&to=2026-11-08", null, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var days = (await Segment.ReadJsonAsync(response)).GetProperty("days").EnumerateArray().ToDictionary(d => d.GetProperty("day").GetString()!);
        int Figure(string day, string name) => days[day].GetProperty(name).GetInt32();

        Assert.Equal(5, Figure("2026-11-02", "dau"));
        Assert.Equal(4, Figure("2026-11-03", "dau"));
        Assert.Equal(0, Figure("2026-11-04", "dau"));
        Assert.Equal(2, Figure("2026-11-08", "dau"));
        Assert.Equal(7, Figure("2026-11-03", "wau"));
        Assert.Equal(8, Figure("2026-11-08", "wau"));
        Assert.Equal(8, Figure("2026-11-08", "mau"));
        Assert.Equal(7, Figure("2026-11-05", "wau"));

        var monday = days["2026-11-02"];
        Assert.Equal(3, monday.GetProperty("installationsStarted").GetInt32());
        Assert.Equal(2, monday.GetProperty("installationsSucceeded").GetInt32());
        Assert.Equal(1, monday.GetProperty("installationsFailed").GetInt32());
        Assert.Equal(0.6667, monday.GetProperty("installationSuccessRate").GetDouble());
        Assert.Equal(1, monday.GetProperty("activeInstances").GetInt32());
        Assert.Equal(1, monday.GetProperty("newInstances").GetInt32());
        var breakdowns = monday.GetProperty("breakdowns");
        Assert.Equal(1, breakdowns.GetProperty("installationsFailedByOs").GetProperty("windows").GetInt32());
        Assert.Equal(4, breakdowns.GetProperty("usersByOs").GetProperty("linux").GetInt32());
        Assert.Equal(1, breakdowns.GetProperty("usersByOs").GetProperty("windows").GetInt32());
    }

    [Fact]
    public async Task The_rollup_refuses_bad_ranges_and_requests_without_the_admin_key()
    {
        var time = new FakeTimeProvider(At(Monday, 12));
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsync("/api/admin/rollup?from=2026-11-01&to=2026-11-01", null, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsync("/api/admin/rollup?from=2026-11-01&to=2026-11-01&code=dev-write-key", null, TestContext.Current.CancellationToken)).StatusCode);

        foreach (var (query, reason) in new[]
        {
            ("from=2026-11-01", "YYYY-MM-DD"),
            ("from=2026-11-01&to=yesterday", "YYYY-MM-DD"),
            ("from=2026-11-01&to=2026-10-01", "must not be after"),
            ("from=2026-11-01&to=2026-11-02", "has ended"),
            ("from=2020-01-01&to=2026-10-01", "more than 366 days"),
        })
        {
            var response = await client.PostAsync($"/api/admin/rollup?{query}&code=dev-admin-key", null, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(reason, (await Segment.ReadJsonAsync(response)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_opted_out_user_is_taken_out_of_the_daily_digests_so_recomputed_wau_no_longer_counts_them()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday, 9), Use("stays"), Use("leaves"), Use("also-stays"));
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Use("leaves"));
        time.SetUtcNow(At(Monday.AddDays(2), 1));
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        await rollup.RunDayAsync(Monday, TestContext.Current.CancellationToken);
        var before = await rollup.RunDayAsync(Monday.AddDays(1), TestContext.Current.CancellationToken);
        Assert.Equal(3, before.Wau);

        var optOut = await host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaves" }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);

        var digests = host.Services.GetRequiredService<ActivityDigests>();
        Assert.Equal(2, await digests.CountDistinctAsync([Monday], TestContext.Current.CancellationToken));
        Assert.Equal(0, await digests.CountDistinctAsync([Monday.AddDays(1)], TestContext.Current.CancellationToken));
        Assert.Equal(2, await digests.CountDistinctAsync([Monday, Monday.AddDays(1)], TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_day_boundary_follows_the_reporting_time_zone()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:ReportingTimeZone"] = "Asia/Tokyo" });

        // 16:30 UTC on Monday is 01:30 on Tuesday in Tokyo; 14:30 UTC is 23:30 on Monday there.
        await SendAsync(host, time, new DateTimeOffset(2026, 11, 2, 14, 30, 0, TimeSpan.Zero), Use("evening-user"));
        await SendAsync(host, time, new DateTimeOffset(2026, 11, 2, 16, 30, 0, TimeSpan.Zero), Use("night-owl"));
        time.SetUtcNow(At(Monday.AddDays(2), 0));

        var rollup = host.Services.GetRequiredService<DailyRollup>();
        var monday = await rollup.RunDayAsync(Monday, TestContext.Current.CancellationToken);
        var tuesday = await rollup.RunDayAsync(Monday.AddDays(1), TestContext.Current.CancellationToken);

        Assert.Equal(1, monday.Dau);
        Assert.Equal(1, tuesday.Dau);
        Assert.Equal(2, tuesday.Wau);
    }

    /// <summary>Sends one usage event per user at each UTC instant, then rolls up the three days around <paramref name="day"/> in Europe/Berlin.</summary>
    private async Task<(int Before, int Day, int After)> BerlinDauAroundAsync(DateOnly day, params (string Utc, string User)[] events)
    {
        var first = DateTimeOffset.Parse(events[0].Utc, System.Globalization.CultureInfo.InvariantCulture);
        var time = new FakeTimeProvider(first);
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:ReportingTimeZone"] = "Europe/Berlin" });
        foreach (var (utc, user) in events)
        {
            await SendAsync(host, time, DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture), Use(user));
        }

        time.SetUtcNow(At(day.AddDays(3), 0));
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        var figures = await rollup.RunRangeAsync(day.AddDays(-1), day.AddDays(1), progress: null, TestContext.Current.CancellationToken);
        return (figures[0].Dau, figures[1].Dau, figures[2].Dau);
    }

    [Fact]
    public async Task On_the_25_hour_day_when_berlin_leaves_summer_time_events_of_every_hour_land_on_that_day()
    {
        // 2026-10-25 in Berlin runs from 22:00 UTC the day before to 23:00 UTC; 02:00-03:00 local happens twice.
        var dau = await BerlinDauAroundAsync(
            new DateOnly(2026, 10, 25),
            ("2026-10-24T21:59:59Z", "last-second-of-saturday"),
            ("2026-10-24T22:00:00Z", "midnight"),
            ("2026-10-25T00:30:00Z", "first-0230-summer-time"),
            ("2026-10-25T01:30:00Z", "second-0230-winter-time"),
            ("2026-10-25T22:59:59Z", "last-second-of-the-25th-hour"),
            ("2026-10-25T23:00:00Z", "monday-midnight"));

        Assert.Equal((1, 4, 1), dau);
    }

    [Fact]
    public async Task On_the_23_hour_day_when_berlin_enters_summer_time_events_near_both_ends_land_on_the_right_day()
    {
        // 2026-03-29 in Berlin runs from 23:00 UTC the day before to 22:00 UTC; 02:00-03:00 local never happens.
        var dau = await BerlinDauAroundAsync(
            new DateOnly(2026, 3, 29),
            ("2026-03-28T22:59:59Z", "last-second-of-saturday"),
            ("2026-03-28T23:00:00Z", "midnight"),
            ("2026-03-29T00:59:59Z", "just-before-the-jump"),
            ("2026-03-29T01:00:00Z", "three-oclock-summer-time"),
            ("2026-03-29T21:59:59Z", "last-second-of-the-23rd-hour"),
            ("2026-03-29T22:00:00Z", "monday-midnight"));

        Assert.Equal((1, 4, 1), dau);
    }

    [Fact]
    public async Task Missed_days_are_all_computed_by_the_next_run_and_rerunning_a_day_picks_up_late_events_idempotently()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 9), Use("a"), Use("b"));
        time.SetUtcNow(At(Monday.AddDays(1), 0).AddMinutes(15));
        Assert.Equal([Monday], (await jobs.RollupAsync(TestContext.Current.CancellationToken)).Select(d => d.Day));

        // The app is down for three days; events keep arriving elsewhere, including one late for Monday.
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Use("c"));
        await SendAsync(host, time, At(Monday.AddDays(2), 9), Use("a"));
        var late = Use("late");
        late["originalTimestamp"] = At(Monday, 20).ToString("O");
        late["sentAt"] = At(Monday.AddDays(3), 9).ToString("O");
        time.SetUtcNow(At(Monday.AddDays(3), 9));
        await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(late), TestContext.Current.CancellationToken);

        time.SetUtcNow(At(Monday.AddDays(4), 0).AddMinutes(15));
        var caughtUp = await jobs.RollupAsync(TestContext.Current.CancellationToken);

        Assert.Equal([Monday, Monday.AddDays(1), Monday.AddDays(2), Monday.AddDays(3)], caughtUp.Select(d => d.Day));
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        var stored = await rollup.ReadAsync(Monday, Monday.AddDays(3), TestContext.Current.CancellationToken);
        Assert.Equal([3, 1, 1, 0], stored.OrderBy(d => d.Day).Select(d => d.Dau));
        Assert.Equal(4, stored.Single(d => d.Day == Monday.AddDays(2)).Wau);

        var again = await rollup.RunDayAsync(Monday, TestContext.Current.CancellationToken);
        Assert.Equal(3, again.Dau);
        Assert.Equal(4, (await rollup.ReadAsync(Monday, Monday.AddDays(3), TestContext.Current.CancellationToken)).Count);
    }

    /// <summary>One user on Monday, rolled up by the timer's run on Tuesday at 00:15.</summary>
    private static async Task<(TelemetryJobs Jobs, DailyRollup Rollup)> RollUpMondayAsync(LocalHostFactory host, FakeTimeProvider time)
    {
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 9), Use("a"));
        time.SetUtcNow(At(Monday.AddDays(1), 0).AddMinutes(15));
        Assert.Equal([Monday], (await jobs.RollupAsync(TestContext.Current.CancellationToken)).Select(d => d.Day));
        return (jobs, host.Services.GetRequiredService<DailyRollup>());
    }

    [Fact]
    public async Task A_backfill_of_a_later_day_leaves_the_missed_days_before_it_to_the_next_timer_run()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        var (jobs, rollup) = await RollUpMondayAsync(host, time);

        // The timer's runs on Wednesday and Thursday are missed while events arrive; on Friday an operator backfills
        // Thursday alone.
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Use("b"));
        await SendAsync(host, time, At(Monday.AddDays(2), 9), Use("c"), Use("d"));
        await SendAsync(host, time, At(Monday.AddDays(3), 9), Use("e"));
        time.SetUtcNow(At(Monday.AddDays(4), 10));
        await rollup.RunRangeAsync(Monday.AddDays(3), Monday.AddDays(3), progress: null, TestContext.Current.CancellationToken);

        // The next run still computes Tuesday and Wednesday, which nobody computed.
        time.SetUtcNow(At(Monday.AddDays(5), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        var stored = await rollup.ReadAsync(Monday, Monday.AddDays(4), TestContext.Current.CancellationToken);
        Assert.Equal(
            [(Monday, 1), (Monday.AddDays(1), 1), (Monday.AddDays(2), 2), (Monday.AddDays(3), 1), (Monday.AddDays(4), 0)],
            stored.OrderBy(d => d.Day).Select(d => (d.Day, d.Dau)));
    }

    [Fact]
    public async Task A_backfill_that_continues_the_computed_days_lets_the_next_run_start_after_it()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        var (jobs, rollup) = await RollUpMondayAsync(host, time);

        time.SetUtcNow(At(Monday.AddDays(4), 10));
        await rollup.RunRangeAsync(Monday.AddDays(1), Monday.AddDays(3), progress: null, TestContext.Current.CancellationToken);
        time.SetUtcNow(At(Monday.AddDays(5), 0).AddMinutes(15));

        // Only the last computed day (re-done, as every run re-does it) and the new one.
        Assert.Equal([Monday.AddDays(3), Monday.AddDays(4)], (await jobs.RollupAsync(TestContext.Current.CancellationToken)).Select(d => d.Day));
    }

    [Fact]
    public async Task Rolling_up_a_day_counts_earlier_days_that_were_never_rolled_up_in_wau()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday, 9), Use("first-day-only"));
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Use("second-day-only"));
        time.SetUtcNow(At(Monday.AddDays(2), 1));

        var tuesday = await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(Monday.AddDays(1), TestContext.Current.CancellationToken);

        Assert.Equal(1, tuesday.Dau);
        Assert.Equal(2, tuesday.Wau);
        Assert.Equal(2, tuesday.Mau);
    }

    [Fact]
    public async Task Every_mark_in_a_days_partition_is_counted_once_and_unknown_marks_are_ignored()
    {
        var time = new FakeTimeProvider(At(Monday.AddDays(1), 1));
        await using var host = new LocalHostFactory(azurite, time);
        var storage = host.Services.GetRequiredService<TelemetryStorage>();
        var activity = await storage.GetTableAsync(TableNames.Activity, TestContext.Current.CancellationToken);
        var day = TableKeys.Day(Monday);

        // Users whose pseudonyms start with every hex digit, at both ends of each digit's range, and every other kind
        // of mark, written straight into the day's partition: each counts once, and an unknown mark is ignored.
        var users = "0123456789abcdef".SelectMany(d => new[] { $"{d}{new string('0', 31)}", $"{d}{new string('f', 31)}" }).ToList();
        var rows = users.Select(u => new TableEntity(day, ActivityStore.UserPrefix + u) { ["Os"] = "linux", ["Version"] = "1.0.0", ["Source"] = "server" })
            .Append(new TableEntity(day, ActivityStore.InstancePrefix + "instance-a") { ["Os"] = "linux" })
            .Append(new TableEntity(day, ActivityStore.InstancePrefix + "instance-b") { ["Os"] = "windows" })
            .Append(new TableEntity(day, ActivityStore.FirstSeenPrefix + "instance-b"))
            .Append(new TableEntity(day, ActivityStore.GoneInactivePrefix + "instance-c"))
            .Append(new TableEntity(day, ActivityStore.InstallationPrefix + "install-1") { ["Started"] = true, ["Succeeded"] = true, ["Os"] = "ubuntu" })
            .Append(new TableEntity(day, "z_not-a-known-mark"));
        foreach (var row in rows)
        {
            await activity.UpsertEntityAsync(row, cancellationToken: TestContext.Current.CancellationToken);
        }

        var figures = await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(Monday, TestContext.Current.CancellationToken);

        Assert.Equal(users.Count, figures.Dau);
        Assert.Equal(users.Count, figures.Breakdowns["usersByOs"]["linux"]);
        Assert.Equal(2, figures.ActiveInstances);
        Assert.Equal(1, figures.NewInstances);
        Assert.Equal(1, figures.InstancesGoneInactive);
        Assert.Equal((1, 1), (figures.InstallationsStarted, figures.InstallationsSucceeded));
    }

    [Fact]
    public async Task An_os_folded_into_other_for_its_starts_is_folded_there_for_its_outcomes_too_so_no_os_shows_more_outcomes_than_starts()
    {
        var time = new FakeTimeProvider(At(Monday.AddDays(1), 1));
        await using var host = new LocalHostFactory(azurite, time);
        var storage = host.Services.GetRequiredService<TelemetryStorage>();
        var activity = await storage.GetTableAsync(TableNames.Activity, TestContext.Current.CancellationToken);
        var day = TableKeys.Day(Monday);

        // 50 systems with two installations started and no outcome each fill the top 50 of the starts; two more with
        // one installation each, one succeeded and one failed, lead the (short) rankings of the outcomes.
        var rows = Enumerable.Range(0, 50)
            .SelectMany(os => Enumerable.Range(0, 2).Select(n => new TableEntity(day, $"{ActivityStore.InstallationPrefix}install-{os}-{n}") { ["Started"] = true, ["Os"] = $"os{os:D2}" }))
            .Append(new TableEntity(day, ActivityStore.InstallationPrefix + "install-s") { ["Started"] = true, ["Succeeded"] = true, ["Os"] = "rare-succeeded" })
            .Append(new TableEntity(day, ActivityStore.InstallationPrefix + "install-f") { ["Started"] = true, ["Failed"] = true, ["Os"] = "rare-failed" })
            .ToList();
        foreach (var chunk in rows.Chunk(100))
        {
            await activity.SubmitTransactionAsync(chunk.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), TestContext.Current.CancellationToken);
        }

        var figures = await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(Monday, TestContext.Current.CancellationToken);

        var started = figures.Breakdowns["installationsStartedByOs"];
        Assert.Equal(51, started.Count);
        Assert.Equal(2, started["other"]);
        Assert.Equal(1, figures.Breakdowns["installationsSucceededByOs"]["other"]);
        Assert.Equal(1, figures.Breakdowns["installationsFailedByOs"]["other"]);
        Assert.False(figures.Breakdowns["installationsSucceededByOs"].ContainsKey("rare-succeeded"));
        Assert.False(figures.Breakdowns["installationsFailedByOs"].ContainsKey("rare-failed"));

        using var admin = host.CreateClient();
        admin.DefaultRequestHeaders.Add("x-functions-key", TelemetryFunctions.Tests.Reporting.ReadApiTests.AdminKey);
        using var read = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/api/stats/installations?from=2026-11-02&to=2026-11-02", TestContext.Current.CancellationToken));
        var groups = read.RootElement.GetProperty("byOs").EnumerateArray().ToList();
        Assert.Equal(51, groups.Count);
        Assert.All(groups, group => Assert.True(
            group.GetProperty("succeeded").GetInt32() + group.GetProperty("failed").GetInt32() <= group.GetProperty("started").GetInt32(),
            $"{group.GetProperty("value").GetString()}: {group}"));
    }

    [Fact]
    public async Task A_day_whose_breakdowns_hold_many_long_client_supplied_values_is_stored_and_read_back_whole()
    {
        var time = new FakeTimeProvider(At(Monday.AddDays(1), 1));
        await using var host = new LocalHostFactory(azurite, time);
        var storage = host.Services.GetRequiredService<TelemetryStorage>();
        var activity = await storage.GetTableAsync(TableNames.Activity, TestContext.Current.CancellationToken);
        var day = TableKeys.Day(Monday);

        // Versions, OS names and editions are whatever clients send, up to 64 characters each: 60 of each, on users,
        // instances and installations, fill every breakdown's top 50, over 32K characters of JSON in all (more than
        // one table property holds).
        string Value(string kind, int i) => $"{kind}-{i:D2}-".PadRight(64, 'x');
        var rows = Enumerable.Range(0, 60).SelectMany(i => new[]
        {
            new TableEntity(day, ActivityStore.UserPrefix + i.ToString("x32", System.Globalization.CultureInfo.InvariantCulture)) { ["Os"] = Value("os", i), ["Version"] = Value("v", i), ["Source"] = "server" },
            new TableEntity(day, $"{ActivityStore.InstancePrefix}instance-{i}") { ["Os"] = Value("os", i), ["Version"] = Value("v", i), ["Edition"] = Value("e", i), ["Source"] = "server" },
            new TableEntity(day, $"{ActivityStore.InstallationPrefix}install-{i}-s") { ["Started"] = true, ["Succeeded"] = true, ["Os"] = Value("os", i), ["Version"] = Value("v", i) },
            new TableEntity(day, $"{ActivityStore.InstallationPrefix}install-{i}-f") { ["Started"] = true, ["Failed"] = true, ["Os"] = Value("os", i), ["Version"] = Value("v", i) },
        }).ToList();
        foreach (var chunk in rows.Chunk(100))
        {
            await activity.SubmitTransactionAsync(chunk.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), TestContext.Current.CancellationToken);
        }

        var rollup = host.Services.GetRequiredService<DailyRollup>();
        var figures = await rollup.RunDayAsync(Monday, TestContext.Current.CancellationToken);
        var stored = Assert.Single(await rollup.ReadAsync(Monday, Monday, TestContext.Current.CancellationToken));

        Assert.Equal(60, stored.Dau);
        Assert.Equal(51, stored.Breakdowns["installationsStartedByVersion"].Count);
        Assert.Equal(figures.Breakdowns.Keys.Order(StringComparer.Ordinal), stored.Breakdowns.Keys.Order(StringComparer.Ordinal));
        Assert.All(figures.Breakdowns, d => Assert.Equal(d.Value.OrderBy(p => p.Key, StringComparer.Ordinal), stored.Breakdowns[d.Key].OrderBy(p => p.Key, StringComparer.Ordinal)));
    }

    private static async Task SendLateAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset receivedAt, DateTimeOffset happenedAt, string user)
    {
        var late = Use(user);
        late["originalTimestamp"] = happenedAt.ToString("O");
        late["sentAt"] = receivedAt.ToString("O");
        time.SetUtcNow(receivedAt);
        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(late), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_late_event_for_a_day_before_the_watermark_is_recomputed_by_the_timer_with_the_wau_and_mau_of_the_days_after_it()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        await SendAsync(host, time, At(Monday, 9), Use("a"));
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Use("b"));
        time.SetUtcNow(At(Monday.AddDays(2), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        time.SetUtcNow(At(Monday.AddDays(3), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        // On Thursday an event from Monday evening arrives: Monday is two days behind the watermark (Wednesday).
        await SendLateAsync(host, time, At(Monday.AddDays(3), 9), At(Monday, 20), "late");
        time.SetUtcNow(At(Monday.AddDays(4), 0).AddMinutes(15));
        var recomputed = await jobs.RollupAsync(TestContext.Current.CancellationToken);

        Assert.Equal([Monday, Monday.AddDays(1), Monday.AddDays(2), Monday.AddDays(3)], recomputed.Select(d => d.Day));
        var stored = (await rollup.ReadAsync(Monday, Monday.AddDays(3), TestContext.Current.CancellationToken)).ToDictionary(d => d.Day);
        Assert.Equal(2, stored[Monday].Dau);
        Assert.Equal(3, stored[Monday.AddDays(1)].Wau);
        Assert.Equal(3, stored[Monday.AddDays(3)].Mau);

        // The flag is cleared: the next run only computes from the watermark again.
        time.SetUtcNow(At(Monday.AddDays(5), 0).AddMinutes(15));
        Assert.Equal([Monday.AddDays(3), Monday.AddDays(4)], (await jobs.RollupAsync(TestContext.Current.CancellationToken)).Select(d => d.Day));
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.DailyStats), r => r.PartitionKey == DirtyDays.Partition);
    }

    [Fact]
    public async Task A_dirty_flag_rewritten_while_its_day_is_recomputed_is_kept_so_the_next_run_sees_the_new_mark()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        var rewriteFlagDuringRecompute = WhileReadingMarksOf(Monday.AddDays(1));
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: rewriteFlagDuringRecompute);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 9), Use("a"));
        await RollUpMondayAndTuesdayOnTimeAsync(jobs, time);
        await SendLateAsync(host, time, At(Monday.AddDays(2), 9), At(Monday, 20), "late-1");
        var flag = Assert.Single(await host.Tables.RowsAsync(TableNames.DailyStats), r => r.PartitionKey == DirtyDays.Partition);

        // Thursday's run recomputes Monday; as it moves on to Tuesday, another host whose clock is still on
        // Wednesday (the flag's day) writes a mark for Monday and rewrites the same flag.
        rewriteFlagDuringRecompute.Arm(async () =>
        {
            var activity = host.Tables.Table(TableNames.Activity);
            await activity.UpsertEntityAsync(new TableEntity(TableKeys.Day(Monday), ActivityStore.UserPrefix + new string('e', 32)), cancellationToken: TestContext.Current.CancellationToken);
            await host.Tables.Table(TableNames.DailyStats).UpsertEntityAsync(new TableEntity(flag.PartitionKey, flag.RowKey) { ["Day"] = flag["Day"], ["FlaggedOn"] = flag["FlaggedOn"] }, TableUpdateMode.Replace, TestContext.Current.CancellationToken);
        });
        time.SetUtcNow(At(Monday.AddDays(3), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        Assert.True(rewriteFlagDuringRecompute.Fired);
        Assert.Single(await host.Tables.RowsAsync(TableNames.DailyStats), r => r.PartitionKey == DirtyDays.Partition);
        time.SetUtcNow(At(Monday.AddDays(4), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        Assert.Equal(3, Assert.Single(await rollup.ReadAsync(Monday, Monday, TestContext.Current.CancellationToken)).Dau);
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.DailyStats), r => r.PartitionKey == DirtyDays.Partition);
    }

    [Fact]
    public async Task A_late_mark_landing_while_a_run_crosses_midnight_keeps_its_flag_so_the_next_run_recomputes_the_day()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        var duringTuesdaysRecompute = WhileReadingMarksOf(Monday.AddDays(1));
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: duringTuesdaysRecompute);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 9), Use("a"));
        await RollUpMondayAndTuesdayOnTimeAsync(jobs, time);
        await SendLateAsync(host, time, At(Monday.AddDays(2), 9), At(Monday, 20), "late-1");

        // A run starts late on Wednesday and recomputes Monday (flagged on Wednesday). After Monday's partition was
        // read, another late event for Monday arrives on Wednesday (this host flagged Monday today already, so it
        // writes no flag), and the clock passes midnight before the run clears the flag it read.
        duringTuesdaysRecompute.Arm(async () =>
        {
            await SendLateAsync(host, time, At(Monday.AddDays(2), 23).AddMinutes(59).AddSeconds(30), At(Monday, 21), "late-2");
            time.SetUtcNow(At(Monday.AddDays(3), 0).AddSeconds(30));
        });
        time.SetUtcNow(At(Monday.AddDays(2), 23).AddMinutes(59));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        Assert.True(duringTuesdaysRecompute.Fired);

        time.SetUtcNow(At(Monday.AddDays(3), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        var rollup = host.Services.GetRequiredService<DailyRollup>();
        Assert.Equal(3, Assert.Single(await rollup.ReadAsync(Monday, Monday, TestContext.Current.CancellationToken)).Dau);
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.DailyStats), r => r.PartitionKey == DirtyDays.Partition);
    }

    [Fact]
    public async Task An_instance_whose_first_two_requests_race_across_midnight_counts_as_new_on_one_day_only()
    {
        var midnight = At(Monday.AddDays(1), 0);
        var time = new FakeTimeProvider(midnight.AddSeconds(-1));
        var beforeTheInstanceRowIsAdded = new BeforeRequestPolicy(m =>
            m.Request.Method == RequestMethod.Post && m.Request.Uri.Path.EndsWith(TableNames.Instances, StringComparison.Ordinal));
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: beforeTheInstanceRowIsAdded);
        JsonObject Heartbeat() => Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = "i-race" });

        // The first request, received at 23:59:59 on Monday, is about to add the instance row when a second one,
        // received just after midnight, adds it first; the first then writes the row as first seen on Monday.
        beforeTheInstanceRowIsAdded.Arm(() => SendAsync(host, time, midnight.AddSeconds(1), Heartbeat()));
        await SendAsync(host, time, midnight.AddSeconds(-1), Heartbeat());
        Assert.True(beforeTheInstanceRowIsAdded.Fired);

        time.SetUtcNow(At(Monday.AddDays(2), 1));
        var figures = await host.Services.GetRequiredService<DailyRollup>().RunRangeAsync(Monday, Monday.AddDays(1), progress: null, TestContext.Current.CancellationToken);

        Assert.Equal([1, 0], figures.Select(d => d.NewInstances));
        var key = host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.Instance, "i-race");
        var history = await host.Services.GetRequiredService<InstanceStatusLog>().HistoryAsync(key, TestContext.Current.CancellationToken);
        Assert.Equal([midnight.AddSeconds(-1)], history.Select(h => h.At));
    }

    [Fact]
    public async Task A_user_who_opts_out_while_the_rollup_writes_a_days_digest_is_not_left_in_that_digest()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        var beforeMondaysDigestIsWritten = BeforeDigestIsWritten(Monday);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: beforeMondaysDigestIsWritten);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 9), Use("stays"), Use("leaves"));
        await RollUpMondayAndTuesdayOnTimeAsync(jobs, time);

        // On Wednesday a backfill recomputes Monday; it has read Monday's marks and is about to write its digest when
        // the user opts out.
        beforeMondaysDigestIsWritten.Arm(async () =>
        {
            var optOut = await host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaves" }), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);
        });
        time.SetUtcNow(At(Monday.AddDays(2), 9));
        await host.Services.GetRequiredService<DailyRollup>().RunRangeAsync(Monday, Monday, progress: null, TestContext.Current.CancellationToken);
        Assert.True(beforeMondaysDigestIsWritten.Fired);

        // Neither the next timer run (from Tuesday, the watermark) nor the retention job (the erasure's repeat, once
        // its window has passed) takes the user out of Monday's digest.
        time.SetUtcNow(At(Monday.AddDays(3), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        time.SetUtcNow(At(Monday.AddDays(3), 1).AddMinutes(30));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, await host.Services.GetRequiredService<ActivityDigests>().CountDistinctAsync([Monday], TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_rollup_writing_a_days_digest_after_an_opt_out_edited_it_but_before_the_users_marks_are_deleted_takes_the_user_out()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        var mondaysDigest = TableKeys.Day(Monday) + "/users";
        var erasureEditedTheDigest = 0;

        // Two points: the rollup's upload of Monday's digest (unconditional), and the first request after the
        // erasure's conditional rewrite of it, which is the erasure's deletion of the user's marks.
        var pause = new BeforeRequestPolicy(m =>
        {
            var digestWrite = m.Request.Method == RequestMethod.Put && m.Request.Uri.Path.EndsWith(mondaysDigest, StringComparison.Ordinal);
            if (Volatile.Read(ref erasureEditedTheDigest) == 1)
            {
                return true;
            }

            if (digestWrite && m.Request.Headers.Contains("If-Match"))
            {
                Volatile.Write(ref erasureEditedTheDigest, 1);
            }

            return digestWrite && !m.Request.Headers.Contains("If-Match");
        });
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: pause);
        await SendAsync(host, time, At(Monday, 9), Use("stays"), Use("leaves"));
        time.SetUtcNow(At(Monday.AddDays(2), 9));
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        await rollup.RunRangeAsync(Monday, Monday, progress: null, TestContext.Current.CancellationToken);

        // A backfill of Monday has read its marks when the user opts out: the erasure takes them out of the digest,
        // then the backfill writes its digest (and finishes) before the erasure deletes the marks.
        var erasureAtTheMarks = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var backfillDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<HttpResponseMessage>? optOut = null;
        var step = 0;
        pause.Arm(
            async () =>
            {
                if (Interlocked.Increment(ref step) == 1)
                {
                    optOut = Task.Run(() => host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaves" }), TestContext.Current.CancellationToken));
                    await erasureAtTheMarks.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
                }
                else
                {
                    erasureAtTheMarks.SetResult();
                    await backfillDone.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
                }
            },
            times: 2);
        await rollup.RunRangeAsync(Monday, Monday, progress: null, TestContext.Current.CancellationToken);
        backfillDone.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await optOut!).StatusCode);
        Assert.Equal(2, pause.TimesFired);

        Assert.Equal(1, await host.Services.GetRequiredService<ActivityDigests>().CountDistinctAsync([Monday], TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_user_who_disables_sharing_and_turns_it_back_on_while_the_rollup_writes_a_days_digest_is_not_left_in_that_digest()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        var beforeMondaysDigestIsWritten = BeforeDigestIsWritten(Monday);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: beforeMondaysDigestIsWritten);
        await SendAsync(host, time, At(Monday, 9), Use("stays"), Use("leaves"));

        // A backfill of Monday has read its marks and is about to write its digest when the user disables sharing (an
        // erasure, under a suppression) and turns it back on (erased once more, and the suppression lifted).
        beforeMondaysDigestIsWritten.Arm(async () =>
        {
            var client = host.CreateSegmentClient();
            var off = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Report Opened", userId: "leaves", properties: new JsonObject { ["sharingLevel"] = "disabled" })), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, off.StatusCode);
            var on = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Report Opened", userId: "leaves", properties: new JsonObject { ["sharingLevel"] = "advanced" })), TestContext.Current.CancellationToken);
            Assert.Equal(1, (await Segment.ReadJsonAsync(on)).GetProperty("accepted").GetInt32());
            Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
        });
        time.SetUtcNow(At(Monday.AddDays(2), 9));
        await host.Services.GetRequiredService<DailyRollup>().RunRangeAsync(Monday, Monday, progress: null, TestContext.Current.CancellationToken);
        Assert.True(beforeMondaysDigestIsWritten.Fired);

        // What they sent before disabling is erased; what they sent after turning sharing back on (on Wednesday) is kept.
        var digests = host.Services.GetRequiredService<ActivityDigests>();
        Assert.Equal(1, await digests.CountDistinctAsync([Monday], TestContext.Current.CancellationToken));
        Assert.Equal(2, await digests.CountDistinctAsync([Monday, Monday.AddDays(2)], TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_digest_rewritten_while_a_backfill_and_the_timer_read_it_is_read_again_and_both_succeed()
    {
        var rereadMonday = BeforeReadingLaterChunksOf(Monday);
        await using var host = await HostWithLargeDigestAsync(Monday, rereadMonday);
        var digests = host.Services.GetRequiredService<ActivityDigests>();
        var rollup = host.Services.GetRequiredService<DailyRollup>();

        // While the backfill of Tuesday reads Monday's digest (for WAU), another run recomputes Monday's digest.
        rereadMonday.Arm(async () => await digests.BuildFromActivityAsync(Monday, TestContext.Current.CancellationToken));
        var response = await AdminClient(host).PostAsync("/api/admin/rollup?from=2026-11-03&to=2026-11-03", null, TestContext.Current.CancellationToken);

        Assert.True(rereadMonday.Fired);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(5000, Assert.Single(await rollup.ReadAsync(Monday.AddDays(1), Monday.AddDays(1), TestContext.Current.CancellationToken)).Wau);

        // The same while the timer's catch-up reads it.
        rereadMonday.Arm(async () => await digests.BuildFromActivityAsync(Monday, TestContext.Current.CancellationToken));
        await host.Services.GetRequiredService<TelemetryJobs>().RollupAsync(TestContext.Current.CancellationToken);
        Assert.True(rereadMonday.TimesFired >= 2);
    }

    [Fact]
    public async Task A_digest_that_keeps_being_rewritten_while_a_backfill_reads_it_answers_503_with_retry_after()
    {
        var rereadMonday = BeforeReadingLaterChunksOf(Monday);
        await using var host = await HostWithLargeDigestAsync(Monday, rereadMonday);
        var digests = host.Services.GetRequiredService<ActivityDigests>();

        rereadMonday.Arm(async () => await digests.BuildFromActivityAsync(Monday, TestContext.Current.CancellationToken), times: 1000);
        var response = await AdminClient(host).PostAsync("/api/admin/rollup?from=2026-11-03&to=2026-11-03", null, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
    }

    /// <summary>Fires before each request for a chunk after the first of the day's digest.</summary>
    private static BeforeRequestPolicy BeforeReadingLaterChunksOf(DateOnly day)
    {
        var digestName = TableKeys.Day(day) + "/users";
        return new BeforeRequestPolicy(m =>
            m.Request.Method == RequestMethod.Get
            && m.Request.Uri.Path.EndsWith(digestName, StringComparison.Ordinal)
            && m.Request.Headers.TryGetValue("x-ms-range", out var range) && !range.StartsWith("bytes=0-", StringComparison.Ordinal));
    }

    /// <summary>
    /// A host two days after <paramref name="day"/> (01:00) on which the day was rolled up with 5,000 users: an 80 KB
    /// digest, read in two chunks of 64 KB.
    /// </summary>
    private async Task<LocalHostFactory> HostWithLargeDigestAsync(DateOnly day, BeforeRequestPolicy policy)
    {
        var host = new LocalHostFactory(azurite, new FakeTimeProvider(At(day.AddDays(2), 1)), storagePolicy: policy);
        var activity = await host.Services.GetRequiredService<TelemetryStorage>().GetTableAsync(TableNames.Activity, TestContext.Current.CancellationToken);
        var rows = Enumerable.Range(0, 5000).Select(i => new TableEntity(TableKeys.Day(day), ActivityStore.UserPrefix + i.ToString("x32", System.Globalization.CultureInfo.InvariantCulture)));
        foreach (var chunk in rows.Chunk(100))
        {
            await activity.SubmitTransactionAsync(chunk.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), TestContext.Current.CancellationToken);
        }

        Assert.Equal(5000, (await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(day, TestContext.Current.CancellationToken)).Dau);
        return host;
    }

    private static HttpClient AdminClient(LocalHostFactory host)
    {
        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        return client;
    }

    [Fact]
    public async Task A_gone_inactive_mark_the_sweep_writes_on_a_day_already_rolled_up_is_counted_by_the_next_rollup()
    {
        var time = new FakeTimeProvider(At(Monday, 20));
        await using var host = new LocalHostFactory(azurite, time);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        await SendAsync(host, time, At(Monday, 20), Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = "i-silent" }));

        // The instance goes silent at 02:31 on Tuesday; after a downtime the rollup runs before the sweep on Thursday.
        time.SetUtcNow(At(Monday.AddDays(3), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        await jobs.SweepAsync(TestContext.Current.CancellationToken);
        time.SetUtcNow(At(Monday.AddDays(4), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        var tuesday = await host.Services.GetRequiredService<DailyRollup>().ReadAsync(Monday.AddDays(1), Monday.AddDays(1), TestContext.Current.CancellationToken);
        Assert.Equal(1, Assert.Single(tuesday).InstancesGoneInactive);
    }

    [Fact]
    public async Task Backfilling_days_whose_activity_retention_deleted_is_refused_and_the_timer_never_recomputes_them()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        await SendAsync(host, time, At(Monday, 9), Use("a"), Use("b"));
        time.SetUtcNow(At(Monday.AddDays(1), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        // The host is down for 100 days; retention then deletes Monday's activity before the rollup catches up.
        time.SetUtcNow(At(Monday.AddDays(101), 0).AddMinutes(15));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        var caughtUp = await jobs.RollupAsync(TestContext.Current.CancellationToken);

        var firstRecomputable = rollup.FirstRecomputableDay(time.GetUtcNow());
        Assert.Equal(Monday.AddDays(101 - 90 + 30), firstRecomputable);
        Assert.Equal(firstRecomputable, caughtUp.Min(d => d.Day));
        Assert.Equal(2, Assert.Single(await rollup.ReadAsync(Monday, Monday, TestContext.Current.CancellationToken)).Dau);

        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        var refused = await client.PostAsync($"/api/admin/rollup?from={firstRecomputable.AddDays(-1):yyyy-MM-dd}&to={firstRecomputable:yyyy-MM-dd}", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains($"from must be {firstRecomputable:yyyy-MM-dd} or later", (await Segment.ReadJsonAsync(refused)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        var accepted = await client.PostAsync($"/api/admin/rollup?from={firstRecomputable:yyyy-MM-dd}&to={firstRecomputable:yyyy-MM-dd}", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(2, Assert.Single(await rollup.ReadAsync(Monday, Monday, TestContext.Current.CancellationToken)).Dau);
    }

    /// <summary>A policy that stops before the upload of a day's digest.</summary>
    private static BeforeRequestPolicy BeforeDigestIsWritten(DateOnly day) => new(m =>
        m.Request.Method == RequestMethod.Put && m.Request.Uri.Path.EndsWith(TableKeys.Day(day) + "/users", StringComparison.Ordinal));

    /// <summary>A policy that stops before a query of a day's activity marks.</summary>
    private static BeforeRequestPolicy WhileReadingMarksOf(DateOnly day) => new(m =>
        m.Request.Uri.Path.Contains(TableNames.Activity + "()", StringComparison.Ordinal) && m.Request.Uri.Query.Contains(TableKeys.Day(day), StringComparison.Ordinal));

    /// <summary>The timer's runs at 00:15 on Tuesday and Wednesday: Monday and Tuesday rolled up on time.</summary>
    private static async Task RollUpMondayAndTuesdayOnTimeAsync(TelemetryJobs jobs, FakeTimeProvider time)
    {
        time.SetUtcNow(At(Monday.AddDays(1), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        time.SetUtcNow(At(Monday.AddDays(2), 0).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
    }
}
