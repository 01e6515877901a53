using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Http;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>
/// Odd and hostile requests to every route that is not ingest: the read API, the admin routes, the usage read and the
/// usage-report status, the OpenAPI document and the dashboard. Each gets the exact status it should (a 4xx with the
/// JSON error body and its reason, or the 200 or 404 that is the right answer), never a 5xx; and the read requests
/// write nothing. The server clock is <see cref="Hostile.Now"/> (2025-06-15, UTC): today is 2025-06-15 and the
/// last complete day 2025-06-14.
/// </summary>
/// <remarks>
/// The in-process test server takes its request target through <see cref="Uri"/>, which removes dot segments and
/// refuses a NUL in the path; those tricks, and the limits Kestrel itself enforces, are sent byte for byte to the host
/// running on Kestrel.
/// </remarks>
public sealed class HostileReadRequestTests(AzuriteFixture azurite)
{
    private const string Key = ReadApiTests.AdminKey;
    private const string Range = "from=2025-06-01&to=2025-06-10";
    private const string DayForm = "YYYY-MM-DD";
    private const string BearerReportKey = "Authorization: Bearer " + ReadRequests.ReportKey;

    private static readonly string LongText = new('a', 6000);

    /// <summary>The read API's list routes: dates, format, Accept, breakdown and long queries.</summary>
    internal static readonly ReadRequest[] ReadApi =
    [
        .. new[] { "/api/stats/active-users", "/api/stats/installations" }.SelectMany(route => new ReadRequest[]
        {
            new($"{route}?{Range}", 200),
            new($"{route}?from=2026-02-30&to=2026-03-01", 400, "invalid_range", DayForm),
            new($"{route}?from=2025-02-29&to=2025-03-01", 400, "invalid_range", DayForm),
            new($"{route}?from=99999-01-01&to=99999-01-02", 400, "invalid_range", DayForm),
            new($"{route}?from=-1&to=-1", 400, "invalid_range", DayForm),
            new($"{route}?from=2025-6-1&to=2025-06-10", 400, "invalid_range", DayForm),
            new($"{route}?from=2025-06-01T00:00:00Z&to=2025-06-10", 400, "invalid_range", DayForm),
            new($"{route}?from=%202025-06-01&to=2025-06-10", 400, "invalid_range", DayForm),
            new($"{route}?from=%EF%BC%92025-06-01&to=2025-06-10", 400, "invalid_range", DayForm),
            new($"{route}?from=%00&to=%ED%A0%80", 400, "invalid_range", DayForm),
            new($"{route}?from=2025-06-01%00&to=2025-06-10", 400, "invalid_range", DayForm),
            new($"{route}?from=2025-06-01", 400, "invalid_range", "both"),
            new($"{route}?to=2025-06-10", 400, "invalid_range", "both"),
            new($"{route}?from=&to=2025-06-10", 400, "invalid_range", "both"),
            new($"{route}?from=&to=", 200),
            new($"{route}?from=2025-06-01&from=2025-06-02&to=2025-06-10", 400, "repeated_parameter", "from is given 2 times; give it once"),
            new($"{route}?from=2025-06-01&from=2025-06-01&to=2025-06-10", 400, "repeated_parameter", "from is given 2 times"),
            new($"{route}?from=2025-06-01&to=2025-06-10&to=2025-06-10&to=x", 400, "repeated_parameter", "to is given 3 times"),
            new($"{route}?from=2025-06-10&to=2025-06-01", 400, "invalid_range", "from must not be after to"),
            new($"{route}?from=0001-01-01&to=0001-01-01", 200),
            new($"{route}?from=0001-01-01&to=2025-06-14", 400, "invalid_range", "more than 366 days"),
            new($"{route}?from=2024-06-14&to=2025-06-14", 200),
            new($"{route}?from=2024-06-13&to=2025-06-14", 400, "invalid_range", "more than 366 days"),
            new($"{route}?from=2025-06-01&to=2025-06-15", 200),
            new($"{route}?from=2025-06-01&to=2025-06-16", 400, "invalid_range", "future"),
            new($"{route}?from=2025-06-01&to=9999-12-31", 400, "invalid_range", "future"),
            new($"{route}?{Range}&format=xml", 400, "invalid_format", "json or csv"),
            new($"{route}?{Range}&format=csv&format=json", 400, "repeated_parameter", "format is given 2 times"),
            new($"{route}?{Range}&format=csv&format=csv", 400, "repeated_parameter", "format is given 2 times"),
            new($"{route}?{Range}&format=%00", 400, "invalid_format", "json or csv"),
            new($"{route}?{Range}&format=" + LongText, 400, "invalid_format", "json or csv"),
            new($"{route}?{Range}&format=", 200),
            new($"{route}?{Range}&format=CSV", 200) { MediaType = "text/csv" },
            new($"{route}?{Range}&format=json", 200) { Headers = ["Accept: text/csv"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=0"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=0, application/json;q=0"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: */*"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: }{;;==,,;q=;"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=NaN"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=1e999"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=-1"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=2"] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv;q=0.9, application/json;q=0.8"], MediaType = "text/csv" },
            new($"{route}?{Range}", 200) { Headers = ["Accept: " + string.Concat(Enumerable.Repeat("application/x-junk;q=0.5, ", 300))] },
            new($"{route}?{Range}", 200) { Headers = ["Accept: " + string.Concat(Enumerable.Repeat("application/x-junk;q=0.5, ", 300)) + "text/csv"], MediaType = "text/csv" },
            new($"{route}?{Range}", 200) { Headers = ["Accept: text/csv", "Accept: application/json;q=0.1"], MediaType = "text/csv" },
            new($"{route}?{Range}&by=os&by=version", 400, "repeated_parameter", "by is given 2 times"),
            new($"{route}?{Range}&by=OS", 400, "invalid_breakdown", "by is one of"),
            new($"{route}?{Range}&by=%00", 400, "invalid_breakdown", "by is one of"),
            new($"{route}?{Range}&by=", 200),
            new($"{route}?{Range}&x=" + LongText, 200),
            new($"{route}?{Range}" + string.Concat(Enumerable.Repeat("&a=1", 500)), 200),
            new($"{route}?{Range}&%ED%A0%80=%ED%A0%80&%00=%00&&&=&==", 200),
            new($"{route}?{Range}", 200) { Method = "HEAD" },
            new($"{route}?from=2026-02-30&to=2026-03-01", 400, "invalid_range") { Method = "HEAD" },
        }),
        new("/api/stats/instances", 200),
        new("/api/stats/instances?format=", 200),
        new("/api/stats/instances?format=csv", 200) { MediaType = "text/csv" },
        new("/api/stats/instances?format=xml", 400, "invalid_format", "json or csv"),
        new("/api/stats/instances?format=csv&format=csv", 400, "repeated_parameter", "format is given 2 times"),
        new("/api/stats/instances?from=garbage&to=%00&by=nothing", 200),
        new("/api/stats/instances", 200) { Headers = ["Accept: text/csv;q=0"] },
        new("/api/stats/instances", 200) { Headers = ["Accept: garbage/"] },
        new("/api/stats/instances?x=" + LongText, 200),
    ];

    /// <summary>
    /// The admin key: missing, empty, wrong, or given twice. When the <c>x-functions-key</c> header is there it is the
    /// key, even an empty one; else the <c>code</c> value. Two headers, two <c>code</c> values, or a header and a
    /// <c>code</c> are refused, equal or not, as ingest refuses two Authorization headers. (The in-process client
    /// leaves out an empty header: the host on Kestrel gets that one.)
    /// </summary>
    internal static readonly ReadRequest[] Keys =
    [
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = null },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = "" },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = "DEV-ADMIN-KEY" },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = Key + " " + Key },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = LongText },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key once") { Headers = ["x-functions-key: " + Key] },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key once") { Headers = ["x-functions-key: wrong"] },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key once") { Key = "wrong", Headers = ["x-functions-key: " + Key] },
        new($"/api/stats/active-users?{Range}&code=", 401, "unauthorized", "admin key") { Key = null },
        new($"/api/stats/active-users?{Range}&code=" + Key, 200) { Key = null },
        new($"/api/stats/active-users?{Range}&code={Key}&code={Key}", 401, "unauthorized", "admin key once") { Key = null },
        new($"/api/stats/active-users?{Range}&code={Key}&code=wrong", 401, "unauthorized", "admin key once") { Key = null },
        new($"/api/stats/active-users?{Range}&code=wrong&code=" + Key, 401, "unauthorized", "admin key once") { Key = null },
        new($"/api/stats/active-users?{Range}&code=&code=" + Key, 401, "unauthorized", "admin key once") { Key = null },
        new($"/api/stats/active-users?{Range}&code=wrong", 401, "unauthorized", "admin key once"),
        new($"/api/stats/active-users?{Range}&code=" + Key, 401, "unauthorized", "admin key once"),
        new($"/api/stats/active-users?{Range}&code=" + Key, 401, "unauthorized", "admin key once") { Key = "wrong" },
        new("/api/admin/sweep?code=" + Key, 401, "unauthorized", "admin key once") { Method = "POST" },
        new("/api/admin/sweep?code=", 401, "unauthorized", "admin key once") { Method = "POST" },
        new($"/api/stats/active-users?{Range}&code=%00", 401, "unauthorized", "admin key") { Key = null },
        new($"/api/stats/active-users?{Range}&code=" + Uri.EscapeDataString(Key + "\u0000"), 401, "unauthorized", "admin key") { Key = null },
        new("/api/stats/instances", 401, "unauthorized", "admin key") { Key = null },
        new("/api/instances/i-a", 401, "unauthorized", "admin key") { Key = null },
        new("/api/usage", 401, "unauthorized", "admin key") { Key = null },
        new("/api/usage?code=" + ReadRequests.ReportKey, 401, "unauthorized", "admin key") { Key = null },
        new("/api/admin/sweep", 401, "unauthorized", "admin key") { Method = "POST", Key = null },
        new("/api/admin/rollup?from=2025-06-01&to=2025-06-10&code=", 401, "unauthorized", "admin key") { Method = "POST", Key = null },
        new("/api/admin/retention", 401, "unauthorized", "admin key") { Method = "POST", Key = "" },
    ];

    /// <summary>One instance by id: control characters, blanks, NUL-free encodings, lone surrogates, traversal, lengths.</summary>
    internal static readonly ReadRequest[] InstanceIds =
    [
        new("/api/instances/i-unknown", 404, "not_found", "No instance with this id"),
        new("/api/instances/%01", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/a%0Ab", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/a%0D%0Ab", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/%7F", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/%C2%85", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/%20", 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/%20%20%09", 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/%ED%A0%80", 404, "not_found", "No instance with this id"),
        new("/api/instances/a%ED%A0%80b%2Fc", 404, "not_found", "No instance with this id"),
        new("/api/instances/%ED%B0%80%ED%A0%80", 404, "not_found", "No instance with this id"),
        new("/api/instances/%C0%AF", 404, "not_found", "No instance with this id"),
        new("/api/instances/%FF%FE", 404, "not_found", "No instance with this id"),
        new("/api/instances/%E2%80%AE%E2%80%8B", 400, "invalid_instance_id", "not only invisible ones"),
        new("/api/instances/..%2F..%2Fappsettings.json", 404, "not_found", "No instance with this id"),
        new("/api/instances/..%5C..%5Cappsettings.json", 404, "not_found", "No instance with this id"),
        new("/api/instances/%25", 404, "not_found", "No instance with this id"),
        new("/api/instances/%25%25%25", 404, "not_found", "No instance with this id"),
        new("/api/instances/%", 404, "not_found", "No instance with this id"),
        new("/api/instances/%zz%2F", 404, "not_found", "No instance with this id"),
        new("/api/instances/%2F", 404, "not_found", "No instance with this id"),
        new("/api/instances/%2F%2F%2F", 404, "not_found", "No instance with this id"),
        new("/api/instances/a%3Fb%23c", 404, "not_found", "No instance with this id"),
        new("/api/instances/PartitionKey%20eq%20'x'%20or%20true", 404, "not_found", "No instance with this id"),
        new("/api/instances/" + new string('i', 1024), 404, "not_found", "No instance with this id"),
        new("/api/instances/" + new string('i', 1025), 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/" + string.Concat(Enumerable.Repeat("%C3%A9", 1025)), 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/" + new string('i', 6000), 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/i-unknown?from=%00&format=xml", 404, "not_found", "No instance with this id"),
        new("/api/instances/i-unknown", 404, "not_found") { Method = "HEAD" },
    ];

    /// <summary><c>/api/usage</c>: customer, month and day ranges, format.</summary>
    internal static readonly ReadRequest[] Usage =
    [
        new("/api/usage", 200),
        new("/api/usage?customer=", 200),
        new("/api/usage?customer=acme", 200),
        new("/api/usage?customer=no-such-customer", 200),
        new("/api/usage?customer=ACME", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=acme&customer=acme", 400, "repeated_parameter", "customer is given 2 times"),
        new("/api/usage?customer=acme&customer=globex", 400, "repeated_parameter", "customer is given 2 times"),
        new("/api/usage?customer=%00", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=acme%00", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=-acme", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=acme%0A", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=acme%0D%0A", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=%ED%A0%80", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=acme'%20or%20'1'%20eq%20'1", 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=" + new string('a', 63), 200),
        new("/api/usage?customer=" + new string('a', 64), 400, "invalid_customer", "customer id"),
        new("/api/usage?customer=" + LongText, 400, "invalid_customer", "customer id"),
        new("/api/usage?from=2025-01&to=2025-06", 200),
        new("/api/usage?from=2025-01-01&to=2025-06-14", 200),
        new("/api/usage?from=2025-13&to=2025-14", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=2025-00&to=2025-01", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=2025-1&to=2025-06", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=2025-06&to=2025-06-10", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=2025-06&to=2025-01", 400, "invalid_range", "from must not be after to"),
        new("/api/usage?from=0001-01&to=9999-12", 400, "invalid_range", "more than 120 months"),
        new("/api/usage?from=0001-01&to=0010-12", 200),
        new("/api/usage?from=99999-01&to=99999-02", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=9999-01&to=9999-12", 400, "invalid_range", "9998-12 or earlier"),
        new("/api/usage?from=9999-12&to=9999-12", 400, "invalid_range", "9998-12 or earlier"),
        new("/api/usage?from=9998-12&to=9999-01", 400, "invalid_range", "9998-12 or earlier"),
        new("/api/usage?from=9999-01&to=9999-12", 400, "invalid_range") { Method = "HEAD" },
        new("/api/usage?from=9998-01&to=9998-12", 200),
        new("/api/usage?from=2025-01&from=2025-02&to=2025-06", 400, "repeated_parameter", "from is given 2 times"),
        new("/api/usage?from=2026-02-30&to=2026-03-01", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?from=2025-06-01&to=2025-06-16", 400, "invalid_range", "future"),
        new("/api/usage?from=-1&to=-1", 400, "invalid_range", "YYYY-MM"),
        new("/api/usage?format=xml", 400, "invalid_format", "json or csv"),
        new("/api/usage?format=csv", 200) { MediaType = "text/csv" },
        new("/api/usage", 200) { Headers = ["Accept: text/csv;q=0"] },
        new("/api/usage", 200) { Headers = ["Accept: text/csv"], MediaType = "text/csv" },
    ];

    /// <summary><c>/v1/usage-reports/{id}</c> (the customer's report key): odd ids and odd credentials.</summary>
    internal static readonly ReadRequest[] UsageReportStatus =
    [
        .. new[]
        {
            "never-sent", "..%2F..%2Fappsettings.json", "..%5Cx", "%ED%A0%80", "r%ED%A0%80", "%01", "r%0Ax", "%20", "%25", "%",
            "never-sent%0A", "never-sent%0D%0A", "r%2Fx", "acme%2Fr1", "1abc", "_r", "r" + new string('x', 63), "r" + new string('x', 64), new string('r', 1025),
            "r'%20or%20true", "r%E2%80%AE",
        }.Select(id => new ReadRequest("/v1/usage-reports/" + id, 404, "not_found", "No usage report with this id") { Key = null, Headers = [BearerReportKey] }),
        new("/v1/usage-reports/never-sent", 404, "not_found") { Method = "HEAD", Key = null, Headers = [BearerReportKey] },
        new("/v1/usage-reports/never-sent?x=%00&id=..%2F", 404, "not_found", "No usage report with this id") { Key = null, Headers = [BearerReportKey] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "report key is required") { Key = null },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "report key is required") { Key = Key },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "not valid") { Key = null, Headers = ["Authorization: Bearer wrong"] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "report key is required") { Key = null, Headers = ["Authorization: Bearer "] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "not valid") { Key = null, Headers = ["Authorization: Bearer " + LongText] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "base64") { Key = null, Headers = ["Authorization: Basic %%%"] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "not valid") { Key = null, Headers = ["Authorization: Basic " + Convert.ToBase64String([0xED, 0xA0, 0x80, 0x3A])] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "report key is required") { Key = null, Headers = ["Authorization: Digest x"] },
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "one Authorization header") { Key = null, Headers = [BearerReportKey, BearerReportKey] },
        new("/v1/usage-reports/", 405, "method_not_allowed", "takes POST") { Key = null, Headers = [BearerReportKey] },
    ];

    /// <summary>The OpenAPI document and the dashboard's page and files: names that are not its files are 404 with the JSON body.</summary>
    internal static readonly ReadRequest[] Dashboard =
    [
        new("/api/openapi.json", 200) { Key = null },
        new("/api/openapi.json?x=%00&format=csv", 200) { Key = null, Headers = ["Accept: text/csv"] },
        new("/dashboard", 200) { Key = null, MediaType = "text/html" },
        new("/dashboard?%00=%00&" + LongText, 200) { Key = null, MediaType = "text/html" },
        new("/dashboard/", 200) { Key = null, MediaType = "text/html" },
        new("/dashboard/index.html", 200) { Key = null, MediaType = "text/html" },
        new("/dashboard/dashboard.js", 200) { Key = null, MediaType = "text/javascript" },
        new("/dashboard/dashboard.css?v=%00", 200) { Key = null, MediaType = "text/css" },
        new("/dashboard/dashboard.js", 200) { Method = "HEAD", Key = null, MediaType = "text/javascript" },
        .. new[]
        {
            "..%2Fappsettings.json", "..%2F..%2Fappsettings.json", "%2e%2e%2fappsettings.json", "..%5Cappsettings.json", "%2E%2E%5Cappsettings.json",
            "DASHBOARD.JS", "dashboard.js%20", "dashboard.js.", "dashboard.js%2F", "dashboard.js::$DATA", "dashboard.js.map", "assets.dashboard.js",
            "TelemetryFunctions.Reporting.Dashboard.assets.dashboard.js", "%ED%A0%80", "dashboard.js%ED%A0%80", "%01", "%25", "%", "openapi.json",
            "appsettings.json", new string('f', 1025), new string('f', 6000),
        }.Select(file => new ReadRequest("/dashboard/" + file, 404, "not_found", "The dashboard has no file of this name") { Key = null }),
        new("/dashboard/no-such-file", 404, "not_found") { Method = "HEAD", Key = null },
    ];

    /// <summary>The admin routes: a rollup range must be days that have ended and that retention kept; sweep and retention ignore the query.</summary>
    internal static readonly ReadRequest[] AdminRefusals =
    [
        .. new (string Query, string Reason)[]
        {
            ("", DayForm),
            ("from=&to=", DayForm),
            ("from=2025-06-01", DayForm),
            ("from=2026-02-30&to=2026-03-01", DayForm),
            ("from=99999-01-01&to=99999-01-02", DayForm),
            ("from=-1&to=-1", DayForm),
            ("from=%00&to=%ED%A0%80", DayForm),
            ("from=2025-06-10&to=2025-06-01", "from must not be after to"),
            ("from=2025-06-14&to=2025-06-15", "has ended"),
            ("from=2025-06-01&to=9999-12-31", "has ended"),
            ("from=0001-01-01&to=0001-01-02", "deleted by retention"),
            ("from=0001-01-01&to=2025-06-14", "more than 366 days"),
            ("from=2025-06-01&to=2025-06-15&" + LongText, "has ended"),
        }.Select(c => new ReadRequest("/api/admin/rollup?" + c.Query, 400, "invalid_range", c.Reason) { Method = "POST" }),
        new("/api/admin/rollup?from=2025-06-01&from=2025-06-02&to=2025-06-10", 400, "repeated_parameter", "from is given 2 times") { Method = "POST" },
        new("/api/admin/rollup?" + Range, 405, "method_not_allowed", "takes POST"),
        new("/api/admin/sweep", 405, "method_not_allowed", "takes POST"),
        new("/api/admin/nothing", 404, "not_found", "No route serves this path") { Method = "POST" },
        new("/api/admin/rollup/..%2Fsweep", 404, "not_found", "No route serves this path") { Method = "POST" },
    ];

    /// <summary>Path tricks that only a server receiving the target as sent sees: NUL, dot segments, raw bytes, Kestrel's request-line limit.</summary>
    internal static readonly ReadRequest[] OnKestrel =
    [
        new("/api/instances/%00", 400),
        new("/api/instances/i%00x", 400),
        new("/dashboard/dashboard.js%00.png", 400) { Key = null },
        new("/dashboard/dashboard.js%00", 400) { Key = null },
        new("/v1/usage-reports/r%00", 400) { Key = null, Headers = [BearerReportKey] },
        new("/dashboard/%2e%2e/appsettings.json", 404, "not_found", "No route serves this path") { Key = null },
        new("/dashboard/%2e%2e%2fappsettings.json", 404, "not_found", "The dashboard has no file of this name") { Key = null },
        new("/dashboard/../appsettings.json", 404, "not_found", "No route serves this path") { Key = null },
        new("/dashboard/..%2f..%2fappsettings.json", 404, "not_found", "The dashboard has no file of this name") { Key = null },
        new("/dashboard/./dashboard.js", 200) { Key = null, MediaType = "text/javascript" },
        new("/dashboard//dashboard.js", 404, "not_found", "No route serves this path") { Key = null },
        new("/api/instances/%2e%2e", 404, "not_found", "No route serves this path"),
        new("/api/instances/..%2F..%2Fappsettings.json", 404, "not_found", "No instance with this id"),
        new("/api/instances/%ED%A0%80", 404, "not_found", "No instance with this id"),
        new("/api/instances/%01", 400, "invalid_instance_id", "without control characters"),
        new("/api/instances/" + new string('i', 1025), 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/" + new string('i', 6000), 400, "invalid_instance_id", "1-1024 characters"),
        new("/api/instances/" + new string('i', 9000), 414),
        new("/api/stats/active-users?x=" + new string('a', 9000), 414),
        new("/v1/usage-reports/%2e%2e", 404, "not_found", "No route serves this path") { Key = null, Headers = [BearerReportKey] },
        new("/v1/usage-reports/..%2F..%2Fx", 404, "not_found", "No usage report with this id") { Key = null, Headers = [BearerReportKey] },
        new("/v1/usage-reports/%ED%A0%80", 404, "not_found", "No usage report with this id") { Key = null, Headers = [BearerReportKey] },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key once") { Headers = ["x-functions-key: " + Key] },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key once") { Key = "wrong", Headers = ["x-functions-key: " + Key] },
        new($"/api/stats/active-users?{Range}", 401, "unauthorized", "admin key") { Key = null, Headers = ["x-functions-key:"] },
        new($"/api/stats/active-users?{Range}&code=" + Key, 401, "unauthorized", "admin key once") { Key = null, Headers = ["x-functions-key:"] },
        new($"/api/stats/active-users?{Range}&code={Key}&code={Key}", 401, "unauthorized", "admin key once") { Key = null },
        new($"/api/stats/active-users?{Range}&code=&code=" + Key, 401, "unauthorized", "admin key") { Key = null },
        new($"/api/stats/active-users?from=2026-02-30&to=2026-03-01", 400, "invalid_range", DayForm),
        new($"/api/stats/active-users?{Range}&format=xml", 400, "invalid_format", "json or csv"),
        new($"/api/usage?customer=acme&customer=globex", 400, "repeated_parameter", "customer is given 2 times"),
        new("/v1/usage-reports/never-sent", 401, "unauthorized", "one Authorization header") { Key = null, Headers = [BearerReportKey, BearerReportKey] },
        new($"/api/stats/active-users?{Range}", 200) { Method = "HEAD" },
        new("/api/stats/active-users?from=2026-02-30&to=2026-03-01", 400, "invalid_range") { Method = "HEAD" },
        new("/dashboard/dashboard.js", 200) { Method = "HEAD", Key = null, MediaType = "text/javascript" },
        new("/dashboard/no-such-file", 404, "not_found") { Method = "HEAD", Key = null },
        new("/v1/usage-reports/never-sent", 404, "not_found") { Method = "HEAD", Key = null, Headers = [BearerReportKey] },
    ];

    /// <summary>The host on Kestrel without its timers, whose schedule rows would be the only writes.</summary>
    internal static Task<LocalHostProcess> StartKestrelAsync(AzuriteFixture azurite) =>
        LocalHostProcess.StartAsync(azurite, new Dictionary<string, string?> { ["TelemetryDisableTimers"] = "true" }, TestContext.Current.CancellationToken);

    [Fact]
    public async Task Odd_read_api_queries_and_headers_get_their_exact_status_and_write_nothing() =>
        await RunInProcessAsync(ReadApi);

    [Fact]
    public async Task The_admin_key_is_the_header_else_the_code_and_a_missing_empty_wrong_or_repeated_one_gets_401() =>
        await RunInProcessAsync(Keys);

    [Fact]
    public async Task Odd_instance_ids_get_400_or_404_and_write_nothing() =>
        await RunInProcessAsync(InstanceIds);

    [Fact]
    public async Task Odd_usage_queries_get_their_exact_status_and_write_nothing() =>
        await RunInProcessAsync(Usage);

    [Fact]
    public async Task Odd_usage_report_ids_and_credentials_get_404_or_401_and_write_nothing() =>
        await RunInProcessAsync(UsageReportStatus);

    [Fact]
    public async Task Names_that_are_not_dashboard_files_get_404_with_the_json_body() =>
        await RunInProcessAsync(Dashboard);

    [Fact]
    public async Task Odd_admin_requests_are_refused_with_a_reason_and_write_nothing() =>
        await RunInProcessAsync(AdminRefusals);

    [Fact]
    public async Task Sweep_and_retention_ignore_an_odd_query()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Hostile.Now));
        var client = host.CreateClient();
        foreach (var route in new[] { "/api/admin/sweep", "/api/admin/retention" })
        {
            var request = new ReadRequest(route + "?from=%00&to=%ED%A0%80&" + LongText, 200) { Method = "POST" };
            var answer = await ReadRequests.SendAsync(client, request);
            Assert.True(ReadRequests.Problem(request, answer) is null, $"{request}: {answer}");
        }
    }

    [Fact]
    public async Task Path_tricks_sent_as_written_get_their_exact_status_from_the_host_on_kestrel_and_write_nothing()
    {
        await using var host = await StartKestrelAsync(azurite);
        var failures = new List<string>();
        foreach (var request in OnKestrel)
        {
            var answer = await ReadRequests.SendRawAsync(host, request);
            if (ReadRequests.Problem(request, answer, bodyDropped: true) is { } problem)
            {
                failures.Add($"{request}: {problem}; got {answer}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        await ReadRequests.AssertNothingStoredAsync(host.Tables);
    }

    private async Task RunInProcessAsync(ReadRequest[] requests)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Hostile.Now));
        var client = host.CreateClient();
        var failures = new List<string>();
        foreach (var request in requests)
        {
            var answer = await ReadRequests.SendAsync(client, request);
            if (ReadRequests.Problem(request, answer) is { } problem)
            {
                failures.Add($"{request}: {problem}; got {answer}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {requests.Length} cases:\n" + string.Join("\n", failures));
        await Hostile.AssertNothingStoredAsync(host);
    }
}
