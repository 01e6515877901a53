using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Timers;

/// <summary>
/// Installation figures are per installation and attributed to its start day: an outcome counts on the day the
/// installation started (in the reporting time zone), an installation succeeds at most once and fails only if it has
/// not succeeded, so on every day succeeded + failed ≤ started and the success rate never exceeds 1.
/// </summary>
public sealed class InstallationAttributionTests(AzuriteFixture azurite)
{
    private static readonly DateOnly Monday = new(2026, 11, 2);

    private static DateTimeOffset At(DateOnly day, int hour, int minute = 0) => new(day.ToDateTime(new TimeOnly(hour, minute)), TimeSpan.Zero);

    private static JsonObject Install(string step, string installation, string os = "ubuntu", string version = "1.4.0") =>
        Segment.Track(step, userId: null, anonymousId: installation, properties: new JsonObject { ["os"] = os, ["version"] = version });

    /// <summary>Sends events that happened at <paramref name="at"/> and are received then.</summary>
    private static Task SendAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset at, params JsonObject[] events) =>
        SendLateAsync(host, time, at, at, events);

    /// <summary>Sends events that happened at <paramref name="happenedAt"/>, received at <paramref name="receivedAt"/>.</summary>
    private static async Task SendLateAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset receivedAt, DateTimeOffset happenedAt, params JsonObject[] events)
    {
        time.SetUtcNow(receivedAt);
        foreach (var e in events)
        {
            e["originalTimestamp"] = happenedAt.ToString("O");
            e["sentAt"] = receivedAt.ToString("O");
        }

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(events)), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>Runs the daily rollup timer at 00:15 UTC of <paramref name="day"/>.</summary>
    private static async Task RollupAtAsync(LocalHostFactory host, FakeTimeProvider time, DateOnly day)
    {
        time.SetUtcNow(At(day, 0, 15));
        await host.Services.GetRequiredService<TelemetryJobs>().RollupAsync(TestContext.Current.CancellationToken);
    }

    private static async Task<JsonElement> StatsAsync(LocalHostFactory host, DateOnly from, DateOnly to)
    {
        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        var response = await client.GetAsync($"/api/stats/installations?from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Segment.ReadJsonAsync(response);
    }

    private static (int Started, int Succeeded, int Failed, double? Rate) Counts(JsonElement e) => (
        e.GetProperty("started").GetInt32(),
        e.GetProperty("succeeded").GetInt32(),
        e.GetProperty("failed").GetInt32(),
        e.GetProperty("successRate").ValueKind == JsonValueKind.Null ? null : e.GetProperty("successRate").GetDouble());

    private static (int Started, int Succeeded, int Failed, double? Rate) Day(JsonElement stats, DateOnly day) =>
        Counts(stats.GetProperty("days").EnumerateArray().Single(d => d.GetProperty("day").GetString() == day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));

    private static (int Started, int Succeeded, int Failed, double? Rate) Os(JsonElement stats, DateOnly day, string os) =>
        Counts(stats.GetProperty("days").EnumerateArray().Single(d => d.GetProperty("day").GetString() == day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))
            .GetProperty("byOs").EnumerateArray().Single(g => g.GetProperty("value").GetString() == os));

    /// <summary>Every day, every group and the totals of an answer: succeeded + failed ≤ started and a rate of at most 1.</summary>
    private static void AssertConsistent(JsonElement stats)
    {
        var all = stats.GetProperty("days").EnumerateArray()
            .SelectMany(d => d.GetProperty("byOs").EnumerateArray().Concat(d.GetProperty("byVersion").EnumerateArray()).Append(d))
            .Concat(stats.GetProperty("byOs").EnumerateArray())
            .Concat(stats.GetProperty("byVersion").EnumerateArray())
            .Append(stats.GetProperty("totals"));
        Assert.All(all, e =>
        {
            var (started, succeeded, failed, rate) = Counts(e);
            Assert.True(succeeded + failed <= started, e.ToString());
            Assert.True(rate is null or >= 0 and <= 1, e.ToString());
        });
    }

    [Fact]
    public async Task An_installation_that_succeeds_after_midnight_counts_on_its_start_day_and_a_resent_success_counts_once()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday, 23, 50), Install("Installation Started", "n1"));

        // Monday is rolled up before the success arrives: the success flags Monday for a recompute.
        await RollupAtAsync(host, time, Monday.AddDays(1));
        await SendAsync(host, time, At(Monday.AddDays(1), 0, 20), Install("Installation Success", "n1"));
        await SendAsync(host, time, At(Monday.AddDays(1), 10), Install("Installation Started", "n2"), Install("Installation Success", "n2"));
        await RollupAtAsync(host, time, Monday.AddDays(2));
        await SendAsync(host, time, At(Monday.AddDays(2), 10), Install("Installation Started", "n3"), Install("Installation Success", "n3"));
        await RollupAtAsync(host, time, Monday.AddDays(3));

        // The success is sent again on Thursday, under a new messageId.
        await SendAsync(host, time, At(Monday.AddDays(3), 9), Install("Installation Success", "n3"));
        await RollupAtAsync(host, time, Monday.AddDays(4));
        await RollupAtAsync(host, time, Monday.AddDays(5));

        var stats = await StatsAsync(host, Monday, Monday.AddDays(3));
        Assert.Equal((1, 1, 0, 1.0), Day(stats, Monday));
        Assert.Equal((1, 1, 0, 1.0), Day(stats, Monday.AddDays(1)));
        Assert.Equal((1, 1, 0, 1.0), Os(stats, Monday.AddDays(1), "ubuntu"));
        Assert.Equal((1, 1, 0, 1.0), Day(stats, Monday.AddDays(2)));
        Assert.Equal((0, 0, 0, null), Day(stats, Monday.AddDays(3)));
        Assert.Equal((3, 3, 0, 1.0), Counts(stats.GetProperty("totals")));
        AssertConsistent(stats);

        var wednesdayToThursday = await StatsAsync(host, Monday.AddDays(2), Monday.AddDays(3));
        Assert.Equal((1, 1, 0, 1.0), Counts(wednesdayToThursday.GetProperty("totals")));
    }

    [Fact]
    public async Task An_installation_that_fails_then_succeeds_on_a_retry_counts_once_as_started_and_succeeded_and_not_as_failed()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday, 9), Install("Installation Started", "retried"));
        await SendAsync(host, time, At(Monday, 9, 5), Install("Installation Errors", "retried"));
        await SendAsync(host, time, At(Monday, 9, 30), Install("Installation Started", "retried"));
        await SendAsync(host, time, At(Monday, 9, 40), Install("Installation Success", "retried"));
        await SendAsync(host, time, At(Monday, 11), Install("Installation Started", "gave-up", "windows"), Install("Installation Errors", "gave-up", "windows"));
        await RollupAtAsync(host, time, Monday.AddDays(1));

        var record = (await host.Tables.RowsAsync(TableNames.Installations)).Single(r => r.GetString("Os") == "ubuntu");
        Assert.Equal("succeeded", record.GetString("Status"));
        var stats = await StatsAsync(host, Monday, Monday);
        Assert.Equal((2, 1, 1, 0.5), Day(stats, Monday));
        Assert.Equal((1, 1, 0, 1.0), Os(stats, Monday, "ubuntu"));
        Assert.Equal((1, 0, 1, 0.0), Os(stats, Monday, "windows"));
        AssertConsistent(stats);
    }

    [Fact]
    public async Task A_retry_on_a_later_day_counts_the_installation_once_on_the_day_it_first_started()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday, 15), Install("Installation Started", "n1"), Install("Installation Errors", "n1"));
        await RollupAtAsync(host, time, Monday.AddDays(1));
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Install("Installation Started", "n1"), Install("Installation Success", "n1"));
        await RollupAtAsync(host, time, Monday.AddDays(2));

        var stats = await StatsAsync(host, Monday, Monday.AddDays(1));
        Assert.Equal((1, 1, 0, 1.0), Day(stats, Monday));
        Assert.Equal((0, 0, 0, null), Day(stats, Monday.AddDays(1)));
        AssertConsistent(stats);
    }

    [Fact]
    public async Task The_start_day_is_the_reporting_time_zones_day_not_utcs()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:ReportingTimeZone"] = "Asia/Tokyo" });

        // 14:30 UTC on Monday is 23:30 on Monday in Tokyo; 15:30 UTC is 00:30 on Tuesday there.
        await SendAsync(host, time, At(Monday, 14, 30), Install("Installation Started", "tokyo"));
        await SendAsync(host, time, At(Monday, 15, 30), Install("Installation Success", "tokyo"));

        // 16:00 UTC on Monday is Tuesday in Tokyo, and Tuesday 14:00 UTC is 23:00 on Tuesday there.
        await SendAsync(host, time, At(Monday, 16), Install("Installation Started", "tokyo-2"));
        await SendAsync(host, time, At(Monday.AddDays(1), 14), Install("Installation Errors", "tokyo-2"));
        await RollupAtAsync(host, time, Monday.AddDays(3));

        var stats = await StatsAsync(host, Monday, Monday.AddDays(1));
        Assert.Equal("Asia/Tokyo", stats.GetProperty("reportingTimeZone").GetString());
        Assert.Equal((1, 1, 0, 1.0), Day(stats, Monday));
        Assert.Equal((1, 0, 1, 0.0), Day(stats, Monday.AddDays(1)));
        AssertConsistent(stats);
    }

    [Fact]
    public async Task An_outcome_with_no_known_start_counts_on_its_own_day_and_moves_to_the_start_day_once_the_start_arrives()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        await SendAsync(host, time, At(Monday.AddDays(1), 9), Install("Installation Success", "no-start"));
        await SendAsync(host, time, At(Monday.AddDays(1), 10), Install("Installation Errors", "failed-no-start", "windows"));
        await RollupAtAsync(host, time, Monday.AddDays(2));

        var before = await StatsAsync(host, Monday, Monday.AddDays(1));
        Assert.Equal((2, 1, 1, 0.5), Day(before, Monday.AddDays(1)));
        AssertConsistent(before);

        // On Wednesday the Started of the first one arrives late: it happened on Monday evening. Monday, which had no
        // activity when it was rolled up, is then recomputed because the mark flags it.
        await SendLateAsync(host, time, At(Monday.AddDays(2), 9), At(Monday, 20), Install("Installation Started", "no-start"));
        await RollupAtAsync(host, time, Monday.AddDays(3));

        var after = await StatsAsync(host, Monday, Monday.AddDays(1));
        Assert.Equal((1, 1, 0, 1.0), Day(after, Monday));
        Assert.Equal((1, 0, 1, 0.0), Day(after, Monday.AddDays(1)));
        AssertConsistent(after);
    }

    [Fact]
    public async Task Concurrent_requests_of_one_installation_leave_it_counted_once_on_its_start_day()
    {
        var time = new FakeTimeProvider(At(Monday.AddDays(1), 1));
        await using var host = new LocalHostFactory(azurite, time);
        var events = new List<(DateTimeOffset At, JsonObject Event)>();
        for (var i = 0; i < 4; i++)
        {
            events.Add((At(Monday, 23, 50), Install("Installation Started", $"c{i}")));
            events.Add((At(Monday, 23, 55), Install("Installation Errors", $"c{i}")));
            events.Add((At(Monday.AddDays(1), 0, 10), Install("Installation Started", $"c{i}")));
            events.Add((At(Monday.AddDays(1), 0, 20), Install("Installation Success", $"c{i}")));
        }

        await Task.WhenAll(events.Select(async e =>
        {
            e.Event["originalTimestamp"] = e.At.ToString("O");
            e.Event["sentAt"] = time.GetUtcNow().ToString("O");
            var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e.Event), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }));
        await RollupAtAsync(host, time, Monday.AddDays(2));

        var stats = await StatsAsync(host, Monday, Monday.AddDays(1));
        Assert.Equal((4, 4, 0, 1.0), Day(stats, Monday));
        Assert.Equal((0, 0, 0, null), Day(stats, Monday.AddDays(1)));
        AssertConsistent(stats);
    }

    [Fact]
    public async Task Marks_that_disagree_with_the_rule_still_give_a_day_whose_outcomes_never_exceed_its_starts()
    {
        var time = new FakeTimeProvider(At(Monday.AddDays(1), 1));
        await using var host = new LocalHostFactory(azurite, time);
        var day = TableKeys.Day(Monday);

        // Marks as earlier versions wrote them, one per event day: an outcome without a start, and an installation
        // flagged both succeeded and failed.
        await host.Tables.Table(TableNames.Activity).CreateIfNotExistsAsync(TestContext.Current.CancellationToken);
        foreach (var mark in new[]
        {
            new TableEntity(day, ActivityStore.InstallationPrefix + "a") { ["Succeeded"] = true, ["Os"] = "ubuntu" },
            new TableEntity(day, ActivityStore.InstallationPrefix + "b") { ["Succeeded"] = true, ["Os"] = "ubuntu" },
            new TableEntity(day, ActivityStore.InstallationPrefix + "c") { ["Started"] = true, ["Succeeded"] = true, ["Failed"] = true, ["Os"] = "ubuntu" },
            new TableEntity(day, ActivityStore.InstallationPrefix + "d") { ["Started"] = true, ["Os"] = "ubuntu" },
            new TableEntity(day, ActivityStore.InstallationPrefix + "e") { ["Failed"] = true, ["Os"] = "windows" },
            new TableEntity(day, ActivityStore.InstallationPrefix + "f") { ["SupportRequested"] = true, ["Os"] = "windows" },
        })
        {
            await host.Tables.Table(TableNames.Activity).AddEntityAsync(mark, TestContext.Current.CancellationToken);
        }

        var figures = await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(Monday, TestContext.Current.CancellationToken);

        Assert.Equal((5, 3, 1, 1), (figures.InstallationsStarted, figures.InstallationsSucceeded, figures.InstallationsFailed, figures.SupportRequests));
        Assert.Equal(0.6, figures.InstallationSuccessRate);
        Assert.Equal(4, figures.Breakdowns["installationsStartedByOs"]["ubuntu"]);
        Assert.Equal(3, figures.Breakdowns["installationsSucceededByOs"]["ubuntu"]);
        Assert.False(figures.Breakdowns["installationsFailedByOs"].ContainsKey("ubuntu"));
        AssertConsistent(await StatsAsync(host, Monday, Monday));
    }
}
