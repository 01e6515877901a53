using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Requests shaped as Segment's browser library (analytics-next) sends them: to <c>/v1/{t,i,p,s,g,a}</c> and
/// <c>/v1/b</c>, <c>Content-Type: text/plain</c>, the write key in the body, no Authorization header, from a page on
/// another origin that must be allowed to read the answer.
/// </summary>
public sealed class BrowserLibraryTests(AzuriteFixture azurite)
{
    private static StringContent PlainText(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "text/plain");

    private static JsonObject WithWriteKey(JsonObject body)
    {
        body["writeKey"] = LocalHostFactory.WriteKey;
        return body;
    }

    [Theory]
    [InlineData("/v1/t", "track")]
    [InlineData("/v1/p", "page")]
    [InlineData("/v1/i", "identify")]
    [InlineData("/v1/s", "screen")]
    [InlineData("/v1/g", "group")]
    [InlineData("/v1/a", "alias")]
    public async Task A_single_call_on_its_short_path_as_text_plain_with_the_key_in_the_body_is_stored_and_readable_cross_origin(string path, string type)
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();
        var call = new JsonObject
        {
            ["type"] = type,
            ["anonymousId"] = "browser-anon-1",
            ["userId"] = "browser-user-1",
            ["previousId"] = type == "alias" ? "browser-anon-1" : null,
            ["groupId"] = type == "group" ? "team-1" : null,
            ["event"] = type == "track" ? "Button Clicked" : null,
            ["name"] = type is "page" or "screen" ? "Home" : null,
            ["messageId"] = "ajs-next-" + Guid.NewGuid().ToString("N"),
            ["context"] = new JsonObject { ["library"] = new JsonObject { ["name"] = "analytics.js", ["version"] = "next-1.70.0" } },
        };
        foreach (var absent in call.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            call.Remove(absent);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = PlainText(WithWriteKey(call)) };
        request.Headers.Add("Origin", "https://app.example.com");
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
        var stored = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal(type, stored.GetString("Type"));
    }

    [Theory]
    [InlineData("/v1/preview", "text/plain")]
    [InlineData("/v1/preview", "application/vnd.segment+json")]
    [InlineData("/v1/opt-out", "text/plain")]
    [InlineData("/v1/opt-out", "application/vnd.segment+json")]
    public async Task Preview_and_opt_out_take_the_content_types_of_the_event_routes(string path, string contentType)
    {
        await using var host = new LocalHostFactory(azurite);
        var body = path == "/v1/preview"
            ? Segment.Batch(Segment.Track("Button Clicked", "browser-user-3"))
            : new JsonObject { ["userId"] = "browser-user-3" };

        using var response = await host.CreateClient().PostAsync(path, new StringContent(WithWriteKey(body).ToJsonString(), Encoding.UTF8, contentType), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.True((await Segment.ReadJsonAsync(response)).GetProperty("success").GetBoolean());
    }

    [Fact]
    public async Task A_call_on_a_short_path_that_does_not_match_its_type_is_refused_as_on_the_long_path()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();

        using var response = await client.PostAsync("/v1/t", PlainText(WithWriteKey(new JsonObject { ["type"] = "identify", ["userId"] = "u" })), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task A_batch_on_v1_b_as_text_plain_is_stored()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();
        var batch = WithWriteKey(Segment.Batch(Segment.Track("Page Scrolled", "browser-user-2"), Segment.Track("Link Clicked", "browser-user-2")));
        batch["sentAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

        using var response = await client.PostAsync("/v1/b", PlainText(batch), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }

    [Fact]
    public async Task A_refused_browser_batch_tells_the_library_how_long_to_wait_in_the_header_it_reads()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time, new Dictionary<string, string?>
        {
            ["Telemetry:Ingestion:SourceEventsPerSecond"] = "1",
            ["Telemetry:Ingestion:SourceBurstEvents"] = "2",
        });
        var client = host.CreateClient();
        JsonObject Batch(int n) => WithWriteKey(Segment.Batch([.. Enumerable.Range(0, n).Select(i => Segment.Track("e" + i, timestamp: Hostile.Now))]));

        using var first = await client.PostAsync("/v1/b", PlainText(Batch(2)), TestContext.Current.CancellationToken);
        using var flooded = await client.PostAsync("/v1/b", PlainText(Batch(2)), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, flooded.StatusCode);
        var wait = Assert.Single(flooded.Headers.GetValues("X-RateLimit-Reset"));
        Assert.Equal(flooded.Headers.RetryAfter!.Delta!.Value.TotalSeconds.ToString(CultureInfo.InvariantCulture), wait);
        Assert.Contains("X-RateLimit-Reset", Assert.Single(flooded.Headers.GetValues("Access-Control-Expose-Headers")), StringComparison.Ordinal);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }
}
