using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile senders (catalogue #31, #32): missing, wrong or revoked write keys get 401 and nothing is stored; a
/// source over its rate gets 429 with Retry-After and nothing of the refused request is stored.
/// </summary>
public sealed class HostileSenderTests(AzuriteFixture azurite)
{
    private const string RevokedKey = "revoked-write-key";

    private static Dictionary<string, string?> WithRevokedKey() => new()
    {
        ["Telemetry:WriteKeys:3:Key"] = RevokedKey,
        ["Telemetry:WriteKeys:3:Source"] = "legacy",
        ["Telemetry:WriteKeys:3:Revoked"] = "true",
    };

    [Theory]
    [InlineData(null, null, "A write key is required")]
    [InlineData("Basic", "wrong-write-key:", "The write key is not valid")]
    [InlineData("Basic", "DEV-WRITE-KEY:", "The write key is not valid")]
    [InlineData("Basic", ":dev-write-key", "The write key is not valid")]
    [InlineData("Basic", ":", "The write key is not valid")]
    [InlineData("Basic", RevokedKey + ":", "The write key has been revoked")]
    [InlineData("Basic", "!!not base64!!", "not valid base64")]
    [InlineData("Bearer", "dev-write-key", "Use HTTP Basic authentication")]
    [InlineData("Digest", "username=\"dev-write-key\"", "Use HTTP Basic authentication")]
    public async Task A_missing_wrong_or_revoked_key_in_the_header_gets_401_and_nothing_is_stored(string? scheme, string? credentials, string reason)
    {
        await using var host = new LocalHostFactory(azurite, settings: WithRevokedKey());
        var client = host.CreateClient();
        if (scheme is not null)
        {
            var parameter = scheme == "Basic" && !credentials!.StartsWith('!') ? Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)) : credentials;
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(scheme, parameter);
        }

        var answer = await Hostile.PostJsonAsync(client, "/v1/batch", Segment.Batch(Segment.Track("e")));

        Hostile.AssertRefused(answer, HttpStatusCode.Unauthorized, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("\"wrong-write-key\"", "The write key is not valid")]
    [InlineData("\"\"", "The write key is not valid")]
    [InlineData("\"" + RevokedKey + "\"", "The write key has been revoked")]
    [InlineData("null", "A write key is required")]
    [InlineData("42", "A write key is required")]
    [InlineData("[\"dev-write-key\"]", "A write key is required")]
    public async Task A_missing_wrong_or_revoked_key_in_the_body_gets_401_and_nothing_is_stored(string writeKey, string reason)
    {
        await using var host = new LocalHostFactory(azurite, settings: WithRevokedKey());
        var json = $$"""{"writeKey":{{writeKey}},"batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.Unauthorized, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Two_authorization_headers_get_401_asking_for_one_and_nothing_is_stored()
    {
        await using var host = new LocalHostFactory(azurite);
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(LocalHostFactory.WriteKey + ":"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/batch") { Content = Segment.Json(Segment.Batch(Segment.Track("e"))) };
        Assert.True(request.Headers.TryAddWithoutValidation("Authorization", [basic, basic]));

        var response = await host.CreateClient().SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Send one Authorization header", (await Segment.ReadJsonAsync(response)).GetProperty("message").GetString(), StringComparison.Ordinal);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_wrong_header_key_is_refused_even_when_the_body_holds_a_valid_one()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = $$"""{"writeKey":"{{LocalHostFactory.WriteKey}}","batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient("wrong-write-key"), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.Unauthorized, "The write key is not valid");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_valid_key_in_the_body_is_accepted_and_never_stored()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = $$"""{"writeKey":"{{LocalHostFactory.WriteKey}}","batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateClient(), "/v1/batch", json);

        Hostile.AssertAccepted(answer, 1);
        Assert.DoesNotContain(LocalHostFactory.WriteKey, await host.Tables.DumpAllAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_revoked_key_is_refused_on_every_ingest_route()
    {
        await using var host = new LocalHostFactory(azurite, settings: WithRevokedKey());
        var client = host.CreateSegmentClient(RevokedKey);

        foreach (var (route, body) in new (string, JsonNode)[]
        {
            ("/v1/track", Segment.Track("e")),
            ("/v1/identify", new JsonObject { ["userId"] = "u" }),
            ("/v1/batch", Segment.Batch(Segment.Track("e"))),
            ("/v1/preview", Segment.Batch(Segment.Track("e"))),
            ("/v1/opt-out", new JsonObject { ["userId"] = "u" }),
        })
        {
            var answer = await Hostile.PostJsonAsync(client, route, body);
            Assert.True(answer.Status == HttpStatusCode.Unauthorized, $"{route}: {answer}");
        }

        await Hostile.AssertNothingStoredAsync(host);
    }

    private static Dictionary<string, string?> SlowSource() => new()
    {
        ["Telemetry:Ingestion:SourceEventsPerSecond"] = "1",
        ["Telemetry:Ingestion:SourceBurstEvents"] = "5",
    };

    [Fact]
    public async Task A_flooding_source_gets_429_with_Retry_After_and_the_refused_events_are_not_stored()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time, SlowSource());
        var client = host.CreateSegmentClient();

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/batch", Batch(5)), 5);
        var flooded = await Hostile.PostJsonAsync(client, "/v1/batch", Batch(3));

        Hostile.AssertRefused(flooded, HttpStatusCode.TooManyRequests, "This source (write key) is sending events faster than its limit");
        Assert.Equal("3", flooded.RetryAfter);
        Assert.Equal(5, (await Hostile.RawEventsAsync(host)).Count);

        time.Advance(TimeSpan.FromSeconds(int.Parse(flooded.RetryAfter!, CultureInfo.InvariantCulture)));
        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/batch", Batch(3)), 3);
        Assert.Equal(8, (await Hostile.RawEventsAsync(host)).Count);
    }

    [Fact]
    public async Task Single_event_calls_count_against_the_same_limit()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time, SlowSource());
        var client = host.CreateSegmentClient();

        for (var i = 0; i < 5; i++)
        {
            Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e")), 1);
        }

        var flooded = await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e"));

        Hostile.AssertRefused(flooded, HttpStatusCode.TooManyRequests, "Retry after");
        Assert.Equal("1", flooded.RetryAfter);
        Assert.Equal(5, (await Hostile.RawEventsAsync(host)).Count);
    }

    [Fact]
    public async Task One_flooding_source_does_not_limit_another()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time, SlowSource());

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", Batch(5)), 5);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", Batch(1))).Status);

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(host.CreateSegmentClient(LocalHostFactory.InstallerKey), "/v1/batch", Batch(5)), 5);
    }

    [Fact]
    public async Task A_batch_larger_than_the_burst_is_accepted_when_the_bucket_is_full_and_the_debt_is_waited_out()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time, SlowSource());
        var client = host.CreateSegmentClient();

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/batch", Batch(8)), 8);
        var next = await Hostile.PostJsonAsync(client, "/v1/batch", Batch(1));

        Hostile.AssertRefused(next, HttpStatusCode.TooManyRequests, "faster than its limit");
        Assert.Equal("4", next.RetryAfter);
        time.Advance(TimeSpan.FromSeconds(4));
        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/batch", Batch(1)), 1);
        Assert.Equal(9, (await Hostile.RawEventsAsync(host)).Count);
    }

    [Fact]
    public async Task A_slow_drip_body_is_cut_off_with_408_and_nothing_is_stored()
    {
        // Two bytes a second, far under the host's minimum body data rate: at that pace the body would take half a day.
        await using var host = new LocalHostFactory(azurite);

        var (answered, elapsed, answer) = await DripBodyAsync(host, bytesPerWrite: 1, every: TimeSpan.FromMilliseconds(500));

        Assert.True(answered, "The server kept waiting for a body dripping at two bytes a second.");
        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        Assert.Contains("too slow", answer, StringComparison.Ordinal);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(30));
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_body_dripping_above_the_minimum_rate_is_cut_off_at_the_read_deadline_with_408_and_no_error_logged()
    {
        // 500 bytes a second keeps above Kestrel's minimum data rate (240), so only the overall read deadline stops it.
        var logs = new CapturedLogs();
        await using var host = new LocalHostFactory(azurite, settings: new() { ["Telemetry:Ingestion:MaxBodyReadTime"] = "00:00:03" }, logs: logs);

        var (answered, elapsed, answer) = await DripBodyAsync(host, bytesPerWrite: 50, every: TimeSpan.FromMilliseconds(100));

        Assert.True(answered, "The server kept reading a body dripping at 500 bytes a second past its read deadline.");
        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        Assert.Contains("did not arrive within 3 seconds", answer, StringComparison.Ordinal);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(20));
        await Hostile.AssertNothingStoredAsync(host);

        // A slow sender is the client's fault, not the server's: after the answer the server finishes the request
        // (and closes the connection) without an error in its log, so slow senders cannot flood the error log.
        await Task.Delay(TimeSpan.FromSeconds(2), Hostile.Cancel);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
    }

    private static Task<(bool Answered, TimeSpan Elapsed, string Answer)> DripBodyAsync(LocalHostFactory host, int bytesPerWrite, TimeSpan every) =>
        SlowBody.DripAsync(host, "/v1/batch", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(LocalHostFactory.WriteKey + ":")), "{\"batch\":[", bytesPerWrite, every);

    private static JsonObject Batch(int events) => Segment.Batch([.. Enumerable.Range(0, events).Select(_ => Segment.Track("e"))]);
}
