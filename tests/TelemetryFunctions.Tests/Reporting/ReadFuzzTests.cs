using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Http;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>
/// A bounded, seeded fuzz of every route that is not ingest: valid read, usage, usage-report status, dashboard and
/// admin requests whose query and last path segment are mutated at random (odd dates, repeated and empty parameters,
/// percent-encoded control characters, lone surrogates, traversal, long values, odd Accept headers and keys). No
/// answer may be a 5xx; every answer must be a 2xx of the route's type or a 4xx with the JSON error body; and no
/// request but an admin one may change a table.
/// </summary>
/// <remarks>
/// Conventions of <see cref="IngestFuzzTests"/>: TELEMETRY_FUZZ_CASES sets the number of cases (300 by default),
/// TELEMETRY_FUZZ_SEED the seed; each case draws from its own generator seeded with (seed, case), so a failure names
/// the seed and case that replay it.
/// </remarks>
public sealed class ReadFuzzTests(AzuriteFixture azurite)
{
    private const int DefaultSeed = 20250615;
    private const int DefaultCases = 300;

    /// <summary>Valid requests: route, query, whether it sends the admin key, the report key, and its 200 media type.</summary>
    private static readonly (string Path, string Query, string Method, string MediaType)[] Valid =
    [
        ("/api/stats/active-users", "from=2025-06-01&to=2025-06-10", "GET", "application/json"),
        ("/api/stats/active-users", "from=2025-06-01&to=2025-06-10&format=csv&by=os", "GET", "text/csv"),
        ("/api/stats/installations", "from=2025-05-01&to=2025-06-14&by=version", "GET", "application/json"),
        ("/api/stats/instances", "format=json", "GET", "application/json"),
        ("/api/instances/inst-7f3a", "", "GET", "application/json"),
        ("/api/usage", "customer=acme&from=2025-01&to=2025-06", "GET", "application/json"),
        ("/api/usage", "from=2025-01-01&to=2025-06-14&format=csv", "GET", "text/csv"),
        ("/v1/usage-reports/report-2025-06", "", "GET", "application/json"),
        ("/api/openapi.json", "", "GET", "application/json"),
        ("/dashboard", "", "GET", "text/html"),
        ("/dashboard/dashboard.js", "", "GET", "text/javascript"),
        ("/dashboard/dashboard.css", "", "GET", "text/css"),
        ("/api/admin/rollup", "from=2025-06-01&to=2025-06-10", "POST", "application/json"),
    ];

    private static readonly string[] Values =
    [
        "", "2026-02-30", "99999-01-01", "0001-01-01", "9999-12-31", "-1", "2025-06-15", "2025-06-16", "2025-06", "2025-13",
        "csv", "json", "CSV", "xml", "os", "version", "acme", "ACME", "a", "null", "undefined", "%00", "%01", "%0A", "%ED%A0%80",
        "%ED%B0%80%ED%A0%80", "%C0%AF", "%FF", "%", "%25", "%zz", "%2F", "..%2F..%2Fappsettings.json", "%2e%2e%2f", "%E2%80%AE",
        "'%20or%20'1'%20eq%20'1", "1e999", "NaN", "2025-06-01T00:00:00Z",
    ];

    private static readonly string[] Names = ["from", "to", "format", "by", "customer", "code", "x", "", "%00", "%ED%A0%80"];

    private static readonly string[] Accepts =
    [
        "text/csv", "text/csv;q=0", "*/*", "application/json", "text/csv;q=NaN", "text/csv;q=1e999", "}{;;==", "text/html",
        "text/csv, application/json;q=0.5", "application/json;q=0, text/csv;q=0",
    ];

    [Fact]
    public async Task Mutated_read_and_admin_requests_never_get_a_server_error_and_reads_never_write()
    {
        var seed = EnvironmentInt("TELEMETRY_FUZZ_SEED", DefaultSeed);
        var cases = EnvironmentInt("TELEMETRY_FUZZ_CASES", DefaultCases);
        TestContext.Current.TestOutputHelper?.WriteLine($"Fuzzing the read, usage, dashboard and admin routes: seed {seed}, {cases} cases.");
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Hostile.Now));
        var client = host.CreateClient();
        var failures = new List<string>();
        var statuses = new Dictionary<int, int>();
        var unsent = 0;
        var rows = await RowVersionsAsync(host);

        for (var i = 0; i < cases && failures.Count < 10; i++)
        {
            var random = new Random(unchecked((seed * 7919) + i));
            var mutations = new List<string>();
            var (request, mediaType) = Mutate(random, Valid[random.Next(Valid.Length)], mutations);
            ReadAnswer answer;
            try
            {
                answer = await ReadRequests.SendAsync(client, request);
            }
            catch (InvalidOperationException) when (request.Target.Split('?')[0].Contains("%00", StringComparison.Ordinal))
            {
                // The in-process server refuses a NUL in the path before the app runs (Kestrel answers 400 with no body).
                unsent++;
                continue;
            }

            statuses[answer.Status] = statuses.GetValueOrDefault(answer.Status) + 1;
            var problem = Check(request, answer, mediaType);
            var rowsAfter = await RowVersionsAsync(host);
            if (problem is null && request.Method != "POST" && !rowsAfter.SetEquals(rows))
            {
                problem = "a read request wrote rows: " + string.Join(", ", rowsAfter.Except(rows).Take(5));
            }

            rows = rowsAfter;
            if (problem is not null)
            {
                failures.Add($"seed {seed}, case {i} [{string.Join(", ", mutations)}]: {problem}\n  request: {request}\n  answer: {answer}");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine("Statuses: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} x{s.Value}")) + $"; {unsent} with a NUL in the path not sent.");
        Assert.True(failures.Count == 0, $"Replay with TELEMETRY_FUZZ_SEED={seed}.\n" + string.Join("\n", failures));
    }

    /// <summary>What is wrong with an answer, or null: a 5xx, a 2xx that is not the route's type, a 4xx without the JSON error body.</summary>
    private static string? Check(ReadRequest request, ReadAnswer answer, string mediaType)
    {
        if (answer.Status >= 500)
        {
            return "a server error";
        }

        if (answer.Status is >= 200 and < 300)
        {
            // A CSV route asked for JSON (format or Accept mutated), or the other way round, is still a good answer.
            var expected = mediaType is "application/json" or "text/csv" ? new[] { "application/json", "text/csv" } : [mediaType];
            if (!expected.Contains(answer.MediaType))
            {
                return $"a {answer.Status} of type {answer.MediaType}, expected {mediaType}";
            }

            return request.Method == "HEAD" ? null : ReadRequests.ContentProblem(answer);
        }

        if (answer.Status is < 400 or >= 500)
        {
            return "neither a 2xx nor a 4xx";
        }

        return request.Method == "HEAD"
            ? answer.MediaType == "application/json" ? null : "a HEAD refusal that is not JSON-typed"
            : ReadRequests.ErrorProblem(answer, code: null, reason: null);
    }

    private static (ReadRequest Request, string MediaType) Mutate(Random random, (string Path, string Query, string Method, string MediaType) valid, List<string> applied)
    {
        var path = valid.Path;
        var parameters = valid.Query.Length == 0 ? [] : valid.Query.Split('&').Select(p => p.Split('=', 2)).Select(p => (Name: p[0], Value: p[1])).ToList();
        var headers = new List<string>();
        string? key = ReadApiTests.AdminKey;
        var method = valid.Method;
        if (path.StartsWith("/v1/usage-reports/", StringComparison.Ordinal))
        {
            key = null;
            headers.Add("Authorization: Bearer " + ReadRequests.ReportKey);
        }

        for (var m = random.Next(1, 5); m > 0; m--)
        {
            switch (random.Next(12))
            {
                case 0 when parameters.Count > 0:
                    var at = random.Next(parameters.Count);
                    parameters[at] = (parameters[at].Name, Pick(random, Values));
                    applied.Add($"value of {parameters[at].Name} replaced");
                    break;
                case 1 when parameters.Count > 0:
                    var repeated = parameters[random.Next(parameters.Count)];
                    parameters.Add((repeated.Name, random.Next(2) == 0 ? repeated.Value : Pick(random, Values)));
                    applied.Add($"{repeated.Name} repeated");
                    break;
                case 2 when parameters.Count > 0:
                    parameters.RemoveAt(random.Next(parameters.Count));
                    applied.Add("parameter removed");
                    break;
                case 3:
                    parameters.Add((Pick(random, Names), Pick(random, Values)));
                    applied.Add("parameter added");
                    break;
                case 4:
                    parameters.Add(("x", new string((char)random.Next('a', 'z' + 1), random.Next(1000, 7000))));
                    applied.Add("long parameter");
                    break;
                case 5:
                    path = ReplaceSegment(path, Pick(random, Values) + (random.Next(2) == 0 ? "" : Pick(random, Values)));
                    applied.Add("last segment replaced");
                    break;
                case 6:
                    path = ReplaceSegment(path, LastSegment(path) + Pick(random, Values));
                    applied.Add("last segment extended");
                    break;
                case 7:
                    path = ReplaceSegment(path, new string('s', random.Next(1000, 7000)));
                    applied.Add("long last segment");
                    break;
                case 8:
                    headers.Add("Accept: " + Pick(random, Accepts));
                    applied.Add("Accept");
                    break;
                case 9:
                    (key, var keyMutation) = random.Next(4) switch
                    {
                        0 => ((string?)null, "no key"),
                        1 => ("", "empty key"),
                        2 => ("wrong", "wrong key"),
                        _ => (key, "key header repeated"),
                    };
                    if (keyMutation == "key header repeated")
                    {
                        headers.Add("x-functions-key: " + ReadApiTests.AdminKey);
                    }

                    applied.Add(keyMutation);
                    break;
                case 10:
                    method = method == "POST" ? "GET" : random.Next(2) == 0 ? "HEAD" : "POST";
                    applied.Add("method " + method);
                    break;
                default:
                    var query = string.Join("&", parameters.Select(p => p.Name + "=" + p.Value));
                    if (query.Length > 0)
                    {
                        var cut = random.Next(query.Length);
                        parameters = [(query[..cut], "")];
                        applied.Add("query truncated");
                    }

                    break;
            }
        }

        var target = path + (parameters.Count == 0 ? "" : "?" + string.Join("&", parameters.Select(p => p.Value.Length == 0 && p.Name.Contains('=', StringComparison.Ordinal) ? p.Name : p.Name + "=" + p.Value)));
        return (new ReadRequest(target, 0) { Method = method, Key = key, Headers = [.. headers] }, valid.MediaType);
    }

    private static string LastSegment(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>Replaces the last segment of a route with a parameter; a fixed route gets one appended instead.</summary>
    private static string ReplaceSegment(string path, string segment) =>
        path is "/api/instances/inst-7f3a" or "/v1/usage-reports/report-2025-06" || path.StartsWith("/dashboard/", StringComparison.Ordinal)
            ? path[..(path.LastIndexOf('/') + 1)] + segment
            : path + "/" + segment;

    private static string Pick(Random random, string[] values) => values[random.Next(values.Length)];

    /// <summary>Every row of every table, as table, keys and ETag: a row added or rewritten changes the set.</summary>
    private static async Task<HashSet<string>> RowVersionsAsync(LocalHostFactory host) =>
        (await host.Tables.AllRowsAsync())
            .SelectMany(t => t.Value.Select(r => $"{t.Key}/{r.PartitionKey}/{r.RowKey}@{r.ETag}"))
            .ToHashSet(StringComparer.Ordinal);

    private static int EnvironmentInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;
}
