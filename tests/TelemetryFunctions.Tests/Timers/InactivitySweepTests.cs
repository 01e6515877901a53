using System.Net;
using System.Text.Json.Nodes;
using Azure;
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

public sealed class InactivitySweepTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 2, 8, 0, 0, TimeSpan.Zero);

    /// <summary>The limit: an instance silent for longer than InactiveAfter + HeartbeatGrace (6 h + 30 min) is inactive.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromHours(6.5);

    /// <summary>
    /// From the last-seen time a row holds to its deadline: the limit plus InstanceTouchInterval (1 minute), by which
    /// the row's last-seen time may lag the instance's last event. With one heartbeat, the row holds its exact time.
    /// </summary>
    private static readonly TimeSpan DeadlineAfter = Limit + TimeSpan.FromMinutes(1);

    private static async Task HeartbeatAsync(LocalHostFactory host, string instanceId, DateTimeOffset? clientTimestamp = null)
    {
        var e = Segment.Track("Instance Active", properties: new JsonObject { ["instanceId"] = instanceId, ["version"] = "1.0.0" }, timestamp: clientTimestamp);
        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static Task<SweepResult> SweepAsync(LocalHostFactory host) =>
        host.Services.GetRequiredService<TelemetryJobs>().SweepAsync(TestContext.Current.CancellationToken);

    private static async Task<InstanceRecord> InstanceAsync(LocalHostFactory host, string instanceId)
    {
        var key = host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.Instance, instanceId);
        var row = (await host.Tables.RowsAsync(TableNames.Instances)).Single(r => r.RowKey == key);
        return InstanceRegistry.FromEntity(row);
    }

    private static async Task<List<string>> HistoryAsync(LocalHostFactory host, string instanceId)
    {
        var key = host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.Instance, instanceId);
        var history = await host.Services.GetRequiredService<InstanceStatusLog>().HistoryAsync(key, TestContext.Current.CancellationToken);
        return history.Select(h => $"{h.Status}@{h.At:O}").ToList();
    }

    [Fact]
    public async Task An_instance_stays_active_until_its_deadline_a_touch_interval_after_the_limit_and_one_tick_more_makes_it_inactive()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-edge");

        // Silent for exactly the limit, then until the deadline (the row cannot tell a heartbeat up to a touch
        // interval after its last-seen time from none): still active.
        time.SetUtcNow(T0 + Limit);
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        time.SetUtcNow(T0 + DeadlineAfter);
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        Assert.Equal(InstanceRegistry.Active, (await InstanceAsync(host, "inst-edge")).Status);

        time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);
        var instance = await InstanceAsync(host, "inst-edge");
        Assert.Equal(InstanceRegistry.Inactive, instance.Status);
        Assert.Equal(T0 + DeadlineAfter, instance.StatusChangedAt);
        Assert.Contains($"inactive@{T0 + DeadlineAfter:O}", await HistoryAsync(host, "inst-edge"));
    }

    [Fact]
    public async Task An_instance_whose_last_heartbeat_did_not_move_its_stored_last_seen_is_not_swept_before_it_was_silent_for_longer_than_the_limit()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-chatty");
        time.SetUtcNow(T0.AddSeconds(40));
        await HeartbeatAsync(host, "inst-chatty");

        // Less than the touch interval after the first, the second heartbeat left the row's last seen at 0 h.
        Assert.Equal(T0, (await InstanceAsync(host, "inst-chatty")).LastSeen);

        // Just after the limit from the stored time, and exactly the limit after the last heartbeat: not yet silent
        // for longer than the limit.
        time.SetUtcNow(T0 + Limit + TimeSpan.FromSeconds(1));
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        time.SetUtcNow(T0.AddSeconds(40) + Limit);
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        Assert.Equal(InstanceRegistry.Active, (await InstanceAsync(host, "inst-chatty")).Status);
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-chatty"));

        time.SetUtcNow(T0 + DeadlineAfter + TimeSpan.FromSeconds(1));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);
        var swept = await InstanceAsync(host, "inst-chatty");
        Assert.Equal((InstanceRegistry.Inactive, T0 + DeadlineAfter), (swept.Status, swept.StatusChangedAt));
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}"], await HistoryAsync(host, "inst-chatty"));
    }

    [Fact]
    public async Task A_heartbeat_after_the_limit_from_the_stored_last_seen_but_not_from_the_last_heartbeat_records_no_silence()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-chatty-back");
        time.SetUtcNow(T0.AddSeconds(40));
        await HeartbeatAsync(host, "inst-chatty-back");

        // 6 h 29 min 40 s after the last heartbeat, no sweep having run.
        time.SetUtcNow(T0 + Limit + TimeSpan.FromSeconds(20));
        await HeartbeatAsync(host, "inst-chatty-back");

        var instance = await InstanceAsync(host, "inst-chatty-back");
        Assert.Equal((InstanceRegistry.Active, T0, T0 + Limit + TimeSpan.FromSeconds(20)), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-chatty-back"));
        Assert.Empty(await GoneInactiveMarksAsync(host));
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    public async Task A_heartbeat_and_a_sweep_at_the_deadline_or_one_tick_after_judge_the_silence_alike(long ticksAfterDeadline, bool silent)
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-heard");
        await HeartbeatAsync(host, "inst-swept");

        // One instance speaks at that moment before any sweep; the other is swept then.
        var at = T0 + DeadlineAfter + TimeSpan.FromTicks(ticksAfterDeadline);
        time.SetUtcNow(at);
        await ObserveAsync(host, "inst-heard", at);
        var sweep = await SweepAsync(host);

        string[] swept = silent ? [$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}"] : [$"active@{T0:O}"];
        string[] heard = silent ? [.. swept, $"active@{at:O}"] : swept;
        Assert.Equal(silent ? 1 : 0, sweep.MarkedInactive);
        Assert.Equal(swept, await HistoryAsync(host, "inst-swept"));
        Assert.Equal(heard, await HistoryAsync(host, "inst-heard"));
    }

    [Fact]
    public async Task A_heartbeat_arriving_within_the_grace_period_does_not_flap_the_status()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-late");

        // The sweep runs after InactiveAfter (6 h) but within the grace, before the late heartbeat arrives.
        time.SetUtcNow(T0 + TimeSpan.FromHours(6) + TimeSpan.FromMinutes(15));
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        Assert.Equal(InstanceRegistry.Active, (await InstanceAsync(host, "inst-late")).Status);

        time.SetUtcNow(T0 + TimeSpan.FromHours(6) + TimeSpan.FromMinutes(20));
        await HeartbeatAsync(host, "inst-late");
        time.SetUtcNow(T0 + TimeSpan.FromHours(6) + TimeSpan.FromMinutes(31));

        var result = await SweepAsync(host);

        Assert.Equal(0, result.MarkedInactive);
        Assert.Equal(InstanceRegistry.Active, (await InstanceAsync(host, "inst-late")).Status);
        Assert.DoesNotContain(await HistoryAsync(host, "inst-late"), h => h.StartsWith("inactive", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_inactive_instance_that_pings_again_is_active_and_both_changes_are_in_its_history()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-back");
        time.SetUtcNow(T0.AddHours(8));
        await SweepAsync(host);

        time.SetUtcNow(T0.AddHours(9));
        await HeartbeatAsync(host, "inst-back");

        var instance = await InstanceAsync(host, "inst-back");
        Assert.Equal(InstanceRegistry.Active, instance.Status);
        Assert.Equal(T0.AddHours(9), instance.StatusChangedAt);
        var history = await HistoryAsync(host, "inst-back");
        Assert.Contains($"inactive@{T0 + DeadlineAfter:O}", history);
        Assert.Contains($"active@{T0.AddHours(9):O}", history);

        time.SetUtcNow(T0.AddHours(10));
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
    }

    [Fact]
    public async Task Silence_is_judged_on_receive_time_so_a_client_clock_hours_behind_does_not_make_an_instance_inactive()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-clock");

        time.SetUtcNow(T0.AddHours(6));
        await HeartbeatAsync(host, "inst-clock", clientTimestamp: T0.AddHours(-10));
        time.SetUtcNow(T0.AddHours(7));

        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        Assert.Equal(T0.AddHours(6), (await InstanceAsync(host, "inst-clock")).LastSeen);
    }

    [Fact]
    public async Task Running_the_sweep_twice_or_concurrently_gives_the_result_of_one_run()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-twice-a");
        await HeartbeatAsync(host, "inst-twice-b");
        time.SetUtcNow(T0.AddHours(12));

        var concurrent = await Task.WhenAll(SweepAsync(host), SweepAsync(host));
        var again = await SweepAsync(host);

        Assert.Equal(2, concurrent.Sum(r => r.MarkedInactive));
        Assert.Equal(0, again.MarkedInactive);
        Assert.Single(await HistoryAsync(host, "inst-twice-a"), h => h.StartsWith("inactive", StringComparison.Ordinal));
        Assert.Equal(InstanceRegistry.Inactive, (await InstanceAsync(host, "inst-twice-b")).Status);
    }

    [Fact]
    public async Task The_sweep_examines_only_instances_whose_silence_deadline_passed_not_the_whole_fleet()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "silent-1");
        await HeartbeatAsync(host, "silent-2");
        time.SetUtcNow(T0.AddHours(3));
        for (var i = 0; i < 30; i++)
        {
            await HeartbeatAsync(host, $"alive-{i}");
        }

        time.SetUtcNow(T0.AddHours(7));
        var result = await SweepAsync(host);

        Assert.Equal(2, result.Examined);
        Assert.Equal(2, result.MarkedInactive);
        Assert.Equal(32, (await host.Tables.RowsAsync(TableNames.Instances)).Count);
    }

    [Fact]
    public async Task A_missed_sweep_run_later_marks_every_instance_that_went_silent_meanwhile()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "gone-early");
        time.SetUtcNow(T0.AddHours(5));
        await HeartbeatAsync(host, "gone-later");

        time.SetUtcNow(T0.AddDays(2));
        var result = await SweepAsync(host);

        Assert.Equal(2, result.MarkedInactive);
        Assert.Equal(T0 + DeadlineAfter, (await InstanceAsync(host, "gone-early")).StatusChangedAt);
        Assert.Equal(T0.AddHours(5) + DeadlineAfter, (await InstanceAsync(host, "gone-later")).StatusChangedAt);
    }

    [Fact]
    public async Task A_silence_that_a_heartbeat_ends_before_any_sweep_saw_it_is_recorded_as_an_on_time_sweep_records_it()
    {
        var monday = DateOnly.FromDateTime(T0.UtcDateTime);
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);

        // One instance's silence is seen by a sweep on time; the other's, an hour later, ends before any sweep ran (a
        // missed run, or the quarter of an hour before the next one). Its heartbeat is also sent twice (a retry).
        await HeartbeatAsync(host, "inst-swept");
        time.SetUtcNow(T0.AddHours(1));
        await HeartbeatAsync(host, "inst-unswept");
        time.SetUtcNow(T0.AddHours(6.75));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);
        time.SetUtcNow(T0.AddHours(8));
        await HeartbeatAsync(host, "inst-swept");
        time.SetUtcNow(T0.AddHours(9));
        await HeartbeatAsync(host, "inst-unswept");
        await ObserveAsync(host, "inst-unswept", T0.AddHours(9));

        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{T0.AddHours(8):O}"], await HistoryAsync(host, "inst-swept"));
        Assert.Equal([$"active@{T0.AddHours(1):O}", $"inactive@{T0.AddHours(1) + DeadlineAfter:O}", $"active@{T0.AddHours(9):O}"], await HistoryAsync(host, "inst-unswept"));
        var instance = await InstanceAsync(host, "inst-unswept");
        Assert.Equal((InstanceRegistry.Active, T0.AddHours(9)), (instance.Status, instance.StatusChangedAt));

        time.SetUtcNow(T0.AddHours(10));
        Assert.Equal(0, (await SweepAsync(host)).MarkedInactive);
        time.SetUtcNow(T0.AddDays(1).AddHours(1));
        var figures = await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(monday, TestContext.Current.CancellationToken);
        Assert.Equal(2, figures.InstancesGoneInactive);
    }

    [Fact]
    public async Task A_host_whose_kept_row_is_older_than_what_another_host_wrote_records_no_silence_the_stored_row_does_not_show()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await ObserveAsync(host, "inst-two-hosts", T0);

        // Another host has since recorded heartbeats up to 6 h: this host still keeps the row as of 0 h.
        var instances = host.Tables.Table(TableNames.Instances);
        var key = KeyOf(host, "inst-two-hosts");
        var stored = (await instances.GetEntityAsync<TableEntity>(InstanceRegistry.PartitionKeyOf(key), key, cancellationToken: TestContext.Current.CancellationToken)).Value;
        stored["LastSeen"] = T0.AddHours(6);
        await instances.UpdateEntityAsync(stored, stored.ETag, TableUpdateMode.Replace, TestContext.Current.CancellationToken);

        time.SetUtcNow(T0.AddHours(7));
        await ObserveAsync(host, "inst-two-hosts", T0.AddHours(7));

        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-two-hosts"));
        Assert.Empty(await GoneInactiveMarksAsync(host));
        Assert.Equal(T0.AddHours(7), (await InstanceAsync(host, "inst-two-hosts")).LastSeen);
    }

    [Fact]
    public async Task A_silence_recorded_by_a_write_that_loses_to_a_heartbeat_received_before_the_deadline_is_withdrawn()
    {
        var time = new FakeTimeProvider(T0);
        var otherWriteFirst = new BeforeRequestPolicy(IsConditionalInstanceUpdate);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: otherWriteFirst);
        await HeartbeatAsync(host, "inst-lost-write");
        time.SetUtcNow(T0.AddHours(7));

        // Received at 7 h, it finds the instance silent since 6 h 31 and records that; just before its row write, a
        // heartbeat received at 6 h (so the instance never was silent for longer than the limit) gets its write in.
        otherWriteFirst.Arm(() => ObserveAsync(host, "inst-lost-write", T0.AddHours(6)));
        await ObserveAsync(host, "inst-lost-write", T0.AddHours(7));

        Assert.True(otherWriteFirst.Fired);
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-lost-write"));
        Assert.Empty(await GoneInactiveMarksAsync(host));
        var instance = await InstanceAsync(host, "inst-lost-write");
        Assert.Equal((InstanceRegistry.Active, T0, T0.AddHours(7)), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
    }

    [Fact]
    public async Task Two_heartbeats_reactivating_an_inactive_instance_at_once_leave_one_reactivation_in_its_history()
    {
        var time = new FakeTimeProvider(T0);
        var otherWriteFirst = new BeforeRequestPolicy(IsConditionalInstanceUpdate);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: otherWriteFirst);
        await HeartbeatAsync(host, "inst-twice-back");
        time.SetUtcNow(T0.AddHours(8));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);

        // Both read the inactive row and record their reactivation; the one received at 9 h 01 writes the row first.
        time.SetUtcNow(T0.AddHours(9.1));
        otherWriteFirst.Arm(() => ObserveAsync(host, "inst-twice-back", T0.AddHours(9).AddMinutes(1)));
        await ObserveAsync(host, "inst-twice-back", T0.AddHours(9));

        Assert.True(otherWriteFirst.Fired);
        Assert.Equal(
            [$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{T0.AddHours(9).AddMinutes(1):O}"],
            await HistoryAsync(host, "inst-twice-back"));
        var instance = await InstanceAsync(host, "inst-twice-back");
        Assert.Equal((InstanceRegistry.Active, T0.AddHours(9).AddMinutes(1)), (instance.Status, instance.StatusChangedAt));
    }

    [Fact]
    public async Task A_heartbeat_ending_a_silence_while_the_sweep_records_it_leaves_the_history_an_on_time_sweep_leaves()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-race");
        time.SetUtcNow(T0.AddHours(8));

        // Whichever writes the row first, the other finds it changed and records what is left.
        await Task.WhenAll(SweepAsync(host), ObserveAsync(host, "inst-race", T0.AddHours(8)));

        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{T0.AddHours(8):O}"], await HistoryAsync(host, "inst-race"));
        var instance = await InstanceAsync(host, "inst-race");
        Assert.Equal((InstanceRegistry.Active, T0.AddHours(8), T0.AddHours(8)), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
    }

    [Fact]
    public async Task A_heartbeat_landing_between_the_sweeps_read_and_its_update_records_the_silence_once_and_the_instance_active()
    {
        var time = new FakeTimeProvider(T0);
        var heartbeatBeforeUpdate = new BeforeRequestPolicy(IsConditionalInstanceUpdate);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: heartbeatBeforeUpdate);
        await HeartbeatAsync(host, "inst-raced");
        time.SetUtcNow(T0.AddHours(7));

        // The sweep has read the silent instance; just before its If-Match update, the instance speaks again.
        heartbeatBeforeUpdate.Arm(() => HeartbeatAsync(host, "inst-raced"));
        var result = await SweepAsync(host);

        Assert.True(heartbeatBeforeUpdate.Fired);
        Assert.Equal((0, 1), (result.MarkedInactive, result.Rescheduled));
        var instance = await InstanceAsync(host, "inst-raced");
        Assert.Equal(InstanceRegistry.Active, instance.Status);
        Assert.Equal(T0.AddHours(7), instance.LastSeen);

        // The heartbeat ended a silence past the deadline (6 h 31 to 7 h): it records it, and the sweep, whose update
        // then fails, records nothing more.
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{T0.AddHours(7):O}"], await HistoryAsync(host, "inst-raced"));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Activity), r => r.RowKey.StartsWith(ActivityStore.GoneInactivePrefix, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(600)]
    public async Task A_heartbeat_received_at_or_before_the_deadline_but_written_after_the_sweep_undoes_the_inactivity(int secondsBeforeDeadline)
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-undone");
        time.SetUtcNow(T0.AddHours(7));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);

        // The state a heartbeat received before the deadline finds when its write lost to the sweep's and it rereads.
        var receivedAt = T0 + DeadlineAfter - TimeSpan.FromSeconds(secondsBeforeDeadline);
        await ObserveAsync(host, "inst-undone", receivedAt);

        var instance = await InstanceAsync(host, "inst-undone");
        Assert.Equal((InstanceRegistry.Active, T0, receivedAt), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-undone"));
        Assert.Empty(await GoneInactiveMarksAsync(host));

        // Its silence is measured from that heartbeat from now on.
        time.SetUtcNow(receivedAt + DeadlineAfter + TimeSpan.FromSeconds(1));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);
        Assert.Equal(receivedAt + DeadlineAfter, (await InstanceAsync(host, "inst-undone")).StatusChangedAt);
        Assert.Equal([$"active@{T0:O}", $"inactive@{receivedAt + DeadlineAfter:O}"], await HistoryAsync(host, "inst-undone"));
    }

    [Fact]
    public async Task A_heartbeat_received_one_second_after_the_deadline_is_a_reactivation_and_the_inactivity_stays()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-genuine");
        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);

        var receivedAt = T0 + DeadlineAfter + TimeSpan.FromSeconds(1);
        await ObserveAsync(host, "inst-genuine", receivedAt);

        var instance = await InstanceAsync(host, "inst-genuine");
        Assert.Equal((InstanceRegistry.Active, receivedAt), (instance.Status, instance.StatusChangedAt));
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{receivedAt:O}"], await HistoryAsync(host, "inst-genuine"));
        Assert.Single(await GoneInactiveMarksAsync(host));
    }

    [Fact]
    public async Task A_heartbeat_received_before_the_deadline_whose_write_loses_to_the_sweep_leaves_the_instance_active_without_inactivity()
    {
        var time = new FakeTimeProvider(T0);
        var sweepBeforeHeartbeatWrite = new BeforeRequestPolicy(IsConditionalInstanceUpdate);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: sweepBeforeHeartbeatWrite);
        await HeartbeatAsync(host, "inst-lost-race");

        // The heartbeat is received a second before the deadline; the sweep runs after the deadline, between the
        // heartbeat's reading of the row and its If-Match update, which therefore fails and rereads an inactive row.
        var receivedAt = T0 + DeadlineAfter - TimeSpan.FromSeconds(1);
        time.SetUtcNow(receivedAt);
        SweepResult? sweep = null;
        sweepBeforeHeartbeatWrite.Arm(async () =>
        {
            time.SetUtcNow(T0.AddHours(7));
            sweep = await SweepAsync(host);
        });
        await HeartbeatAsync(host, "inst-lost-race");

        Assert.Equal(1, sweep?.MarkedInactive);
        var instance = await InstanceAsync(host, "inst-lost-race");
        Assert.Equal((InstanceRegistry.Active, T0, receivedAt), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-lost-race"));
        Assert.Empty(await GoneInactiveMarksAsync(host));
    }

    [Fact]
    public async Task The_sweeps_inactivity_record_landing_after_a_heartbeat_undid_it_is_withdrawn_by_the_sweep()
    {
        var time = new FakeTimeProvider(T0);
        var heartbeatBeforeHistory = new BeforeRequestPolicy(IsInactivityHistoryWrite);
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: heartbeatBeforeHistory);
        await HeartbeatAsync(host, "inst-slow-sweep");
        time.SetUtcNow(T0.AddHours(7));

        // The sweep has made the row inactive; before it records the change, a heartbeat received before the deadline
        // rereads the row and undoes the inactivity, finding nothing recorded yet to remove.
        var receivedAt = T0 + DeadlineAfter - TimeSpan.FromSeconds(1);
        heartbeatBeforeHistory.Arm(() => ObserveAsync(host, "inst-slow-sweep", receivedAt));
        var result = await SweepAsync(host);

        Assert.True(heartbeatBeforeHistory.Fired);
        Assert.Equal((0, 1), (result.MarkedInactive, result.Rescheduled));
        var instance = await InstanceAsync(host, "inst-slow-sweep");
        Assert.Equal((InstanceRegistry.Active, T0, receivedAt), (instance.Status, instance.StatusChangedAt, instance.LastSeen));
        Assert.Equal([$"active@{T0:O}"], await HistoryAsync(host, "inst-slow-sweep"));
        Assert.Empty(await GoneInactiveMarksAsync(host));
    }

    [Fact]
    public async Task A_heartbeat_failing_between_withdrawing_an_inactivity_and_writing_the_row_leaves_it_for_a_later_sweep_to_record_again()
    {
        var time = new FakeTimeProvider(T0);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: faults);
        await HeartbeatAsync(host, "inst-failed");
        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);

        var receivedAt = T0 + DeadlineAfter - TimeSpan.FromSeconds(1);
        faults.Outage(IsConditionalInstanceUpdate);
        await Assert.ThrowsAnyAsync<Exception>(() => ObserveAsync(host, "inst-failed", receivedAt));
        faults.Heal();
        Assert.Equal(InstanceRegistry.Inactive, (await InstanceAsync(host, "inst-failed")).Status);
        Assert.Empty(await GoneInactiveMarksAsync(host));

        // The row still says inactive since the deadline, so the sweep that finds it after the heartbeat's deadline
        // records that inactivity again: row, history and mark agree, as if the heartbeat had never been received.
        time.SetUtcNow(receivedAt + DeadlineAfter + TimeSpan.FromMinutes(1));
        await SweepAsync(host);

        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}"], await HistoryAsync(host, "inst-failed"));
        Assert.Single(await GoneInactiveMarksAsync(host));
    }

    /// <summary>
    /// A row a sweep of the previous rule marked inactive at last seen + the limit (the deadline before the touch interval
    /// was added), stopping before it recorded the change: the sweep of this rule records it, at the time that row holds.
    /// </summary>
    [Fact]
    public async Task A_row_marked_inactive_by_the_previous_deadline_whose_change_was_never_recorded_is_recorded_at_its_own_time()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-earlier-rule");
        var record = await InstanceAsync(host, "inst-earlier-rule");
        var instances = await host.Services.GetRequiredService<TelemetryStorage>().GetTableAsync(TableNames.Instances, TestContext.Current.CancellationToken);
        await instances.UpdateEntityAsync(
            InstanceRegistry.ToEntity(record with { Status = InstanceRegistry.Inactive, StatusChangedAt = T0 + Limit }),
            ETag.All,
            TableUpdateMode.Replace,
            TestContext.Current.CancellationToken);

        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);

        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + Limit:O}"], await HistoryAsync(host, "inst-earlier-rule"));
        Assert.Single(await GoneInactiveMarksAsync(host));
        Assert.Equal(T0 + Limit, (await InstanceAsync(host, "inst-earlier-rule")).StatusChangedAt);
    }

    [Fact]
    public async Task A_heartbeat_failing_to_file_its_new_deadline_withdraws_nothing_so_the_inactivity_stays_recorded()
    {
        var time = new FakeTimeProvider(T0);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: faults);
        await HeartbeatAsync(host, "inst-unfiled");
        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);

        // The sweep removed the old deadline; the undo fails filing the new one, before it withdraws anything.
        faults.Outage(m => m.Request.Method == RequestMethod.Put && m.Request.Uri.Path.Contains(TableNames.InstanceDeadlines + "(", StringComparison.Ordinal));
        await Assert.ThrowsAnyAsync<Exception>(() => ObserveAsync(host, "inst-unfiled", T0 + DeadlineAfter - TimeSpan.FromSeconds(1)));
        faults.Heal();

        // Row, history and mark still agree on the inactivity: nothing is left inactive without its record.
        Assert.Equal(InstanceRegistry.Inactive, (await InstanceAsync(host, "inst-unfiled")).Status);
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}"], await HistoryAsync(host, "inst-unfiled"));
        Assert.Single(await GoneInactiveMarksAsync(host));
    }

    [Fact]
    public async Task Undoing_a_false_inactivity_keeps_the_gone_inactive_mark_of_a_real_one_earlier_that_day()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-twice");
        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);
        time.SetUtcNow(T0.AddHours(8));
        await HeartbeatAsync(host, "inst-twice");
        time.SetUtcNow(T0.AddHours(15));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);

        await ObserveAsync(host, "inst-twice", T0.AddHours(8) + DeadlineAfter - TimeSpan.FromSeconds(1));

        var instance = await InstanceAsync(host, "inst-twice");
        Assert.Equal((InstanceRegistry.Active, T0.AddHours(8)), (instance.Status, instance.StatusChangedAt));
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0 + DeadlineAfter:O}", $"active@{T0.AddHours(8):O}"], await HistoryAsync(host, "inst-twice"));
        Assert.Single(await GoneInactiveMarksAsync(host));
    }

    [Fact]
    public async Task A_real_inactivity_later_on_the_day_of_an_undone_one_is_marked_gone_inactive_again()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await HeartbeatAsync(host, "inst-again");
        time.SetUtcNow(T0.AddHours(7));
        await SweepAsync(host);
        await ObserveAsync(host, "inst-again", T0.AddHours(6));
        Assert.Empty(await GoneInactiveMarksAsync(host));

        time.SetUtcNow(T0.AddHours(13));
        Assert.Equal(1, (await SweepAsync(host)).MarkedInactive);

        Assert.Equal(TableKeys.Day(DateOnly.FromDateTime(T0.UtcDateTime)), Assert.Single(await GoneInactiveMarksAsync(host)).PartitionKey);
        Assert.Equal([$"active@{T0:O}", $"inactive@{T0.AddHours(6) + DeadlineAfter:O}"], await HistoryAsync(host, "inst-again"));
    }

    [Fact]
    public async Task Undoing_an_inactivity_on_a_day_already_rolled_up_makes_the_next_rollup_recompute_that_day()
    {
        // Silent from 17:00 on Monday, so inactive at 23:31; the sweep runs just after midnight.
        var monday = DateOnly.FromDateTime(T0.UtcDateTime);
        var lastSeen = T0.AddHours(9);
        var time = new FakeTimeProvider(lastSeen);
        await using var host = new LocalHostFactory(azurite, time);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();
        var rollup = host.Services.GetRequiredService<DailyRollup>();
        await HeartbeatAsync(host, "inst-rolled-up");
        time.SetUtcNow(lastSeen.AddHours(7).AddMinutes(5));
        await SweepAsync(host);

        // Monday is rolled up and its flag from the sweep cleared, counting the instance as gone inactive.
        time.SetUtcNow(lastSeen.AddHours(7).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        time.SetUtcNow(lastSeen.AddDays(1).AddHours(7).AddMinutes(15));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, Assert.Single(await rollup.ReadAsync(monday, monday, TestContext.Current.CancellationToken)).InstancesGoneInactive);

        // Only now does a heartbeat received before the deadline get its write in, undoing the inactivity.
        await ObserveAsync(host, "inst-rolled-up", lastSeen + DeadlineAfter - TimeSpan.FromSeconds(1));
        await jobs.RollupAsync(TestContext.Current.CancellationToken);

        Assert.Equal(0, Assert.Single(await rollup.ReadAsync(monday, monday, TestContext.Current.CancellationToken)).InstancesGoneInactive);
    }

    private static string KeyOf(LocalHostFactory host, string instanceId) =>
        host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.Instance, instanceId);

    /// <summary>What a heartbeat request received at <paramref name="receivedAt"/> tells the registry, whenever it gets there.</summary>
    private static Task ObserveAsync(LocalHostFactory host, string instanceId, DateTimeOffset receivedAt) =>
        host.Services.GetRequiredService<InstanceRegistry>().RecordAsync(
            [new InstanceObservation(KeyOf(host, instanceId), "server", receivedAt, receivedAt, "1.0.0", null, null, null)],
            TestContext.Current.CancellationToken);

    private static async Task<List<TableEntity>> GoneInactiveMarksAsync(LocalHostFactory host) =>
        [.. (await host.Tables.RowsAsync(TableNames.Activity)).Where(r => r.RowKey.StartsWith(ActivityStore.GoneInactivePrefix, StringComparison.Ordinal))];

    private static bool IsInactivityHistoryWrite(HttpMessage message) =>
        message.Request.Method == RequestMethod.Put
        && message.Request.Uri.Path.Contains(TableNames.InstanceStatusHistory + "(", StringComparison.Ordinal)
        && message.Request.Uri.Path.Contains("_" + InstanceRegistry.Inactive, StringComparison.Ordinal);

    private static bool IsConditionalInstanceUpdate(HttpMessage message) =>
        message.Request.Method == RequestMethod.Put
        && message.Request.Uri.Path.Contains(TableNames.Instances + "(", StringComparison.Ordinal)
        && message.Request.Headers.TryGetValue("If-Match", out var etag) && etag != "*";
}
