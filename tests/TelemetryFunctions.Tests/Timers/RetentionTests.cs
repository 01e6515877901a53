using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Timers;

public sealed class RetentionTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Raw_events_and_activity_past_retention_are_deleted_and_daily_figures_are_kept()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", timestamp: T0)), TestContext.Current.CancellationToken);
        time.SetUtcNow(T0.AddDays(1));
        await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(DateOnly.FromDateTime(T0.UtcDateTime), TestContext.Current.CancellationToken);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        time.SetUtcNow(T0.AddDays(89));
        var early = await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, early.RawEvents);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));

        time.SetUtcNow(T0.AddDays(91));
        var due = await jobs.RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, due.RawEvents);
        Assert.Equal(28, early.Digests); // the MAU window of the rolled-up day built digests for its 29 earlier days (empty)
        Assert.Equal(2, due.Digests);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Activity));
        var stats = await host.Services.GetRequiredService<DailyRollup>().ReadAsync(DateOnly.FromDateTime(T0.UtcDateTime), DateOnly.FromDateTime(T0.UtcDateTime), TestContext.Current.CancellationToken);
        Assert.Equal(1, Assert.Single(stats).Dau);
    }

    [Fact]
    public async Task A_run_deletes_every_raw_event_older_than_the_retention_period_and_keeps_younger_ones_of_the_same_day()
    {
        var day = new DateTimeOffset(2026, 6, 1, 0, 30, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(day.AddHours(2));
        await using var host = new LocalHostFactory(azurite, time);
        await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Clicked", messageId: "old", timestamp: day),
            Segment.Track("Clicked", messageId: "young", timestamp: day.AddHours(2)))), TestContext.Current.CancellationToken);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);

        time.SetUtcNow(day.AddDays(90).AddHours(1));
        var result = await host.Services.GetRequiredService<TelemetryJobs>().RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.RawEvents);
        var kept = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(day.AddHours(2), kept.GetDateTimeOffset("EventTime"));
    }

    [Fact]
    public async Task An_event_from_a_fast_client_clock_is_deleted_once_its_time_is_past_retention_though_its_partition_is_a_later_day()
    {
        // A clock 30 hours fast files its events under the next day; its sentAt, from the same clock, corrects their time.
        static JsonObject FromFastClock(string messageId, DateTimeOffset at)
        {
            var track = Segment.Track("Clicked", messageId: messageId, timestamp: at.AddHours(30));
            track["sentAt"] = at.AddHours(30).ToString("O");
            return track;
        }

        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(FromFastClock("old", T0))), TestContext.Current.CancellationToken);
        time.SetUtcNow(T0.AddHours(2));
        await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(FromFastClock("young", T0.AddHours(2)))), TestContext.Current.CancellationToken);
        Assert.All(await host.Tables.RowsAsync(TableNames.RawEvents), row => Assert.StartsWith("20260602_", row.PartitionKey, StringComparison.Ordinal));

        time.SetUtcNow(T0.AddDays(90).AddHours(1));
        var result = await host.Services.GetRequiredService<TelemetryJobs>().RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.RawEvents);
        var kept = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(T0.AddHours(2), kept.GetDateTimeOffset("EventTime"));
    }

    [Fact]
    public async Task An_event_whose_sent_at_dates_it_a_month_before_its_own_timestamp_is_deleted_once_its_time_is_past_retention()
    {
        // sentAt 29 days after the event's timestamp: its time is 29 days before receipt, and its own timestamp's day and
        // its receive day both too late for that time, so it is filed under the day of its time.
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var track = Segment.Track("Clicked", timestamp: T0);
        track["sentAt"] = T0.AddDays(29).ToString("O");
        await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(track), TestContext.Current.CancellationToken);
        var row = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.StartsWith("20260503_", row.PartitionKey, StringComparison.Ordinal);
        Assert.Equal(T0.AddDays(-29), row.GetDateTimeOffset("EventTime"));
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        time.SetUtcNow(T0.AddDays(-29 + 90).AddHours(-1));
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).RawEvents);

        time.SetUtcNow(T0.AddDays(-29 + 90).AddHours(1));
        Assert.Equal(1, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).RawEvents);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task Activity_marks_are_kept_until_their_whole_reporting_day_is_older_than_the_retention_period()
    {
        // 05:00 UTC on 1 June is 19:00 on 31 May in Honolulu (UTC-10, no daylight saving): the mark is on 31 May.
        var at = new DateTimeOffset(2026, 6, 1, 5, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(at);
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:ReportingTimeZone"] = "Pacific/Honolulu" });
        await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", timestamp: at)), TestContext.Current.CancellationToken);
        Assert.Equal("20260531", Assert.Single(await host.Tables.RowsAsync(TableNames.Activity)).PartitionKey);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        // At 04:00 UTC on 30 August (18:00 on 29 August in Honolulu) the end of the mark's day is not yet 90 days ago.
        time.SetUtcNow(at.AddDays(90).AddHours(-1));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Activity));

        // At 10:00 UTC (00:00 on 30 August in Honolulu) it is exactly 90 days ago.
        time.SetUtcNow(new DateTimeOffset(2026, 8, 30, 10, 0, 0, TimeSpan.Zero));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Activity));
    }

    [Fact]
    public async Task Support_requests_are_deleted_after_their_own_retention()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var support = Segment.Track("Installation Support", userId: null, anonymousId: "install-r", properties: new JsonObject { ["email"] = "help@example.com" });
        await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(support), TestContext.Current.CancellationToken);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        time.SetUtcNow(T0.AddDays(29));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Single(await host.Tables.RowsAsync(TableNames.SupportRequests));

        time.SetUtcNow(T0.AddDays(30).AddMinutes(1));
        var result = await jobs.RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.SupportRequests);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.SupportRequests));
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task An_opt_out_whose_erasure_was_interrupted_is_completed_by_the_retention_job()
    {
        var time = new FakeTimeProvider(T0);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "leaver", timestamp: T0)), TestContext.Current.CancellationToken);

        faults.Outage(m => m.Request.Method.Method == "DELETE" || m.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal));
        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaver" }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, optOut.StatusCode);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        var pending = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
        Assert.True(pending.GetBoolean("ErasurePending"));

        faults.Heal();
        var result = await host.Services.GetRequiredService<TelemetryJobs>().RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.Erasures);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.False(Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetBoolean("ErasurePending"));
    }

    [Fact]
    public async Task A_sharing_suppression_lifted_while_the_retention_job_erases_it_again_stays_lifted()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var reenableBeforeMark = new BeforeRequestPolicy(IsSuppressionMerge);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: reenableBeforeMark);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: Instance("inst-raced", "disabled"))), TestContext.Current.CancellationToken);

        // Past the stale window the job erases the instance once more; while it does, the instance re-enables sharing
        // and its suppression is lifted, just before the job marks that suppression erased.
        time.Advance(TimeSpan.FromHours(1));
        reenableBeforeMark.Arm(() => client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: Instance("inst-raced", "advanced"))), TestContext.Current.CancellationToken));
        var result = await host.Services.GetRequiredService<TelemetryJobs>().RetentionAsync(TestContext.Current.CancellationToken);

        Assert.True(reenableBeforeMark.Fired);
        Assert.Equal(1, result.Erasures);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
        var later = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: Instance("inst-raced"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(later)).GetProperty("accepted").GetInt32());
    }

    [Fact]
    public async Task A_suppression_row_without_a_reason_still_drops_events_and_is_lifted_by_the_next_declaration_of_sharing()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: Instance("inst-left", "disabled"))), TestContext.Current.CancellationToken);
        var row = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
        await host.Tables.Table(TableNames.Suppressions).UpsertEntityAsync(
            new TableEntity(row.PartitionKey, row.RowKey) { ["ErasurePending"] = false, ["ErasedAt"] = row.GetDateTimeOffset("ErasedAt") },
            TableUpdateMode.Replace,
            TestContext.Current.CancellationToken);
        await using var otherHost = new LocalHostFactory(azurite, settings: new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        var other = otherHost.CreateSegmentClient();

        var silent = await other.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: Instance("inst-left"))), TestContext.Current.CancellationToken);
        var back = await other.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: Instance("inst-left", "basic"))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(silent)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    public async Task An_event_a_stale_host_accepted_right_after_an_opt_out_is_erased_by_the_next_retention_run_even_after_missed_runs(int daysUntilRetentionRuns)
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await using var stale = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        var leaverKey = await OptOutWhileAStaleHostAcceptsAsync(host, stale, time, "leaver");

        // The retention runs of the next days are missed (host down, or the run failed); it runs again later.
        time.Advance(TimeSpan.FromDays(daysUntilRetentionRuns));
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var result = await jobs.RetentionAsync(TestContext.Current.CancellationToken);

        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("UserKey") == leaverKey);
        Assert.Equal(1, result.Erasures);
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    [Fact]
    public async Task Opt_out_erasures_run_even_when_an_earlier_retention_step_fails_and_the_run_still_fails()
    {
        var time = new FakeTimeProvider(T0);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: faults);
        await using var stale = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        var leaverKey = await OptOutWhileAStaleHostAcceptsAsync(host, stale, time, "leaver");

        // Listing the activity digests (to delete old ones) fails throughout the run.
        time.Advance(TimeSpan.FromHours(1));
        faults.Outage(m => m.Request.Method == RequestMethod.Get && m.Request.Uri.Query.Contains("comp=list", StringComparison.Ordinal));
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var failed = await Record.ExceptionAsync(() => jobs.RetentionAsync(TestContext.Current.CancellationToken));

        Assert.NotNull(failed);
        Assert.True(faults.Injected > 0);
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("UserKey") == leaverKey);
        faults.Heal();
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    [Fact]
    public async Task Two_retention_runs_at_once_repeat_an_opt_outs_erasure_and_neither_repeats_it_again()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await using var stale = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        var leaverKey = await OptOutWhileAStaleHostAcceptsAsync(host, stale, time, "leaver");

        time.Advance(TimeSpan.FromDays(3));
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var otherJobs = stale.Services.GetRequiredService<TelemetryJobs>();
        await Task.WhenAll(jobs.RetentionAsync(TestContext.Current.CancellationToken), otherJobs.RetentionAsync(TestContext.Current.CancellationToken));

        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("UserKey") == leaverKey);
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.Equal(0, (await otherJobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    [Fact]
    public async Task An_opt_out_repeated_while_the_retention_job_repeats_its_erasure_keeps_its_own_repeat()
    {
        var time = new FakeTimeProvider(T0);
        var optOutAgainBeforeMark = new BeforeRequestPolicy(IsSuppressionMerge);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: optOutAgainBeforeMark);
        await using var stale = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        await OptOutWhileAStaleHostAcceptsAsync(host, stale, time, "leaver");

        // Days later the job repeats the erasure; just before it marks the row, the person opts out again: a new
        // suppression, erased at once, inside its own stale window, so it is to be erased once more after that.
        time.Advance(TimeSpan.FromDays(3));
        optOutAgainBeforeMark.Arm(async () =>
        {
            optOutAgainBeforeMark.Disarm();
            var again = await host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaver" }), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        });
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        Assert.Equal(1, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.True(optOutAgainBeforeMark.Fired);

        time.Advance(TimeSpan.FromDays(3));
        Assert.Equal(1, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    [Fact]
    public async Task A_suppression_stored_before_erasures_were_flagged_for_repeat_is_still_erased_once_more_after_its_stale_window()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await using var stale = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = host.TablePrefix });
        var leaverKey = await OptOutWhileAStaleHostAcceptsAsync(host, stale, time, "leaver");

        // The row as written before: its keys, reason and times, nothing else.
        var row = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
        var legacy = new TableEntity(row.PartitionKey, row.RowKey);
        foreach (var name in new[] { "Reason", "CreatedAt", "ErasurePending", "ErasedAt", "UserKey", "InstanceKey", "InstallationKey" })
        {
            if (row.TryGetValue(name, out var value))
            {
                legacy[name] = value;
            }
        }

        await host.Tables.Table(TableNames.Suppressions).UpsertEntityAsync(legacy, TableUpdateMode.Replace, TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromHours(1));
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        Assert.Equal(1, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("UserKey") == leaverKey);
        Assert.Equal(0, (await jobs.RetentionAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    /// <summary>
    /// <paramref name="stale"/> loads its (empty) opt-out list; the user opts out on <paramref name="host"/>, and five
    /// seconds later <paramref name="stale"/>, its list not yet refreshed, accepts an event of theirs. Returns the user's key.
    /// </summary>
    private static async Task<string> OptOutWhileAStaleHostAcceptsAsync(LocalHostFactory host, LocalHostFactory stale, FakeTimeProvider time, string user)
    {
        var warm = await stale.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "someone-else", timestamp: time.GetUtcNow())), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, warm.StatusCode);

        var optOut = await host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = user }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);

        time.Advance(TimeSpan.FromSeconds(5));
        var accepted = await stale.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: user, timestamp: time.GetUtcNow())), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(accepted)).GetProperty("accepted").GetInt32());
        var key = host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.User, user);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("UserKey") == key);
        return key;
    }

    private static JsonObject Instance(string instanceId, string? level = null)
    {
        var p = new JsonObject { ["instanceId"] = instanceId, ["version"] = "2.0.0" };
        if (level is not null)
        {
            p["sharingLevel"] = level;
        }

        return p;
    }

    /// <summary>A merge into a suppression row: marking it erased.</summary>
    private static bool IsSuppressionMerge(HttpMessage message) =>
        message.Request.Method == RequestMethod.Patch
        && message.Request.Uri.Path.Contains(TableNames.Suppressions + "(", StringComparison.Ordinal);
}
