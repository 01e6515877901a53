using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Ingestion;

/// <summary>
/// An instance's version follows the time its events happened, not the order they arrive in, as ingested through
/// /v1/batch with a fake clock and counted by <c>GET /api/stats/instances</c>.
/// </summary>
public sealed class InstanceAttributeTimeTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Start = new(2026, 11, 23, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task An_event_queued_offline_and_received_after_a_newer_heartbeat_leaves_the_version_the_dashboard_counts()
    {
        var time = new FakeTimeProvider(Start);
        await using var host = new LocalHostFactory(azurite, time);

        await SendAsync(host, time, Start, timestamp: Start, version: "2.0.0");
        await SendAsync(host, time, Start.AddHours(1), timestamp: Start.AddDays(-2), version: "1.0.0");

        Assert.Equal(["2.0.0"], await VersionsAsync(host));
    }

    [Fact]
    public async Task An_event_from_a_clock_ahead_does_not_keep_later_events_from_updating_the_version()
    {
        var time = new FakeTimeProvider(Start);
        await using var host = new LocalHostFactory(azurite, time);

        // Twenty hours ahead, within the accepted skew, and without sentAt to correct it by.
        await SendAsync(host, time, Start, timestamp: Start.AddHours(20), version: "1.0.0");
        await SendAsync(host, time, Start.AddMinutes(10), timestamp: Start.AddMinutes(10), version: "2.0.0");

        Assert.Equal(["2.0.0"], await VersionsAsync(host));
    }

    private static async Task SendAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset receivedAt, DateTimeOffset timestamp, string version)
    {
        time.SetUtcNow(receivedAt);
        var e = Segment.Track("Instance Active", userId: "server", timestamp: timestamp, properties: new JsonObject { ["instanceId"] = "instance-late", ["version"] = version });
        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(e)), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
    }

    private static async Task<IEnumerable<string?>> VersionsAsync(LocalHostFactory host)
    {
        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        var response = await client.GetAsync("/api/stats/instances", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await Segment.ReadJsonAsync(response);
        return json.GetProperty("byVersion").EnumerateArray().Select(g => g.GetProperty("value").GetString()).ToList();
    }
}
