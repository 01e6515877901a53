using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>
/// The read API against a known three days, ingested through /v1/batch with a fake clock, rolled up and swept:
/// <list type="bullet">
/// <item>Monday 2026-11-02: users u1-u3 (linux, 1.0.0) and u4 (windows, 1.1.0); instances i-a and i-c (linux, 1.0.0)
/// and i-b (windows, 1.1.0); installations n1 (ubuntu, started, succeeded), n2 (windows, started, failed, asked
/// for support), n3 (ubuntu, started).</item>
/// <item>Tuesday: users u1, u5; instances i-a (now 1.1.0) and i-b.</item>
/// <item>Wednesday: user u2; instance i-a; installation n4 (macos, started, succeeded).</item>
/// <item>Thursday 11:00: a heartbeat from i-a; at 12:00 the sweep finds i-c (silent since Monday) and i-b (since
/// Tuesday) inactive.</item>
/// </list>
/// </summary>
public sealed class ReadApiTests(AzuriteFixture azurite) : IAsyncLifetime
{
    public const string AdminKey = "dev-admin-key";
    private static readonly DateOnly Monday = new(2026, 11, 2);
    private readonly FakeTimeProvider _time = new(At(Monday, 0));
    private LocalHostFactory _host = null!;

    private static DateTimeOffset At(DateOnly day, int hour, int minute = 0) => new(day.ToDateTime(new TimeOnly(hour, minute)), TimeSpan.Zero);

    public async ValueTask InitializeAsync()
    {
        _host = new LocalHostFactory(azurite, _time);
        await SeedAsync(_host, _time);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    private static JsonObject Use(string user, string os, string version) =>
        Segment.Track("Report Opened", userId: user, properties: new JsonObject { ["os"] = os, ["version"] = version });

    private static JsonObject Heartbeat(string instance, string os, string version, string? sharingLevel = null)
    {
        var properties = new JsonObject { ["instanceId"] = instance, ["os"] = os, ["version"] = version };
        if (sharingLevel is not null)
        {
            properties["sharingLevel"] = sharingLevel;
        }

        return Segment.Track("Instance Active", userId: "server", properties: properties);
    }

    private static JsonObject Install(string step, string installation, string os, string version) =>
        Segment.Track(step, userId: null, anonymousId: installation, properties: new JsonObject { ["os"] = os, ["version"] = version });

    internal static async Task SendAsync(LocalHostFactory host, FakeTimeProvider time, DateTimeOffset at, params JsonObject[] events)
    {
        time.SetUtcNow(at);
        foreach (var e in events)
        {
            e["timestamp"] = at.ToString("O");
        }

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(events)), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static async Task SeedAsync(LocalHostFactory host, FakeTimeProvider time)
    {
        await SendAsync(host, time, At(Monday, 10),
            Use("u1", "linux", "1.0.0"), Use("u2", "linux", "1.0.0"), Use("u3", "linux", "1.0.0"), Use("u4", "windows", "1.1.0"),
            Heartbeat("i-a", "linux", "1.0.0"), Heartbeat("i-b", "windows", "1.1.0"), Heartbeat("i-c", "linux", "1.0.0", sharingLevel: "basic"),
            Install("Installation Started", "n1", "ubuntu", "1.0.0"), Install("Installation Success", "n1", "ubuntu", "1.0.0"),
            Install("Installation Started", "n2", "windows", "1.1.0"), Install("Installation Errors", "n2", "windows", "1.1.0"), Install("Installation Support", "n2", "windows", "1.1.0"),
            Install("Installation Started", "n3", "ubuntu", "1.0.0"));
        await SendAsync(host, time, At(Monday.AddDays(1), 10),
            Use("u1", "linux", "1.0.0"), Use("u5", "linux", "1.1.0"), Heartbeat("i-a", "linux", "1.1.0"), Heartbeat("i-b", "windows", "1.1.0"));
        await SendAsync(host, time, At(Monday.AddDays(2), 10),
            Use("u2", "linux", "1.0.0"), Heartbeat("i-a", "linux", "1.1.0"),
            Install("Installation Started", "n4", "macos", "1.1.0"), Install("Installation Success", "n4", "macos", "1.1.0"));
        await SendAsync(host, time, At(Monday.AddDays(3), 11), Heartbeat("i-a", "linux", "1.1.0"));

        time.SetUtcNow(At(Monday.AddDays(3), 12));
        var sweep = await host.Services.GetRequiredService<TelemetryJobs>().SweepAsync(TestContext.Current.CancellationToken);
        Assert.Equal(2, sweep.MarkedInactive);
        await host.Services.GetRequiredService<DailyRollup>().RunRangeAsync(Monday, Monday.AddDays(2), progress: null, TestContext.Current.CancellationToken);
    }

    private HttpClient Admin()
    {
        var client = _host.CreateClient();
        client.DefaultRequestHeaders.Add("x-functions-key", AdminKey);
        return client;
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return await Segment.ReadJsonAsync(response);
    }

    private static async Task<string> CsvAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
    }

    private static string Lines(params string[] lines) => string.Concat(lines.Select(l => l + "\r\n"));

    private static Dictionary<string, int> Counts(JsonElement element) =>
        element.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());

    [Fact]
    public async Task Active_users_answer_each_days_dau_wau_mau_and_active_instances_with_versions_and_os()
    {
        var json = await JsonAsync(await Admin().GetAsync("/api/stats/active-users?from=2026-11-01&to=2026-11-05", TestContext.Current.CancellationToken));

        Assert.Equal("2026-11-01", json.GetProperty("from").GetString());
        Assert.Equal("2026-11-05", json.GetProperty("to").GetString());
        Assert.Equal("UTC", json.GetProperty("reportingTimeZone").GetString());
        Assert.Equal("2026-11-05", json.GetProperty("today").GetString());
        var days = json.GetProperty("days").EnumerateArray().ToList();
        Assert.Equal(["2026-11-02", "2026-11-03", "2026-11-04"], days.Select(d => d.GetProperty("day").GetString()));
        Assert.Equal([4, 2, 1], days.Select(d => d.GetProperty("dau").GetInt32()));
        Assert.Equal([4, 5, 5], days.Select(d => d.GetProperty("wau").GetInt32()));
        Assert.Equal([4, 5, 5], days.Select(d => d.GetProperty("mau").GetInt32()));
        Assert.Equal([3, 2, 1], days.Select(d => d.GetProperty("activeInstances").GetInt32()));
        Assert.Equal(new Dictionary<string, int> { ["1.0.0"] = 2, ["1.1.0"] = 1 }, Counts(days[0].GetProperty("activeInstancesByVersion")));
        Assert.Equal(new Dictionary<string, int> { ["linux"] = 2, ["windows"] = 1 }, Counts(days[0].GetProperty("activeInstancesByOs")));
        Assert.Equal(new Dictionary<string, int> { ["1.1.0"] = 2 }, Counts(days[1].GetProperty("activeInstancesByVersion")));
    }

    [Fact]
    public async Task Active_users_as_csv_have_one_row_per_day_or_per_day_and_version()
    {
        var expected = Lines("day,dau,wau,mau,activeInstances", "2026-11-02,4,4,4,3", "2026-11-03,2,5,5,2", "2026-11-04,1,5,5,1");
        Assert.Equal(expected, await CsvAsync(await Admin().GetAsync("/api/stats/active-users?from=2026-11-02&to=2026-11-04&format=csv", TestContext.Current.CancellationToken)));

        var byAccept = new HttpRequestMessage(HttpMethod.Get, "/api/stats/active-users?from=2026-11-02&to=2026-11-04");
        byAccept.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        var response = await Admin().SendAsync(byAccept, TestContext.Current.CancellationToken);
        Assert.Equal(expected, await CsvAsync(response));
        Assert.Equal("active-users_2026-11-02_2026-11-04.csv", response.Content.Headers.ContentDisposition?.FileNameStar ?? response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));

        Assert.Equal(
            Lines("day,version,activeInstances", "2026-11-02,1.0.0,2", "2026-11-02,1.1.0,1", "2026-11-03,1.1.0,2", "2026-11-04,1.1.0,1"),
            await CsvAsync(await Admin().GetAsync("/api/stats/active-users?from=2026-11-02&to=2026-11-04&format=csv&by=version", TestContext.Current.CancellationToken)));
    }

    [Fact]
    public async Task Json_is_answered_when_the_client_prefers_it_or_accepts_anything()
    {
        foreach (var accept in new[] { "*/*", "application/json, text/csv;q=0.5", "text/html" })
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/api/stats/active-users?from=2026-11-02&to=2026-11-04");
            request.Headers.TryAddWithoutValidation("Accept", accept);
            var json = await JsonAsync(await Admin().SendAsync(request, TestContext.Current.CancellationToken));
            Assert.Equal(3, json.GetProperty("days").GetArrayLength());
        }
    }

    [Theory]
    [InlineData("text/csv;q=0.5, */*")]
    [InlineData("text/csv;q=0.5, application/*")]
    [InlineData("text/csv;q=0.5, */*;q=0.5")]
    [InlineData("text/*;q=0.5, application/json;q=0.6")]
    [InlineData("*/*, text/csv;q=0")]
    [InlineData("text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8")]
    public async Task Json_is_answered_when_the_most_specific_ranges_give_it_at_least_the_weight_of_csv(string accept)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/stats/active-users?from=2026-11-02&to=2026-11-04");
        request.Headers.TryAddWithoutValidation("Accept", accept);
        var json = await JsonAsync(await Admin().SendAsync(request, TestContext.Current.CancellationToken));
        Assert.Equal(3, json.GetProperty("days").GetArrayLength());
    }

    [Theory]
    [InlineData("text/csv, */*;q=0.5")]
    [InlineData("text/csv;q=0.9, application/*;q=0.8")]
    [InlineData("text/*, application/json;q=0.5")]
    [InlineData("text/*;q=0.9, */*;q=0.1")]
    [InlineData("application/json;q=0, */*")]
    public async Task Csv_is_answered_when_the_most_specific_ranges_weigh_it_above_json(string accept)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/stats/active-users?from=2026-11-02&to=2026-11-04");
        request.Headers.TryAddWithoutValidation("Accept", accept);
        Assert.StartsWith("day,dau,wau,mau,activeInstances\r\n", await CsvAsync(await Admin().SendAsync(request, TestContext.Current.CancellationToken)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Installations_answer_each_day_and_the_range_with_success_rates_by_os_and_version()
    {
        var json = await JsonAsync(await Admin().GetAsync("/api/stats/installations?from=2026-11-02&to=2026-11-04", TestContext.Current.CancellationToken));

        var totals = json.GetProperty("totals");
        Assert.Equal(4, totals.GetProperty("started").GetInt32());
        Assert.Equal(2, totals.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, totals.GetProperty("failed").GetInt32());
        Assert.Equal(1, totals.GetProperty("supportRequests").GetInt32());
        Assert.Equal(0.5, totals.GetProperty("successRate").GetDouble());

        var byOs = json.GetProperty("byOs").EnumerateArray().Select(g => $"{g.GetProperty("value").GetString()}:{g.GetProperty("started").GetInt32()}/{g.GetProperty("succeeded").GetInt32()}/{g.GetProperty("failed").GetInt32()}/{g.GetProperty("successRate").GetDouble()}").ToList();
        Assert.Equal(["ubuntu:2/1/0/0.5", "macos:1/1/0/1", "windows:1/0/1/0"], byOs);
        var byVersion = json.GetProperty("byVersion").EnumerateArray().ToDictionary(g => g.GetProperty("value").GetString()!, g => g.GetProperty("started").GetInt32());
        Assert.Equal(new Dictionary<string, int> { ["1.0.0"] = 2, ["1.1.0"] = 2 }, byVersion);

        var days = json.GetProperty("days").EnumerateArray().ToList();
        Assert.Equal([3, 0, 1], days.Select(d => d.GetProperty("started").GetInt32()));
        Assert.Equal(0.3333, days[0].GetProperty("successRate").GetDouble());
        Assert.Equal(JsonValueKind.Null, days[1].GetProperty("successRate").ValueKind);
        Assert.Equal(1, days[0].GetProperty("supportRequests").GetInt32());
        Assert.Equal("windows", days[0].GetProperty("byOs").EnumerateArray().Single(g => g.GetProperty("failed").GetInt32() == 1).GetProperty("value").GetString());
    }

    [Fact]
    public async Task Installations_as_csv_have_one_row_per_day_or_per_day_and_os()
    {
        Assert.Equal(
            Lines("day,started,succeeded,failed,supportRequests,successRate", "2026-11-02,3,1,1,1,0.3333", "2026-11-03,0,0,0,0,", "2026-11-04,1,1,0,0,1"),
            await CsvAsync(await Admin().GetAsync("/api/stats/installations?from=2026-11-02&to=2026-11-04&format=csv", TestContext.Current.CancellationToken)));
        Assert.Equal(
            Lines("day,os,started,succeeded,failed,successRate", "2026-11-02,ubuntu,2,1,0,0.5", "2026-11-02,windows,1,0,1,0", "2026-11-04,macos,1,1,0,1"),
            await CsvAsync(await Admin().GetAsync("/api/stats/installations?from=2026-11-02&to=2026-11-04&format=csv&by=os", TestContext.Current.CancellationToken)));
    }

    [Fact]
    public async Task Instances_now_count_active_and_inactive_by_version_and_os_with_the_last_seven_days_changes()
    {
        var json = await JsonAsync(await Admin().GetAsync("/api/stats/instances", TestContext.Current.CancellationToken));

        Assert.Equal(1, json.GetProperty("active").GetInt32());
        Assert.Equal(2, json.GetProperty("inactive").GetInt32());
        Assert.Equal(3, json.GetProperty("total").GetInt32());
        Assert.Equal(3, json.GetProperty("newLast7Days").GetInt32());
        Assert.Equal(2, json.GetProperty("goneInactiveLast7Days").GetInt32());
        Assert.Equal(At(Monday.AddDays(3), 12), json.GetProperty("asOf").GetDateTimeOffset());
        string Group(JsonElement g) => $"{g.GetProperty("value").GetString()}:{g.GetProperty("active").GetInt32()}/{g.GetProperty("inactive").GetInt32()}/{g.GetProperty("total").GetInt32()}";
        Assert.Equal(["1.1.0:1/1/2", "1.0.0:0/1/1"], json.GetProperty("byVersion").EnumerateArray().Select(Group));
        Assert.Equal(["linux:1/1/2", "windows:0/1/1"], json.GetProperty("byOs").EnumerateArray().Select(Group));

        // All three were first seen on Monday at 10:00 and went silent at 16:31 (i-a and i-b until their heartbeats a
        // day later); i-a and i-b again on Tuesday, i-b for good; i-a once more on Wednesday, until Thursday 11:00.
        var recent = json.GetProperty("recentDays").EnumerateArray().Select(d => $"{d.GetProperty("day").GetString()}:{d.GetProperty("newInstances").GetInt32()}/{d.GetProperty("instancesGoneInactive").GetInt32()}");
        Assert.Equal(["2026-11-02:3/3", "2026-11-03:0/2", "2026-11-04:0/1"], recent);

        Assert.Equal(
            Lines("dimension,value,active,inactive,total", "total,all,1,2,3", "version,1.1.0,1,1,2", "version,1.0.0,0,1,1", "os,linux,1,1,2", "os,windows,0,1,1"),
            await CsvAsync(await Admin().GetAsync("/api/stats/instances?format=csv", TestContext.Current.CancellationToken)));
    }

    [Fact]
    public async Task The_instance_count_is_kept_for_a_minute_then_counted_again()
    {
        var first = await JsonAsync(await Admin().GetAsync("/api/stats/instances", TestContext.Current.CancellationToken));
        await SendAsync(_host, _time, _time.GetUtcNow().AddSeconds(30), Heartbeat("i-d", "linux", "1.1.0"));

        var cached = await JsonAsync(await Admin().GetAsync("/api/stats/instances", TestContext.Current.CancellationToken));
        Assert.Equal(3, cached.GetProperty("total").GetInt32());
        Assert.Equal(first.GetProperty("asOf").GetDateTimeOffset(), cached.GetProperty("asOf").GetDateTimeOffset());

        _time.Advance(TimeSpan.FromSeconds(31));
        var fresh = await JsonAsync(await Admin().GetAsync("/api/stats/instances", TestContext.Current.CancellationToken));
        Assert.Equal(4, fresh.GetProperty("total").GetInt32());
        Assert.Equal(2, fresh.GetProperty("active").GetInt32());
    }

    [Fact]
    public async Task One_instance_is_found_by_its_raw_id_and_answered_under_its_pseudonym_with_its_status_history()
    {
        var json = await JsonAsync(await Admin().GetAsync("/api/instances/i-c", TestContext.Current.CancellationToken));

        var pseudonym = _host.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(IdentifierKind.Instance, "i-c");
        Assert.Equal(pseudonym, json.GetProperty("instanceKey").GetString());
        Assert.DoesNotContain("i-c", json.GetRawText(), StringComparison.Ordinal);
        Assert.Equal("inactive", json.GetProperty("status").GetString());
        Assert.Equal("1.0.0", json.GetProperty("version").GetString());
        Assert.Equal("linux", json.GetProperty("os").GetString());
        Assert.Equal("basic", json.GetProperty("sharingLevel").GetString());
        Assert.Equal(At(Monday, 10), json.GetProperty("attributesObservedAt").GetDateTimeOffset());
        Assert.Equal(At(Monday, 10), json.GetProperty("firstSeen").GetDateTimeOffset());
        Assert.Equal(At(Monday, 10), json.GetProperty("lastSeen").GetDateTimeOffset());

        // Inactive from its deadline: last seen + 6 h 30 min + the 1-minute touch interval.
        Assert.Equal(At(Monday, 16, 31), json.GetProperty("statusChangedAt").GetDateTimeOffset());
        var history = json.GetProperty("history").EnumerateArray().Select(h => $"{h.GetProperty("status").GetString()}@{h.GetProperty("at").GetDateTimeOffset():O}/{h.GetProperty("reason").GetString()}");
        Assert.Equal([$"active@{At(Monday, 10):O}/first seen", $"inactive@{At(Monday, 16, 31):O}/silent"], history);
    }

    [Fact]
    public async Task An_unknown_instance_is_404_and_a_blank_id_is_400()
    {
        var unknown = await Admin().GetAsync("/api/instances/never-seen", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("not_found", (await Segment.ReadJsonAsync(unknown)).GetProperty("error").GetProperty("code").GetString());

        var blank = await Admin().GetAsync("/api/instances/%20", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, blank.StatusCode);
    }

    public static TheoryData<string> ReadRoutes => new()
    {
        "/api/stats/active-users?from=2026-11-02&to=2026-11-04",
        "/api/stats/installations?from=2026-11-02&to=2026-11-04",
        "/api/stats/instances",
        "/api/instances/i-a",
        "/api/stats/active-users?from=2026-11-02&to=2026-11-04&format=csv",
    };

    [Theory]
    [MemberData(nameof(ReadRoutes))]
    public async Task Every_read_route_answers_401_without_the_admin_key_with_a_wrong_key_or_with_a_write_key(string route)
    {
        var separator = route.Contains('?', StringComparison.Ordinal) ? "&" : "?";
        var anonymous = _host.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(route, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(route + separator + "code=wrong-admin-key", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(route + separator + "code=" + LocalHostFactory.WriteKey, TestContext.Current.CancellationToken)).StatusCode);

        foreach (var key in new[] { "wrong-admin-key", LocalHostFactory.WriteKey, AdminKey.ToUpperInvariant() })
        {
            var request = new HttpRequestMessage(HttpMethod.Get, route);
            request.Headers.Add("x-functions-key", key);
            var refused = await anonymous.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("unauthorized", (await Segment.ReadJsonAsync(refused)).GetProperty("error").GetProperty("code").GetString());
        }

        // A write key the Segment way (HTTP Basic) is no admin key either.
        Assert.Equal(HttpStatusCode.Unauthorized, (await _host.CreateSegmentClient().GetAsync(route, TestContext.Current.CancellationToken)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(route + separator + "code=" + AdminKey, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin().GetAsync(route, TestContext.Current.CancellationToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(ReadRoutes))]
    public async Task An_admin_key_given_twice_or_both_as_header_and_code_is_refused_401_even_when_one_of_them_is_right(string route)
    {
        var separator = route.Contains('?', StringComparison.Ordinal) ? "&" : "?";
        var anonymous = _host.CreateClient();
        foreach (var (what, target, headers) in new (string, string, string[])[]
        {
            ("two headers, the right one first", route, [AdminKey, "wrong-admin-key"]),
            ("two headers, both right", route, [AdminKey, AdminKey]),
            ("two code values, the right one first", route + separator + $"code={AdminKey}&code=wrong-admin-key", []),
            ("two code values, both right", route + separator + $"code={AdminKey}&code={AdminKey}", []),
            ("a right header and a wrong code", route + separator + "code=wrong-admin-key", [AdminKey]),
            ("a wrong header and a right code", route + separator + "code=" + AdminKey, ["wrong-admin-key"]),
            ("a right header and the same code", route + separator + "code=" + AdminKey, [AdminKey]),
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, target);
            foreach (var header in headers)
            {
                request.Headers.TryAddWithoutValidation("x-functions-key", header);
            }

            using var refused = await anonymous.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.True(refused.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {(int)refused.StatusCode}");
            var error = (await Segment.ReadJsonAsync(refused)).GetProperty("error");
            Assert.Equal("unauthorized", error.GetProperty("code").GetString());
            Assert.Equal("Send the admin key once: one x-functions-key header or one code query parameter, not both.", error.GetProperty("message").GetString());
        }
    }

    /// <summary>Answers of the read API and the usage read, JSON and CSV, found and refused.</summary>
    public static TheoryData<string> ReadAnswers => new()
    {
        "/api/stats/active-users?from=2026-11-02&to=2026-11-04",
        "/api/stats/active-users?from=2026-11-02&to=2026-11-04&format=csv",
        "/api/stats/installations?from=2026-11-02&to=2026-11-04&format=csv&by=os",
        "/api/stats/installations?from=2026-11-04&to=2026-11-02",
        "/api/stats/instances",
        "/api/stats/instances?format=csv",
        "/api/instances/i-a",
        "/api/instances/never-seen",
        "/api/instances/%20",
        "/api/usage",
        "/api/usage?format=csv",
        "/api/usage?from=2026-03&to=2026-01",
    };

    [Theory]
    [MemberData(nameof(ReadAnswers))]
    public async Task Every_read_and_usage_answer_tells_caches_not_to_store_it(string route)
    {
        var response = await Admin().GetAsync(route, TestContext.Current.CancellationToken);
        Assert.True(response.Headers.CacheControl?.NoStore == true, $"{(int)response.StatusCode} {route}: Cache-Control {response.Headers.CacheControl}");
    }

    [Fact]
    public async Task The_library_sets_no_store_itself_so_the_functions_app_sends_it_too()
    {
        // The Functions app hands the same library methods' results to its host: what they set on the response is sent.
        var stats = _host.Services.GetRequiredService<StatsEndpoints>();
        var usage = _host.Services.GetRequiredService<UsageReportEndpoints>();
        var answers = new Dictionary<string, Func<HttpRequest, Task<IResult>>>
        {
            ["active users"] = request => stats.ActiveUsersAsync(request, TestContext.Current.CancellationToken),
            ["installations"] = request => stats.InstallationsAsync(request, TestContext.Current.CancellationToken),
            ["instances"] = request => stats.InstancesAsync(request, TestContext.Current.CancellationToken),
            ["one instance"] = request => stats.InstanceAsync(request, "i-a", RequestTarget.Forwarded, TestContext.Current.CancellationToken),
            ["no such instance"] = request => stats.InstanceAsync(request, "never-seen", RequestTarget.Forwarded, TestContext.Current.CancellationToken),
            ["usage"] = request => usage.UsageAsync(request, TestContext.Current.CancellationToken),
        };

        foreach (var (name, answer) in answers)
        {
            var context = new DefaultHttpContext { RequestServices = _host.Services };
            context.Response.Body = new MemoryStream();
            await (await answer(context.Request)).ExecuteAsync(context);
            Assert.True(context.Response.Headers.CacheControl.ToString() == "no-store", $"{name}: {context.Response.StatusCode}, Cache-Control '{context.Response.Headers.CacheControl}'");
        }
    }

    [Theory]
    [InlineData("from=2026-11-02", "both from and to")]
    [InlineData("to=2026-11-02", "both from and to")]
    [InlineData("from=2026-11-02&to=yesterday", "YYYY-MM-DD")]
    [InlineData("from=2026-11-2&to=2026-11-04", "YYYY-MM-DD")]
    [InlineData("from=2026-11-04&to=2026-11-02", "must not be after")]
    [InlineData("from=2026-11-02&to=2026-11-06", "must not be in the future: 2026-11-05")]
    [InlineData("from=2025-11-04&to=2026-11-05", "more than 366 days")]
    [InlineData("from=2026-11-02&to=2026-11-04&format=xml", "format is json or csv")]
    [InlineData("from=2026-11-02&to=2026-11-04&by=edition", "by is one of")]
    public async Task Bad_ranges_and_parameters_are_refused_with_a_reason(string query, string reason)
    {
        foreach (var route in new[] { "/api/stats/active-users", "/api/stats/installations" })
        {
            var response = await Admin().GetAsync($"{route}?{query}", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(reason, (await Segment.ReadJsonAsync(response)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_range_may_end_today_and_span_366_days_and_no_range_means_the_last_30_complete_days()
    {
        var today = await JsonAsync(await Admin().GetAsync("/api/stats/active-users?from=2025-11-05&to=2026-11-05", TestContext.Current.CancellationToken));
        Assert.Equal(3, today.GetProperty("days").GetArrayLength());

        var defaults = await JsonAsync(await Admin().GetAsync("/api/stats/installations", TestContext.Current.CancellationToken));
        Assert.Equal("2026-10-06", defaults.GetProperty("from").GetString());
        Assert.Equal("2026-11-04", defaults.GetProperty("to").GetString());
        Assert.Equal(4, defaults.GetProperty("totals").GetProperty("started").GetInt32());
    }
}
