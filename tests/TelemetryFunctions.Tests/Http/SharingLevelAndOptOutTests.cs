using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

public sealed class SharingLevelAndOptOutTests(AzuriteFixture azurite)
{
    private static JsonObject InstanceProps(string instanceId, string? level = null)
    {
        var p = new JsonObject { ["instanceId"] = instanceId, ["version"] = "2.0.0" };
        if (level is not null)
        {
            p["sharingLevel"] = level;
        }

        return p;
    }

    [Fact]
    public async Task Sharing_level_disabled_stores_nothing_and_counts_the_drop()
    {
        await using var host = new LocalHostFactory(azurite);

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Instance Active", properties: InstanceProps("inst-off", "disabled")),
            Segment.Track("Feature Used", properties: InstanceProps("inst-off", "disabled")))), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await Segment.ReadJsonAsync(response);
        Assert.Equal(0, body.GetProperty("accepted").GetInt32());
        Assert.Equal(2, body.GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        var rows = await host.Tables.AllRowsAsync();
        Assert.Empty(rows[TableNames.RawEvents]);
        Assert.Empty(rows[TableNames.Instances]);
        Assert.Empty(rows[TableNames.Activity]);
    }

    [Fact]
    public async Task Disabling_sharing_erases_the_instance_and_drops_its_later_events_until_it_is_enabled_again()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-1", "advanced"))), TestContext.Current.CancellationToken);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));

        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-1", "disabled"))), TestContext.Current.CancellationToken);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));

        var silent = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-1"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(silent)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));

        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-1", "basic"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
    }

    [Fact]
    public async Task A_batch_disabling_more_instances_than_one_request_erases_suppresses_all_and_leaves_the_rest_to_the_retention_job()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var count = EventIngestor.MaxErasuresPerRequest + 3;
        var ids = Enumerable.Range(0, count).Select(i => $"inst-many-{i}").ToList();
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "advanced")))])), TestContext.Current.CancellationToken);
        Assert.Equal(count, (await host.Tables.RowsAsync(TableNames.Instances)).Count);

        var disabling = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "disabled")))])), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, disabling.StatusCode);
        Assert.Equal(3, (await host.Tables.RowsAsync(TableNames.Instances)).Count);
        var suppressions = await host.Tables.RowsAsync(TableNames.Suppressions);
        Assert.Equal(count, suppressions.Count);
        Assert.Equal(3, suppressions.Count(r => r.GetBoolean("ErasurePending") == true));
        var silent = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps(ids[^1]))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(silent)).GetProperty("dropped").GetProperty("optedOut").GetInt32());

        await host.Services.GetRequiredService<RetentionJob>().RunAsync(TestContext.Current.CancellationToken);

        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task An_instance_re_enabling_sharing_before_its_deferred_erasure_is_erased_first_and_keeps_what_it_sends_afterwards()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var count = EventIngestor.MaxErasuresPerRequest + 1;
        var ids = Enumerable.Range(0, count).Select(i => $"inst-back-{i}").ToList();
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Feature Used", properties: InstanceProps(id, "advanced")))])), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "disabled")))])), TestContext.Current.CancellationToken);
        var pending = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions), r => r.GetBoolean("ErasurePending") == true);
        Assert.Contains(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("InstanceKey") == pending.GetString("InstanceKey"));

        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps(ids[^1], "basic"))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        var raw = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal("Instance Active", raw.GetString("Event"));
        Assert.Equal(pending.GetString("InstanceKey"), raw.GetString("InstanceKey"));
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.Suppressions), r => r.RowKey == pending.RowKey);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
    }

    [Fact]
    public async Task An_instance_re_enabling_sharing_beyond_what_one_request_erases_stays_suppressed_until_the_retention_job_has_erased_it()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();
        var count = (2 * EventIngestor.MaxErasuresPerRequest) + 1;
        var ids = Enumerable.Range(0, count).Select(i => $"inst-wait-{i}").ToList();
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Feature Used", properties: InstanceProps(id, "advanced")))])), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "disabled")))])), TestContext.Current.CancellationToken);
        Assert.Equal(count - EventIngestor.MaxErasuresPerRequest, (await host.Tables.RowsAsync(TableNames.Suppressions)).Count(r => r.GetBoolean("ErasurePending") == true));

        var back = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "basic")))])), TestContext.Current.CancellationToken);

        // The instances the disabling request erased are erased once more (other hosts may still have stored their
        // events then), which takes this request's erasures; the ones still pending stay suppressed.
        var answer = await Segment.ReadJsonAsync(back);
        Assert.Equal(EventIngestor.MaxErasuresPerRequest, answer.GetProperty("accepted").GetInt32());
        Assert.Equal(count - EventIngestor.MaxErasuresPerRequest, answer.GetProperty("dropped").GetProperty("optedOut").GetInt32());
        var waiting = await host.Tables.RowsAsync(TableNames.Suppressions);
        Assert.Equal(count - EventIngestor.MaxErasuresPerRequest, waiting.Count);
        Assert.All(waiting, r => Assert.True(r.GetBoolean("ErasurePending")));
        var waitingKeys = waiting.Select(r => r.GetString("InstanceKey")).ToHashSet();
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("Event") == "Feature Used" && !waitingKeys.Contains(r.GetString("InstanceKey")));

        // Past the stale window, the job's erasure is final: the next declaration lifts without erasing again.
        time.Advance(TimeSpan.FromHours(1));
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain(await host.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("Event") == "Feature Used");
        var later = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. ids.Select(id => Segment.Track("Instance Active", properties: InstanceProps(id, "basic")))])), TestContext.Current.CancellationToken);
        Assert.Equal(count, (await Segment.ReadJsonAsync(later)).GetProperty("accepted").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Fact]
    public async Task A_batch_that_disables_then_re_enables_an_instance_erases_what_was_stored_before_and_keeps_its_later_events()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-flip", "advanced"))), TestContext.Current.CancellationToken);

        var response = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Instance Active", properties: InstanceProps("inst-flip", "disabled")),
            Segment.Track("Instance Active", properties: InstanceProps("inst-flip", "advanced")))), TestContext.Current.CancellationToken);

        var answer = await Segment.ReadJsonAsync(response);
        Assert.Equal(1, answer.GetProperty("accepted").GetInt32());
        Assert.Equal(1, answer.GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Equal("Instance Active", Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents)).GetString("Event"));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
        Assert.Equal("advanced", Assert.Single(await host.Tables.RowsAsync(TableNames.Instances)).GetString("SharingLevel"));
    }

    [Fact]
    public async Task A_batch_that_disables_then_re_enables_an_instance_does_not_store_what_it_sent_before_the_disable()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();

        var response = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Feature Used", properties: InstanceProps("inst-abc", "advanced")),
            Segment.Track("Instance Active", properties: InstanceProps("inst-abc", "disabled")),
            Segment.Track("Instance Active", properties: InstanceProps("inst-abc", "advanced")))), TestContext.Current.CancellationToken);

        var answer = await Segment.ReadJsonAsync(response);
        Assert.Equal(1, answer.GetProperty("accepted").GetInt32());
        Assert.Equal(2, answer.GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Equal("Instance Active", Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents)).GetString("Event"));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Fact]
    public async Task Re_enabling_soon_after_disabling_erases_what_a_host_with_a_stale_suppression_list_stored_meanwhile()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var a = new LocalHostFactory(azurite, time);
        await using var b = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = a.TablePrefix });
        var clientA = a.CreateSegmentClient();
        var clientB = b.CreateSegmentClient();
        await clientB.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "someone-else")), TestContext.Current.CancellationToken);

        await clientA.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-stale", "disabled"))), TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(5));
        var stale = await clientB.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-stale"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(stale)).GetProperty("accepted").GetInt32());
        time.Advance(TimeSpan.FromSeconds(5));

        var back = await clientA.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-stale", "basic"))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        Assert.DoesNotContain(await a.Tables.RowsAsync(TableNames.RawEvents), r => r.GetString("Event") == "Feature Used");
        Assert.Empty(await a.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Fact]
    public async Task Disabled_declared_on_a_host_whose_list_predates_an_opt_out_leaves_the_opt_out_and_its_pending_erasure_as_they_are()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var faults = new StorageFaults();
        await using var a = new LocalHostFactory(azurite, time, storagePolicy: faults);
        await using var b = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = a.TablePrefix });
        var clientA = a.CreateSegmentClient();
        var clientB = b.CreateSegmentClient();
        await clientB.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "someone-else")), ct);

        faults.Outage(m => m.Request.Method.Method == "DELETE" || m.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal));
        var optOut = await clientA.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaver" }), ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, optOut.StatusCode);
        faults.Heal();
        var pending = Assert.Single(await a.Tables.RowsAsync(TableNames.Suppressions));
        Assert.True(pending.GetBoolean("ErasurePending"));
        Assert.NotNull(pending.GetString("InstallationKey"));

        time.Advance(TimeSpan.FromSeconds(5));
        await clientB.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "leaver", properties: new JsonObject { ["sharingLevel"] = "disabled" })), ct);

        var after = Assert.Single(await a.Tables.RowsAsync(TableNames.Suppressions));
        Assert.Equal(SuppressionReasons.OptOut, after.GetString("Reason"));
        Assert.True(after.GetBoolean("ErasurePending"));
        Assert.Equal(pending.GetString("InstallationKey"), after.GetString("InstallationKey"));

        time.Advance(TimeSpan.FromMinutes(10));
        var back = await clientB.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", messageId: "back-1", userId: "leaver", properties: new JsonObject { ["sharingLevel"] = "advanced" })), ct);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Equal(SuppressionReasons.OptOut, Assert.Single(await a.Tables.RowsAsync(TableNames.Suppressions)).GetString("Reason"));
    }

    [Fact]
    public async Task Re_enabling_reads_the_suppression_once_and_lifts_it()
    {
        var suppressionReads = new BeforeRequestPolicy(m =>
            m.Request.Method == RequestMethod.Get
            && m.Request.Uri.Path.Contains(TableNames.Suppressions + "(", StringComparison.Ordinal)
            && m.Request.Uri.Path.Contains("RowKey=", StringComparison.Ordinal));
        await using var host = new LocalHostFactory(azurite, storagePolicy: suppressionReads);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-once", "disabled"))), TestContext.Current.CancellationToken);

        suppressionReads.Arm(() => Task.CompletedTask, times: int.MaxValue);
        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-once", "basic"))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        Assert.Equal(1, suppressionReads.TimesFired);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Fact]
    public async Task An_opt_out_written_while_a_re_enabling_request_erases_the_instance_is_not_lifted()
    {
        var optOutBeforeMark = new BeforeRequestPolicy(m =>
            m.Request.Method == RequestMethod.Patch && m.Request.Uri.Path.Contains(TableNames.Suppressions + "(", StringComparison.Ordinal));
        await using var host = new LocalHostFactory(azurite, storagePolicy: optOutBeforeMark);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-contested", "disabled"))), TestContext.Current.CancellationToken);

        optOutBeforeMark.Arm(() => client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["instanceId"] = "inst-contested" }), TestContext.Current.CancellationToken));
        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-contested", "basic"))), TestContext.Current.CancellationToken);

        Assert.True(optOutBeforeMark.Fired);
        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(SuppressionReasons.OptOut, Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetString("Reason"));
    }

    [Fact]
    public async Task A_batch_that_re_enables_then_disables_a_suppressed_instance_leaves_it_suppressed_and_stores_nothing()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-flop", "disabled"))), TestContext.Current.CancellationToken);

        var response = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Instance Active", properties: InstanceProps("inst-flop", "advanced")),
            Segment.Track("Instance Active", properties: InstanceProps("inst-flop", "disabled")))), TestContext.Current.CancellationToken);

        Assert.Equal(0, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal(SuppressionReasons.SharingDisabled, Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetString("Reason"));
        var silent = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-flop"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(silent)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
    }

    [Fact]
    public async Task A_person_who_disabled_sharing_turns_it_back_on_by_declaring_basic_or_advanced()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-off")), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-off", properties: new JsonObject { ["sharingLevel"] = "disabled" })), TestContext.Current.CancellationToken);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        var silent = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-off")), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(silent)).GetProperty("dropped").GetProperty("optedOut").GetInt32());

        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-off", properties: new JsonObject { ["sharingLevel"] = "advanced" })), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("accepted").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
        var after = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-off")), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(after)).GetProperty("accepted").GetInt32());
    }

    [Fact]
    public async Task A_person_who_opted_out_is_not_brought_back_by_declaring_a_sharing_level()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "person-gone" }), TestContext.Current.CancellationToken);

        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-gone", properties: new JsonObject { ["sharingLevel"] = "advanced" })), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(SuppressionReasons.OptOut, Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetString("Reason"));
    }

    [Fact]
    public async Task A_person_disabling_sharing_under_a_userId_and_an_anonymousId_is_erased_and_suppressed_under_both()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: null, anonymousId: "device-both")), TestContext.Current.CancellationToken);

        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "person-both", anonymousId: "device-both", properties: new JsonObject { ["sharingLevel"] = "disabled" })), TestContext.Current.CancellationToken);

        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.Suppressions)).Count);
        var anonymous = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: null, anonymousId: "device-both")), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(anonymous)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task Opt_out_of_a_user_erases_the_installation_and_support_request_linked_to_them_through_the_installation_id()
    {
        await using var host = new LocalHostFactory(azurite);
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Installation Started", userId: null, anonymousId: "install-linked", properties: new JsonObject { ["os"] = "ubuntu" }),
            Segment.Track("Installation Support", userId: "user-linked", anonymousId: "install-linked", properties: new JsonObject { ["email"] = "linked@example.com" }))), TestContext.Current.CancellationToken);
        await installer.PostAsync("/v1/track", Segment.Json(Segment.Track("Installation Started", userId: null, anonymousId: "install-other")), TestContext.Current.CancellationToken);
        Assert.Single(await host.Tables.RowsAsync(TableNames.SupportRequests));
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.Installations)).Count);

        var optOut = await installer.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "user-linked" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);
        var erased = (await Segment.ReadJsonAsync(optOut)).GetProperty("erased");
        Assert.Equal(2, erased.GetProperty("rawEvents").GetInt32());
        Assert.Equal(1, erased.GetProperty("activityRows").GetInt32());
        Assert.Equal(1, erased.GetProperty("installations").GetInt32());
        Assert.Equal(1, erased.GetProperty("supportRequests").GetInt32());
        var rows = await host.Tables.AllRowsAsync();
        Assert.Empty(rows[TableNames.SupportRequests]);
        var other = Assert.Single(rows[TableNames.Installations]);
        Assert.Equal(other.RowKey, Assert.Single(rows[TableNames.RawEvents]).GetString("InstallationKey"));
        Assert.Equal(ActivityStore.InstallationPrefix + other.RowKey, Assert.Single(rows[TableNames.Activity]).RowKey);
    }

    [Fact]
    public async Task Opt_out_erases_the_support_requests_of_all_linked_installations_in_one_scan()
    {
        var supportScans = new BeforeRequestPolicy(m =>
            m.Request.Method == RequestMethod.Get && m.Request.Uri.Path.Contains(TableNames.SupportRequests, StringComparison.Ordinal));
        await using var host = new LocalHostFactory(azurite, storagePolicy: supportScans);
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Installation Support", userId: "user-twice", anonymousId: "install-one", properties: new JsonObject { ["email"] = "one@example.com" }),
            Segment.Track("Installation Support", userId: "user-twice", anonymousId: "install-two", properties: new JsonObject { ["email"] = "two@example.com" }))), TestContext.Current.CancellationToken);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.SupportRequests)).Count);

        supportScans.Arm(() => Task.CompletedTask, times: int.MaxValue);
        var optOut = await installer.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "user-twice" }), TestContext.Current.CancellationToken);

        Assert.Equal(2, (await Segment.ReadJsonAsync(optOut)).GetProperty("erased").GetProperty("supportRequests").GetInt32());
        Assert.Equal(1, supportScans.TimesFired);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.SupportRequests));
    }

    [Fact]
    public async Task Opt_out_of_an_instance_erases_the_installations_whose_events_named_it()
    {
        await using var host = new LocalHostFactory(azurite);
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Installation Started", userId: null, anonymousId: "install-of-inst", properties: InstanceProps("inst-installed")),
            Segment.Track("Installation Support", userId: null, anonymousId: "install-of-inst", properties: new JsonObject { ["instanceId"] = "inst-installed", ["email"] = "admin@example.com" }))), TestContext.Current.CancellationToken);

        var optOut = await installer.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["instanceId"] = "inst-installed" }), TestContext.Current.CancellationToken);

        var erased = (await Segment.ReadJsonAsync(optOut)).GetProperty("erased");
        Assert.Equal(1, erased.GetProperty("installations").GetInt32());
        Assert.Equal(1, erased.GetProperty("supportRequests").GetInt32());
        var rows = await host.Tables.AllRowsAsync();
        Assert.Empty(rows[TableNames.RawEvents]);
        Assert.Empty(rows[TableNames.Installations]);
        Assert.Empty(rows[TableNames.SupportRequests]);
        Assert.Empty(rows[TableNames.Activity]);
        Assert.Empty(rows[TableNames.Instances]);
    }

    [Fact]
    public async Task Declaring_sharing_disabled_after_an_explicit_opt_out_does_not_make_the_opt_out_liftable()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["instanceId"] = "inst-kept-out" }), TestContext.Current.CancellationToken);

        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-kept-out", "disabled"))), TestContext.Current.CancellationToken);
        var back = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-kept-out", "basic"))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(back)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal(SuppressionReasons.OptOut, Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetString("Reason"));
    }

    [Fact]
    public async Task Opt_outs_count_against_the_rate_limit()
    {
        await using var host = new LocalHostFactory(azurite, settings: new()
        {
            ["Telemetry:Ingestion:SourceEventsPerSecond"] = "1",
            ["Telemetry:Ingestion:SourceBurstEvents"] = "250",
        });
        var client = host.CreateSegmentClient();

        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            var response = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = $"user-{i}" }), TestContext.Current.CancellationToken);
            answers.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.NotNull(response.Headers.RetryAfter);
            }
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], answers);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.Suppressions)).Count);
    }

    [Fact]
    public async Task Sharing_level_basic_keeps_installation_heartbeat_and_health_events_and_drops_feature_usage()
    {
        await using var host = new LocalHostFactory(azurite);

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Instance Active", properties: InstanceProps("inst-b", "basic")),
            Segment.Track("Instance Health", properties: InstanceProps("inst-b", "basic")),
            Segment.Track("Report Exported", properties: InstanceProps("inst-b", "basic")),
            Segment.Track("Report Exported", properties: InstanceProps("inst-b")))), TestContext.Current.CancellationToken);

        var body = await Segment.ReadJsonAsync(response);
        Assert.Equal(2, body.GetProperty("accepted").GetInt32());
        Assert.Equal(2, body.GetProperty("dropped").GetProperty("sharingBasic").GetInt32());
        var stored = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(["Instance Active", "Instance Health"], stored.Select(r => r.GetString("Event")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Opt_out_erases_what_is_stored_about_a_user_and_drops_their_future_events()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Clicked", userId: "leaving-user"),
            Segment.Track("Clicked", userId: "staying-user"))), TestContext.Current.CancellationToken);

        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaving-user" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);
        Assert.Equal(1, (await Segment.ReadJsonAsync(optOut)).GetProperty("erased").GetProperty("rawEvents").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Activity));

        var later = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "leaving-user")), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(later)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task Opt_out_of_an_instance_erases_its_registry_row_and_events()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-x"))), TestContext.Current.CancellationToken);

        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["instanceId"] = "inst-x" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);
        var rows = await host.Tables.AllRowsAsync();
        Assert.Empty(rows[TableNames.Instances]);
        Assert.Empty(rows[TableNames.InstanceDeadlines]);
        Assert.Empty(rows[TableNames.InstanceStatusHistory]);
        Assert.Empty(rows[TableNames.RawEvents]);
        Assert.Empty(rows[TableNames.Activity]);
        Assert.Single(rows[TableNames.Suppressions]);
    }

    [Fact]
    public async Task Opt_out_matches_an_identifier_exactly_as_events_sent_it()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Clicked", userId: " spaced-user "),
            Segment.Track("Clicked", userId: "spaced-user"))), TestContext.Current.CancellationToken);

        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = " spaced-user " }), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(optOut)).GetProperty("erased").GetProperty("rawEvents").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        var trimmed = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "spaced-user")), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(trimmed)).GetProperty("accepted").GetInt32());
    }

    [Theory]
    [InlineData("{}", "userId, an anonymousId or an instanceId")]
    [InlineData("{\"userId\":4.2}", "userId must be a string or a whole number")]
    [InlineData("{\"userId\":true}", "userId must be a string or a whole number")]
    [InlineData("{\"instanceId\":\"\"}", "instanceId must be")]
    [InlineData("{\"instanceId\":\"\\u200B\\u2060\"}", "not only invisible ones")]
    public async Task Opt_out_without_a_usable_subject_is_refused(string body, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var response = await host.CreateSegmentClient().PostAsync("/v1/opt-out", Segment.Json(body), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, (await Segment.ReadJsonAsync(response)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await host.Tables.TotalRowsAsync());
    }

    [Fact]
    public async Task Opt_out_needs_a_valid_write_key()
    {
        await using var host = new LocalHostFactory(azurite);

        var response = await host.CreateClient().PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "u" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(0, await host.Tables.TotalRowsAsync());
    }

    [Fact]
    public async Task Preview_shows_the_scrubbed_pseudonymized_rows_and_stores_nothing()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Report Opened", userId: "jane@example.com", properties: new JsonObject
        {
            ["instanceId"] = "inst-p",
            ["email"] = "jane@example.com",
            ["reportType"] = "sales",
        });

        var response = await host.CreateSegmentClient().PostAsync("/v1/preview", Segment.Json(Segment.Batch(e)), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var body = JsonNode.Parse(text)!;
        Assert.False(body["stored"]!.GetValue<bool>());
        Assert.Equal(1, body["wouldAccept"]!.GetValue<int>());
        Assert.Contains("sales", text, StringComparison.Ordinal);
        Assert.DoesNotContain("jane@example.com", text, StringComparison.Ordinal);
        Assert.DoesNotContain("inst-p", text, StringComparison.Ordinal);
        var tables = body["wouldStore"]!.AsArray().Select(r => r!["table"]!.GetValue<string>()).ToHashSet();
        Assert.Contains(TableNames.RawEvents, tables);
        Assert.Contains(TableNames.Instances, tables);
        Assert.Equal(0, await host.Tables.TotalRowsAsync());
    }

    [Fact]
    public async Task Preview_lists_the_installation_record_an_installation_event_would_write_and_it_matches_what_is_then_stored_but_for_its_preview_only_key()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var failed = Segment.Track("Installation Errors", userId: null, anonymousId: "install-preview", properties: new JsonObject
        {
            ["os"] = "ubuntu",
            ["version"] = "1.4.0",
            ["error"] = "docker not found",
        });

        var preview = JsonNode.Parse(await (await client.PostAsync("/v1/preview", Segment.Json(Segment.Batch(failed)), TestContext.Current.CancellationToken))
            .Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        var planned = Assert.Single(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.Installations)!;
        Assert.Equal(0, await host.Tables.TotalRowsAsync());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch((JsonObject)failed.DeepClone())), TestContext.Current.CancellationToken)).StatusCode);
        var stored = Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));

        // The record's key is the installation's pseudonym: the preview shows the preview key's, storage the real one's.
        var key = PreviewFidelityTests.PseudonymizationKeyOf(host);
        Assert.Equal(new Pseudonymizer(key).Pseudonymize(IdentifierKind.Installation, "install-preview"), stored.RowKey);
        Assert.Equal(new Pseudonymizer(Pseudonymizer.PreviewKeyOf(key)).Pseudonymize(IdentifierKind.Installation, "install-preview"), planned["rowKey"]!.GetValue<string>());
        Assert.Equal("failed", planned["Status"]!.GetValue<string>());
        foreach (var field in new[] { "Status", "Os", "Version", "LastError" })
        {
            Assert.Equal(stored.GetString(field), planned[field]!.GetValue<string>());
        }
    }
}
