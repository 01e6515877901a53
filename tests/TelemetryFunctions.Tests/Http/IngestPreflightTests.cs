using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Http;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// The CORS preflight a browser sends before a cross-origin POST with <c>Authorization: Basic</c> or
/// <c>Content-Type: application/json</c>, through the local host's pipeline: every ingest route answers it 204 with
/// the allow headers, without a key, writing nothing and taking nothing from the rate limits; the admin, read API and
/// usage-report routes do not answer it, so browsers keep them same-origin.
/// </summary>
public sealed class IngestPreflightTests(AzuriteFixture azurite)
{
    private const string Origin = "https://app.example.com";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static HttpRequestMessage Preflight(string path, string? method = "POST", string? headers = "authorization,content-type")
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", Origin);
        if (method is not null)
        {
            request.Headers.Add("Access-Control-Request-Method", method);
        }

        if (headers is not null)
        {
            request.Headers.Add("Access-Control-Request-Headers", headers);
        }

        return request;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(", ", values) : null;

    private static async Task AssertPreflightAllowedAsync(HttpResponseMessage response, string path)
    {
        Assert.True(response.StatusCode == HttpStatusCode.NoContent, $"OPTIONS {path}: {(int)response.StatusCode}");
        Assert.Equal("*", Header(response, "Access-Control-Allow-Origin"));
        Assert.Equal("POST, OPTIONS", Header(response, "Access-Control-Allow-Methods"));
        Assert.Equal("Authorization, Content-Type, Content-Encoding, X-Retry-Count", Header(response, "Access-Control-Allow-Headers"));
        Assert.Equal("86400", Header(response, "Access-Control-Max-Age"));
        Assert.Equal(["POST", "OPTIONS"], response.Content.Headers.Allow);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Cancel));
    }

    [Fact]
    public async Task A_preflight_on_every_ingest_route_answers_204_allowing_any_origin_to_post_with_the_headers_ingestion_reads()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();

        Assert.Equal(16, TelemetryRoutes.Ingest.Count);
        foreach (var route in TelemetryRoutes.Ingest)
        {
            using var response = await client.SendAsync(Preflight("/" + route, headers: "authorization,content-type,content-encoding"), Cancel);
            await AssertPreflightAllowedAsync(response, "/" + route);
        }
    }

    /// <summary>
    /// Segment's browser library (analytics-next 1.84.3) sends the write key as HTTP Basic, and on every retry (after a 429,
    /// a 5xx or a network failure) an <c>X-Retry-Count</c> header: its browser sends the retry only if the preflight
    /// allows each header it asks for, as the browser checks here.
    /// </summary>
    [Theory]
    [InlineData("/v1/b", "authorization,x-retry-count")]
    [InlineData("/v1/t", "authorization,x-retry-count")]
    [InlineData("/v1/batch", "authorization,content-type,x-retry-count")]
    public async Task A_preflight_allows_the_retry_count_header_the_browser_library_sends_on_a_retry(string path, string requested)
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().SendAsync(Preflight(path, headers: requested), Cancel);

        var allowed = (Header(response, "Access-Control-Allow-Headers") ?? "").Split(',', StringSplitOptions.TrimEntries);
        Assert.All(requested.Split(','), header => Assert.Contains(header, allowed, StringComparer.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("PUT", "authorization")]
    [InlineData("POST", "x-custom-header")]
    [InlineData(null, null)]
    public async Task Any_options_request_on_an_ingest_route_gets_the_same_answer_and_the_browser_enforces_it(string? method, string? headers)
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().SendAsync(Preflight("/v1/batch", method, headers), Cancel);

        await AssertPreflightAllowedAsync(response, "/v1/batch");
    }

    [Fact]
    public async Task A_preflight_writes_nothing_and_takes_nothing_from_the_rate_limits()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Hostile.Now), new Dictionary<string, string?>
        {
            ["Telemetry:Ingestion:SourceEventsPerSecond"] = "1",
            ["Telemetry:Ingestion:SourceBurstEvents"] = "1",
        });
        var client = host.CreateClient();
        var before = await host.Tables.DumpAllAsync();

        foreach (var route in TelemetryRoutes.Ingest)
        {
            for (var i = 0; i < 3; i++)
            {
                using var response = await client.SendAsync(Preflight("/" + route), Cancel);
                Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
            }
        }

        Assert.Equal(before, await host.Tables.DumpAllAsync());

        // The source's one token is still there after 48 preflights: the first event is taken, the next is refused.
        using var sender = host.CreateSegmentClient();
        using var first = await sender.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("After Preflights", timestamp: Hostile.Now))), Cancel);
        using var second = await sender.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("Over The Limit", timestamp: Hostile.Now))), Cancel);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public void The_openapi_document_declares_the_preflight_of_every_ingest_route_and_of_no_other()
    {
        var paths = JsonNode.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.Core", "Reporting", "openapi.json")))!["paths"]!.AsObject();

        // A short path's item is a $ref to its long path's item, whose operations it shares.
        JsonObject Item(string path) =>
            paths[path]!["$ref"]?.GetValue<string>() is { } reference
                ? paths[reference["#/paths/".Length..].Replace("~1", "/", StringComparison.Ordinal)]!.AsObject()
                : paths[path]!.AsObject();

        var ingest = TelemetryRoutes.Ingest.Select(r => "/" + r).ToHashSet(StringComparer.Ordinal);
        foreach (var (path, _) in paths)
        {
            Assert.True(Item(path).ContainsKey("options") == ingest.Contains(path), $"{path}: options {(ingest.Contains(path) ? "missing" : "declared")}");
        }

        Assert.Superset(ingest, paths.Select(p => p.Key).ToHashSet(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("/api/stats/active-users", "GET")]
    [InlineData("/api/stats/installations", "GET")]
    [InlineData("/api/stats/instances", "GET")]
    [InlineData("/api/instances/i-1", "GET")]
    [InlineData("/api/usage", "GET")]
    [InlineData("/api/admin/rollup", "POST")]
    [InlineData("/api/admin/sweep", "POST")]
    [InlineData("/api/admin/retention", "POST")]
    [InlineData("/v1/usage-reports", "POST")]
    [InlineData("/v1/usage-reports/r-1", "GET")]
    [InlineData("/api/openapi.json", "GET")]
    [InlineData("/dashboard", "GET")]
    public async Task A_preflight_on_a_route_that_is_not_for_ingestion_gets_405_without_any_cors_header(string path, string method)
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().SendAsync(Preflight(path, method, "x-functions-key"), Cancel);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.DoesNotContain("OPTIONS", response.Content.Headers.Allow);
        Assert.DoesNotContain(response.Headers, h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }
}
