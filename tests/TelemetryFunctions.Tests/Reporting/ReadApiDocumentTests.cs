using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Http;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Reporting.Dashboard;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>CSV details, the OpenAPI document, the dashboard's files, a year of figures, and a storage outage.</summary>
public sealed partial class ReadApiDocumentTests(AzuriteFixture azurite)
{
    private static readonly DateOnly Monday = new(2026, 11, 2);

    private static DateTimeOffset At(DateOnly day, int hour) => new(day.ToDateTime(new TimeOnly(hour, 0)), TimeSpan.Zero);

    private static HttpClient Admin(LocalHostFactory host)
    {
        var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", ReadApiTests.AdminKey);
        return client;
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [InlineData("two\nlines", "\"two\nlines\"")]
    [InlineData("=1+1", "'=1+1")]
    [InlineData("+1", "'+1")]
    [InlineData("-2", "'-2")]
    [InlineData("@SUM(A1)", "'@SUM(A1)")]
    [InlineData("\tx", "'\tx")]
    [InlineData("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"")]
    [InlineData("", "")]
    public void Csv_text_cells_are_quoted_per_rfc_4180_and_formula_like_text_is_neutralized(string text, string field) =>
        Assert.Equal(field, CsvResult.Field(text));

    [Fact]
    public void Csv_numbers_and_days_are_written_invariantly_and_never_prefixed()
    {
        Assert.Equal("-3", CsvResult.Field(-3));
        Assert.Equal("0.3333", CsvResult.Field(0.3333));
        Assert.Equal("1", CsvResult.Field(1.0));
        Assert.Equal("", CsvResult.Field((double?)null));
        Assert.Equal("2026-11-02", CsvResult.Field(Monday));
    }

    [Fact]
    public async Task Versions_and_os_names_sent_by_clients_reach_csv_quoted_and_neutralized()
    {
        var time = new FakeTimeProvider(At(Monday, 0));
        await using var host = new LocalHostFactory(azurite, time);
        JsonObject Heartbeat(string instance, string version, string os) =>
            Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = instance, ["version"] = version, ["os"] = os });
        await ReadApiTests.SendAsync(host, time, At(Monday, 9), Heartbeat("i-1", "=cmd|' /C calc'!A0", "linux, \"lts\""), Heartbeat("i-2", "@1.0", "linux, \"lts\""));
        time.SetUtcNow(At(Monday.AddDays(1), 1));
        await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(Monday, TestContext.Current.CancellationToken);

        var byVersion = await Admin(host).GetStringAsync("/api/stats/active-users?from=2026-11-02&to=2026-11-02&format=csv&by=version", TestContext.Current.CancellationToken);
        Assert.Contains("\r\n2026-11-02,'=cmd|' /C calc'!A0,1\r\n", byVersion, StringComparison.Ordinal);
        Assert.Contains("\r\n2026-11-02,'@1.0,1\r\n", byVersion, StringComparison.Ordinal);
        var byOs = await Admin(host).GetStringAsync("/api/stats/active-users?from=2026-11-02&to=2026-11-02&format=csv&by=os", TestContext.Current.CancellationToken);
        Assert.Equal("day,os,activeInstances\r\n2026-11-02,\"linux, \"\"lts\"\"\",2\r\n", byOs);
    }

    [Fact]
    public async Task A_year_of_daily_figures_is_answered_in_well_under_a_second()
    {
        var time = new FakeTimeProvider(At(Monday, 12));
        await using var host = new LocalHostFactory(azurite, time);
        var stats = host.Tables.Table(TableNames.DailyStats);
        await stats.CreateIfNotExistsAsync(TestContext.Current.CancellationToken);
        var versions = Enumerable.Range(0, 40).ToDictionary(i => $"1.{i}.0", i => 100 + i);
        var breakdowns = JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, int>> { ["instancesByVersion"] = versions, ["instancesByOs"] = new() { ["linux"] = 900, ["windows"] = 400 } });
        var first = Monday.AddDays(-366);
        for (var week = 0; week < 366; week += 100)
        {
            var batch = Enumerable.Range(week, Math.Min(100, 366 - week)).Select(i => new TableTransactionAction(TableTransactionActionType.UpsertReplace, new TableEntity(DailyRollup.StatsPartition, TableKeys.Day(first.AddDays(i)))
            {
                ["Dau"] = 1000 + i,
                ["Wau"] = 3000 + i,
                ["Mau"] = 9000 + i,
                ["ActiveInstances"] = 1300,
                ["Breakdowns"] = breakdowns,
            }));
            await stats.SubmitTransactionAsync(batch, TestContext.Current.CancellationToken);
        }

        var route = $"/api/stats/active-users?from={first:yyyy-MM-dd}&to={Monday.AddDays(-1):yyyy-MM-dd}";
        await Admin(host).GetStringAsync(route, TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        var json = JsonDocument.Parse(await Admin(host).GetStringAsync(route, TestContext.Current.CancellationToken)).RootElement;
        watch.Stop();

        Assert.Equal(366, json.GetProperty("days").GetArrayLength());
        Assert.Equal(40, json.GetProperty("days")[365].GetProperty("activeInstancesByVersion").EnumerateObject().Count());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"A year of daily figures took {watch.ElapsedMilliseconds} ms.");
    }

    [Fact]
    public async Task A_storage_outage_is_answered_with_503_and_retry_after()
    {
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, storagePolicy: faults);
        faults.Outage(_ => true);

        foreach (var route in new[] { "/api/stats/active-users", "/api/stats/installations", "/api/stats/instances", "/api/instances/i-1" })
        {
            var response = await Admin(host).GetAsync(route, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.NotNull(response.Headers.RetryAfter);
        }
    }

    [Fact]
    public async Task The_openapi_document_describes_every_route_with_its_methods()
    {
        await using var host = new LocalHostFactory(azurite);
        var response = await host.CreateClient().GetAsync("/api/openapi.json", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;

        Assert.StartsWith("3.", document["openapi"]!.GetValue<string>(), StringComparison.Ordinal);
        var paths = document["paths"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.AsObject().Select(m => m.Key).ToHashSet());
        var routes = typeof(TelemetryRoutes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (f.Name, Path: "/" + (string)f.GetRawConstantValue()!))
            .ToList();
        Assert.NotEmpty(routes);
        var missing = routes.Where(r => !paths.ContainsKey(r.Path)).Select(r => $"{r.Name} ({r.Path})").ToList();
        Assert.True(missing.Count == 0, "Routes missing from src/TelemetryFunctions.Core/Reporting/openapi.json (path parameters by name, as routed): " + string.Join(", ", missing));

        Assert.Contains("post", paths["/v1/batch"]);
        Assert.Contains("get", paths["/api/stats/active-users"]);
        Assert.Contains("get", paths["/api/instances/{instanceId}"]);
        Assert.Contains("get", paths["/v1/usage-reports/{id}"]);
        Assert.Contains("get", paths["/api/usage"]);

        // Every route is a path item with operations of its own (a path item $ref, which OpenAPI tools drop or resolve
        // into duplicate operationIds, is none), and every operation has an operationId no other has.
        foreach (var (_, path) in routes)
        {
            var item = document["paths"]![path]!.AsObject();
            Assert.False(item.ContainsKey("$ref"), $"{path} is a path item $ref, not operations of its own");
            Assert.Contains(item, m => m.Value is JsonObject operation && operation.ContainsKey("responses"));
        }

        var operationIds = Operations(document).Select(o => o.Operation["operationId"]?.GetValue<string>()).ToList();
        Assert.DoesNotContain(null, operationIds);
        var repeated = operationIds.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(repeated.Count == 0, "operationIds used more than once: " + string.Join(", ", repeated));

        // Every $ref is a JSON pointer into this document's components that resolves.
        var references = RefPattern().Matches(document.ToJsonString()).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Contains("#/components/responses/IngestAccepted", references);
        Assert.All(references, r => Assert.True(r.StartsWith("#/components/", StringComparison.Ordinal) && Resolve(document, r) is JsonObject, $"{r} does not resolve to an object in the document's components"));
    }

    private static JsonNode SourceDocument() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.Core", "Reporting", "openapi.json")))!;

    [Fact]
    public void The_openapi_document_says_a_function_key_route_gets_an_empty_401_from_the_functions_host_in_azure()
    {
        var keyed = Operations(SourceDocument())
            .Where(o => o.Operation["security"]?.AsArray().Any(s => s!.AsObject().ContainsKey("functionKeyHeader")) == true)
            .ToList();

        Assert.Equal(8, keyed.Count); // the read API, /api/usage and the three admin routes
        Assert.All(keyed, o => Assert.Contains("empty body", o.Operation["responses"]!["401"]!["description"]!.GetValue<string>(), StringComparison.Ordinal));
    }

    [Fact]
    public void The_openapi_document_declares_the_headers_and_answers_the_routes_send()
    {
        var document = SourceDocument();
        var operations = Operations(document).ToList();
        JsonObject Responses(string path, string method) => operations.Single(o => o.Path == path && o.Method == method).Operation["responses"]!.AsObject();
        JsonObject? Headers(JsonNode? response) => response?["headers"] as JsonObject;

        // The ingest routes a browser calls (preview and opt-out too): every answer readable cross-origin, and the
        // 429 with the header Segment's browser library reads.
        foreach (var path in new[] { "/v1/preview", "/v1/opt-out" })
        {
            Assert.All(Responses(path, "post"), r => Assert.True(Headers(r.Value)?.ContainsKey("Access-Control-Allow-Origin") == true, $"{path} {r.Key} lacks Access-Control-Allow-Origin"));
            Assert.True(Headers(Responses(path, "post")["429"])!.ContainsKey("X-RateLimit-Reset"), $"{path} 429 lacks X-RateLimit-Reset");
        }

        Assert.True(document["components"]!["schemas"]!["OptOutRequest"]!["properties"]!.AsObject().ContainsKey("writeKey"));

        var upload = operations.Single(o => o.Path == "/v1/usage-reports" && o.Method == "post").Operation;
        Assert.Superset(new HashSet<string> { "application/json", "application/gzip", "application/x-gzip" }, upload["requestBody"]!["content"]!.AsObject().Select(c => c.Key).ToHashSet());
        Assert.Contains("408", upload["responses"]!.AsObject().Select(r => r.Key));

        // Every route that is not ingest can be refused by the host's concurrency limits.
        var ingest = TelemetryRoutes.Ingest.Select(r => "/" + r).ToHashSet();
        Assert.All(operations.Where(o => !ingest.Contains(o.Path)), o => Assert.True(o.Operation["responses"]!.AsObject().ContainsKey("429"), $"{o.Method} {o.Path} lacks 429"));

        // The read answers no cache may keep, the CSV ones as downloads; the static documents revalidated by ETag.
        foreach (var path in new[] { "/api/stats/active-users", "/api/stats/installations", "/api/stats/instances", "/api/instances/{instanceId}", "/api/usage", "/v1/usage-reports/{id}" })
        {
            var ok = Responses(path, "get")["200"]!;
            Assert.True(Headers(ok)?.ContainsKey("Cache-Control") == true, $"{path} 200 lacks Cache-Control");
            if (ok["content"]!.AsObject().ContainsKey("text/csv"))
            {
                Assert.True(Headers(ok)!.ContainsKey("Content-Disposition"), $"{path} 200 lacks Content-Disposition");
            }
        }

        foreach (var path in new[] { "/api/openapi.json", "/dashboard", "/dashboard/{file}" })
        {
            Assert.True(Headers(Responses(path, "get")["200"])?.ContainsKey("ETag") == true, $"{path} 200 lacks ETag");
            Assert.True(Responses(path, "get").ContainsKey("304"), $"{path} lacks 304");
        }

        // A range's last day is at most 365 days after its first: 366 days, both ends included (ReadRange.MaxDays).
        Assert.DoesNotContain("366 days after", document.ToJsonString(), StringComparison.Ordinal);
    }

    /// <summary>Every operation of the document: its path, method and the operation object.</summary>
    private static IEnumerable<(string Path, string Method, JsonObject Operation)> Operations(JsonNode document) =>
        document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject()
            .Where(m => m.Value is JsonObject operation && operation.ContainsKey("responses"))
            .Select(m => (path.Key, m.Key, m.Value!.AsObject())));

    /// <summary>Follows a local JSON pointer (RFC 6901: <c>~1</c> is '/', <c>~0</c> is '~'); null when a step is missing.</summary>
    private static JsonNode? Resolve(JsonNode document, string reference)
    {
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            return null;
        }

        JsonNode? node = document;
        foreach (var token in reference[2..].Split('/'))
        {
            node = node is JsonObject obj && obj.TryGetPropertyValue(token.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal), out var next) ? next : null;
        }

        return node;
    }

    [GeneratedRegex("\"\\$ref\":\"([^\"]+)\"")]
    private static partial Regex RefPattern();

    [Fact]
    public async Task The_dashboard_and_its_files_are_served_without_a_key_from_this_origin_only()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();

        var page = await client.GetAsync("/dashboard", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        var html = await page.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Contains("src=\"/dashboard/dashboard.js\"", html, StringComparison.Ordinal);

        var files = host.Services.GetRequiredService<DashboardEndpoints>().Files;
        Assert.Superset(new HashSet<string> { "index.html", "dashboard.js", "charts.js", "dashboard.css" }, files.ToHashSet());
        foreach (var file in files)
        {
            var response = await client.GetAsync("/dashboard/" + file, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

            // Works offline: nothing is loaded from anywhere but this origin (the SVG namespace is a name, not a download).
            Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//", text);
            Assert.DoesNotMatch(@"(import|from)\s*\(?\s*[""'](https?:)?//", text);
            Assert.DoesNotMatch(@"url\(\s*[""']?(https?:)?//", text);
        }

        Assert.Equal("text/javascript", (await client.GetAsync("/dashboard/dashboard.js", TestContext.Current.CancellationToken)).Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/dashboard/secrets.json", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/dashboard/..%2Fopenapi.json", TestContext.Current.CancellationToken)).StatusCode);

        var etag = page.Headers.ETag!;
        var again = new HttpRequestMessage(HttpMethod.Get, "/dashboard");
        again.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await client.SendAsync(again, TestContext.Current.CancellationToken)).StatusCode);
    }

    [Theory]
    [InlineData("/dashboard", "W/{0}")]
    [InlineData("/dashboard", "\"0000000000000000\", {0}")]
    [InlineData("/dashboard", "*")]
    [InlineData("/api/openapi.json", "W/{0}")]
    [InlineData("/api/openapi.json", "\"0000000000000000\", {0}")]
    [InlineData("/api/openapi.json", "*")]
    public async Task A_file_answers_304_to_an_if_none_match_that_matches_its_etag_as_rfc_9110_compares_them(string path, string ifNoneMatch)
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();
        var etag = (await client.GetAsync(path, TestContext.Current.CancellationToken)).Headers.ETag!.Tag;
        var again = new HttpRequestMessage(HttpMethod.Get, path);
        again.Headers.TryAddWithoutValidation("If-None-Match", string.Format(System.Globalization.CultureInfo.InvariantCulture, ifNoneMatch, etag));

        var response = await client.SendAsync(again, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_dashboard_never_puts_the_key_in_a_url()
    {
        await using var host = new LocalHostFactory(azurite);
        var script = await host.CreateClient().GetStringAsync("/dashboard/dashboard.js", TestContext.Current.CancellationToken);

        Assert.Contains("sessionStorage", script, StringComparison.Ordinal);
        Assert.Contains("'x-functions-key': adminKey()", script, StringComparison.Ordinal);
        Assert.DoesNotContain("localStorage", script, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"searchParams\.set\(\s*['""]code['""]", script);
        Assert.DoesNotContain("code=", script, StringComparison.Ordinal);
    }
}
