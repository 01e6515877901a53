using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Storage;

/// <summary>Faults Azurite cannot produce, injected into the storage pipeline under the real ingest path.</summary>
public sealed class StorageFaultTests(AzuriteFixture azurite)
{
    private static JsonObject Heartbeat(string messageId) =>
        Segment.Track("Instance Active", messageId: messageId, timestamp: DateTimeOffset.UtcNow, properties: new JsonObject { ["instanceId"] = "inst-f", ["version"] = "3.1.0" });

    [Fact]
    public async Task Storage_outage_on_writes_answers_503_with_retry_after_and_a_retry_later_stores_each_event_once()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        var batch = Segment.Batch(Heartbeat("f-1"), Segment.Track("Clicked", messageId: "f-2", timestamp: DateTimeOffset.UtcNow));
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.Outage(StorageFaults.IsWrite);
        var during = await client.PostAsync("/v1/batch", Segment.Json(batch), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        Assert.True(during.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal("storage_unavailable", (await Segment.ReadJsonAsync(during)).GetProperty("error").GetProperty("code").GetString());
        Assert.True(faults.Injected > 0);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));

        faults.Heal();
        var after = await client.PostAsync("/v1/batch", Segment.Json(batch), TestContext.Current.CancellationToken);

        Assert.True(after.StatusCode == HttpStatusCode.OK, await after.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(3, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
    }

    public static TheoryData<string, string, string, string> InvalidRequests() => new()
    {
        { "/v1/track", "{}", "no_valid_events", "event" },
        { "/v1/identify", """{"type":"identify"}""", "no_valid_events", "userId" },
        { "/v1/batch", """{"batch":[{"type":"track"},{"type":"identify"},{"type":"track","event":"Clicked"}]}""", "no_valid_events", "None of the events is valid" },
        { "/v1/batch", "{}", "invalid_batch", "batch" },
        { "/v1/batch", """{"batch":[""", "invalid_json", "line 1" },
        { "/v1/preview", """{"batch":[{"type":"track"},{"type":"nonsense"}]}""", "no_valid_events", "None of the events is valid" },
        { "/v1/preview", "{\"batch\":", "invalid_json", "line 1" },
        { "/v1/opt-out", "{}", "missing_subject", "userId" },
        { "/v1/opt-out", """{"userId":"undefined"}""", "invalid_field", "not an identifier" },
        { "/v1/opt-out", """{"anonymousId":"10.0.0.5"}""", "invalid_field", "IP address" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task A_request_without_a_valid_event_gets_its_400_while_every_storage_call_fails(string path, string body, string code, string reason)
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        faults.Outage(_ => true);

        using var refused = await client.PostAsync(path, Segment.Json(body), TestContext.Current.CancellationToken);
        using var valid = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked")), TestContext.Current.CancellationToken);

        var text = await refused.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{(int)refused.StatusCode}: {text}");
        var error = (await Segment.ReadJsonAsync(refused)).GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(reason, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, valid.StatusCode); // storage is down indeed
    }

    [Fact]
    public async Task Storage_refusing_access_answers_503_not_500_and_stores_nothing()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.Outage(StorageFaults.IsWrite, status: 403);
        var during = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("h-1")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        Assert.True(during.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
    }

    [Fact]
    public async Task An_unexpected_storage_failure_answers_500_and_logs_the_route_not_the_raw_identifier_in_the_path()
    {
        var faults = new StorageFaults();
        var logs = new CapturedLogs();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults, logs: logs);
        using var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");

        // Storage answering 400 to a read is no outage the endpoints answer: it reaches the host's last resort.
        faults.Outage(m => m.Request.Method == RequestMethod.Get, status: 400);
        using var response = await client.GetAsync("/api/instances/raw-instance-7797@example.com", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var failure = Assert.Single(logs.Entries, e => e.Level == LogLevel.Error && e.Category == "TelemetryFunctions.LocalHost");
        Assert.Equal("/api/instances/{instanceId}", failure.Value("Route"));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("raw-instance-7797", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_instance_row_that_keeps_conflicting_answers_503_and_the_retry_stores_the_event_once()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.Outage(m => StorageFaults.IsWrite(m) && m.Request.Uri.Path.Contains(host.TablePrefix + TableNames.Instances, StringComparison.Ordinal), status: 409);
        var during = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("c-1")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));

        faults.Heal();
        var after = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("c-1")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
    }

    [Fact]
    public async Task Outage_after_the_raw_events_are_written_answers_503_and_the_retry_completes_without_doubling()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.Outage(m => StorageFaults.IsWrite(m) && m.Request.Uri.Path.Contains(host.TablePrefix + TableNames.Instances, StringComparison.Ordinal));
        var during = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("g-1")), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));

        faults.Heal();
        var after = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("g-1")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
    }

    [Fact]
    public async Task Lost_response_to_an_instance_insert_makes_the_retry_conflict_and_the_event_is_stored_once_with_200()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.LoseResponses(m => m.Request.Method.Method == "POST" && m.Request.Uri.Path.EndsWith(host.TablePrefix + TableNames.Instances, StringComparison.Ordinal));
        var response = await client.PostAsync("/v1/track", Segment.Json(Heartbeat("h-1")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, faults.Injected);
        var instance = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal("3.1.0", instance.GetString("Version"));
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }

    [Fact]
    public async Task Lost_response_to_an_instance_update_makes_the_retry_fail_412_and_the_event_is_stored_once_with_200()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/track", Segment.Json(Heartbeat("u-1")), TestContext.Current.CancellationToken)).StatusCode);
        var before = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));

        // A new version makes the second heartbeat an If-Match replace of the existing row, whatever the touch interval.
        faults.LoseResponses(m => m.Request.Method == RequestMethod.Put
            && m.Request.Headers.TryGetValue("If-Match", out var ifMatch) && ifMatch != "*"
            && m.Request.Uri.Path.Contains(host.TablePrefix + TableNames.Instances + "(", StringComparison.Ordinal));
        var upgraded = Segment.Track("Instance Active", messageId: "u-2", timestamp: DateTimeOffset.UtcNow, properties: new JsonObject { ["instanceId"] = "inst-f", ["version"] = "3.2.0" });
        var response = await client.PostAsync("/v1/track", Segment.Json(upgraded), TestContext.Current.CancellationToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(1, faults.Injected);
        var instance = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal("3.2.0", instance.GetString("Version"));
        Assert.Equal(before.GetDateTimeOffset("FirstSeen"), instance.GetDateTimeOffset("FirstSeen"));
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }

    [Fact]
    public async Task Lost_response_to_a_raw_event_transaction_is_retried_and_stores_each_event_once()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Warm Up", messageId: "warm")), TestContext.Current.CancellationToken);

        faults.LoseResponses(m => m.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal));
        var batch = Segment.Batch(Enumerable.Range(0, 20).Select(i => Segment.Track("Clicked", messageId: $"b-{i}", timestamp: DateTimeOffset.UtcNow)).ToArray());
        var response = await client.PostAsync("/v1/batch", Segment.Json(batch), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, faults.Injected);
        Assert.Equal(21, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }
}
