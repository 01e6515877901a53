using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Two in-process hosts sharing one table prefix and one fake clock, as scaled-out hosts share a storage account: a
/// sharing level one host records applies on the other within <c>InstanceRefreshInterval</c> (30 seconds by default).
/// </summary>
public sealed class SharingLevelAcrossHostsTests(AzuriteFixture azurite)
{
    private static readonly TimeSpan PastRefreshInterval = TimeSpan.FromSeconds(31);

    [Fact]
    public async Task A_downgrade_to_basic_on_one_host_drops_feature_events_on_another_once_the_refresh_interval_has_passed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var a = new LocalHostFactory(azurite, time);
        await using var b = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = a.TablePrefix });
        var hostA = a.CreateSegmentClient();

        await SendAsync(hostA, Event("Instance Active", "advanced"));
        Assert.Equal(1, (await SendAsync(hostA, Event("Report Exported", null)))["accepted"]!.GetValue<int>());
        await SendAsync(b.CreateSegmentClient(), Event("Instance Active", "basic"));
        time.Advance(PastRefreshInterval);

        for (var i = 0; i < 3; i++)
        {
            var answer = await SendAsync(hostA, Event("Report Exported", null));
            Assert.Equal(0, answer["accepted"]!.GetValue<int>());
            Assert.Equal(1, answer["dropped"]!["sharingBasic"]!.GetValue<int>());
        }

        var features = (await a.Tables.RowsAsync(TableNames.RawEvents)).Where(r => r.GetString("Event") == "Report Exported").ToList();
        Assert.Equal("Advanced", Assert.Single(features).GetString("SharingLevel"));
        Assert.Equal("basic", Assert.Single(await a.Tables.RowsAsync(TableNames.Instances)).GetString("SharingLevel"));
    }

    [Fact]
    public async Task A_user_erased_by_another_host_and_back_is_marked_active_again_by_a_host_that_marked_them_before()
    {
        var now = new DateTimeOffset(2026, 11, 20, 10, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(now);
        await using var a = new LocalHostFactory(azurite, time);
        await using var b = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = a.TablePrefix });
        var ct = TestContext.Current.CancellationToken;
        async Task<bool> MarkedAsync() => (await a.Tables.RowsAsync(TableNames.Activity)).Any(r => r.RowKey.StartsWith(ActivityStore.UserPrefix, StringComparison.Ordinal));

        // Host A marks the user active; host B erases them (sharing disabled), then they enable sharing again.
        Assert.Equal(HttpStatusCode.OK, (await a.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "u-back", timestamp: now)), ct)).StatusCode);
        Assert.True(await MarkedAsync());
        time.Advance(TimeSpan.FromMinutes(1));
        var disable = Segment.Track("Clicked", userId: "u-back", timestamp: time.GetUtcNow());
        disable["context"] = new JsonObject { ["sharingLevel"] = "disabled" };
        Assert.Equal(HttpStatusCode.OK, (await b.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(disable), ct)).StatusCode);
        Assert.False(await MarkedAsync());
        time.Advance(TimeSpan.FromMinutes(1));
        var enable = Segment.Track("Instance Active", userId: "u-back", timestamp: time.GetUtcNow());
        enable["context"] = new JsonObject { ["sharingLevel"] = "advanced" };
        Assert.Equal(1, (await Segment.ReadJsonAsync(await b.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(enable), ct))).GetProperty("accepted").GetInt32());

        // The same day, host A accepts their next usage event: it marks them active again.
        time.Advance(TimeSpan.FromMinutes(2));
        var used = await Segment.ReadJsonAsync(await a.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "u-back", timestamp: time.GetUtcNow())), ct));

        Assert.Equal(1, used.GetProperty("accepted").GetInt32());
        Assert.True(await MarkedAsync());
    }

    [Fact]
    public async Task A_level_declared_again_on_a_host_whose_kept_row_is_older_than_the_refresh_interval_is_recorded()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var a = new LocalHostFactory(azurite, time);
        await using var b = new LocalHostFactory(azurite, time, new() { ["Telemetry:Storage:TablePrefix"] = a.TablePrefix });

        await SendAsync(a.CreateSegmentClient(), Event("Instance Active", "advanced"));
        await SendAsync(b.CreateSegmentClient(), Event("Instance Active", "basic"));
        time.Advance(PastRefreshInterval);
        // Host A still keeps the row at advanced, and last seen moved by less than the touch interval (1 minute).
        await SendAsync(a.CreateSegmentClient(), Event("Instance Active", "advanced"));

        Assert.Equal("advanced", Assert.Single(await a.Tables.RowsAsync(TableNames.Instances)).GetString("SharingLevel"));
    }

    [Fact]
    public async Task A_host_reads_an_instance_row_again_only_once_the_refresh_interval_has_passed_and_writes_it_only_when_it_changed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var requests = new InstanceRequestCounter();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: requests);
        var client = host.CreateSegmentClient();
        await SendAsync(client, Event("Instance Active", "advanced"));
        requests.Reset();

        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal(1, (await SendAsync(client, Event("Report Exported", null)))["accepted"]!.GetValue<int>());
        }

        Assert.Equal((0, 0), (requests.Reads, requests.Writes));

        time.Advance(PastRefreshInterval - TimeSpan.FromSeconds(25));
        for (var i = 0; i < 3; i++)
        {
            await SendAsync(client, Event("Report Exported", null));
        }

        // One read, the row being older than the refresh interval; no write, last seen having moved by less than a minute.
        Assert.Equal((1, 0), (requests.Reads, requests.Writes));
        Assert.Equal(InstanceRegistry.Active, Assert.Single(await host.Tables.RowsAsync(TableNames.Instances)).GetString("Status"));
    }

    private static JsonObject Event(string name, string? sharingLevel)
    {
        var properties = new JsonObject { ["instanceId"] = "instance-across-hosts" };
        if (sharingLevel is not null)
        {
            properties["sharingLevel"] = sharingLevel;
        }

        return Segment.Track(name, "user-1", properties: properties);
    }

    private static async Task<JsonObject> SendAsync(HttpClient client, JsonObject e)
    {
        using var response = await client.PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!.AsObject();
    }

    /// <summary>Counts reads and writes of Instances rows.</summary>
    private sealed class InstanceRequestCounter : HttpPipelineSynchronousPolicy
    {
        private int _reads;
        private int _writes;

        public int Reads => Volatile.Read(ref _reads);

        public int Writes => Volatile.Read(ref _writes);

        public void Reset()
        {
            Interlocked.Exchange(ref _reads, 0);
            Interlocked.Exchange(ref _writes, 0);
        }

        public override void OnSendingRequest(HttpMessage message)
        {
            if (!message.Request.Uri.Path.Contains("Instances", StringComparison.Ordinal))
            {
                return;
            }

            if (message.Request.Method == RequestMethod.Get)
            {
                Interlocked.Increment(ref _reads);
            }
            else
            {
                Interlocked.Increment(ref _writes);
            }
        }
    }
}
