using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// A bounded, seeded fuzz of <c>/v1/batch</c>: valid batches mutated at random (truncated, bytes flipped, deep
/// nesting, huge numbers, odd Unicode and lone surrogate escapes, duplicate keys, wrong types, garbage) must never
/// get a 5xx, always get a JSON answer with <c>success</c>, and only events reported as accepted may be stored; a request with
/// none accepted must leave every table unchanged.
/// </summary>
/// <remarks>
/// TELEMETRY_FUZZ_CASES sets the number of cases (300 by default); TELEMETRY_FUZZ_SEED the seed (fixed by default,
/// so a run is repeatable). Each case draws from its own generator seeded with (seed, case), so a failure names
/// the seed and case that replay it.
/// </remarks>
public sealed class IngestFuzzTests(AzuriteFixture azurite)
{
    private const int DefaultSeed = 20250615;
    private const int DefaultCases = 300;

    private static readonly string[] EventNames = ["Report Opened", "Instance Active", "Installation Started", "Feature Used", "Instance Health"];
    private static readonly string[] EnvelopeFields = ["context", "sentAt", "writeKey", "integrations", "timestamp"];
    private static readonly string[] Fields = ["userId", "anonymousId", "event", "type", "messageId", "timestamp", "originalTimestamp", "sentAt", "properties", "context", "traits", "name", "groupId", "previousId"];

    private static readonly string[] Numbers = ["1e999", "-1e999", "1E+400", "1e308", "1e-400", "-0", "123456789012345678901234567890123456789", "9007199254740993"];

    private static readonly string[] OddStrings =
    [
        "\"\\uD800\"", "\"\\uDFFF\"", "\"\\uDC00\\uD800\"", "\"a\\uD800b\"", "\"\\uD83D\\uDE00\"", "\"\\u0000\"", "\"a\\u0001b\"",
        "\"\u200B\u200D\u202E\u2067\"", "\"e\u0301\"", "\"\uFFFF\uFEFF\"", "\"\U0001F469\u200D\U0001F467\"", "\"a/b\\\\c#d?e\"",
    ];

    private static readonly string[] JsonValues =
    [
        .. Numbers, .. OddStrings,
        "1", "-1", "0", "true", "false", "null", "[]", "{}", "\"\"", "\"x\"", "\"null\"", "\"undefined\"", "\"0\"",
        "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[\"a\",1,null,{}]", "\"1600-01-01T00:00:00Z\"", "\"0000-01-01T00:00:00Z\"",
        "\"10000-01-01T00:00:00Z\"", "\"9999-12-31T23:59:59-01:00\"", "\"2099-01-01T00:00:00Z\"", "\"not a date\"",
        "\"2025-06-15T12:00:00.123456789Z\"", "\"user@example.com\"", "\"10.1.2.3\"",
    ];

    private static readonly byte[][] BadBytes = [[0xFF], [0xFE], [0xC0, 0xAF], [0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00], [0xEF, 0xBB, 0xBF]];

    [Fact]
    public async Task Mutated_batches_never_get_a_server_error_and_only_events_reported_accepted_are_stored_and_fully_rejected_ones_write_no_table()
    {
        var seed = EnvironmentInt("TELEMETRY_FUZZ_SEED", DefaultSeed);
        var cases = EnvironmentInt("TELEMETRY_FUZZ_CASES", DefaultCases);
        TestContext.Current.TestOutputHelper?.WriteLine($"Fuzzing /v1/batch: seed {seed}, {cases} cases.");
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Hostile.Now));
        var client = host.CreateSegmentClient();
        var accepted = 0;
        var failures = new List<string>();
        var statuses = new Dictionary<int, int>();
        var rows = await RowVersionsAsync(host);

        for (var i = 0; i < cases && failures.Count < 10; i++)
        {
            var random = new Random(unchecked((seed * 7919) + i));
            var mutations = new List<string>();
            var body = Mutate(random, ValidBatch(random, seed, i), mutations, out var gzip);
            using var content = new ByteArrayContent(gzip ? HostileBodyTests.Gzip(body) : body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            if (gzip)
            {
                content.Headers.ContentEncoding.Add("gzip");
            }

            using var response = await client.PostAsync("/v1/batch", content, Hostile.Cancel);
            var text = await response.Content.ReadAsStringAsync(Hostile.Cancel);
            statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
            var problem = Check(response.StatusCode, text, out var acceptedHere);
            accepted += acceptedHere;

            // A request with nothing accepted must leave every table as it was: no row added, none rewritten.
            var rowsAfter = await RowVersionsAsync(host);
            if (problem is null && acceptedHere == 0 && !rowsAfter.SetEquals(rows))
            {
                problem = "nothing was accepted, yet rows were written: " + string.Join(", ", rowsAfter.Except(rows).Take(5));
            }

            rows = rowsAfter;
            if (problem is not null)
            {
                failures.Add($"seed {seed}, case {i} [{string.Join(", ", mutations)}]: {problem}\n  answer: {(int)response.StatusCode} {Shorten(text)}\n  body: {Shorten(Encoding.UTF8.GetString(body))}");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine("Statuses: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} x{s.Value}")) + $"; {accepted} events accepted.");
        Assert.True(failures.Count == 0, $"Replay with TELEMETRY_FUZZ_SEED={seed}.\n" + string.Join("\n", failures));
        var stored = (await Hostile.RawEventsAsync(host)).Count;
        Assert.True(stored == accepted, $"seed {seed}: {stored} raw events stored, but the answers reported {accepted} accepted. Replay with TELEMETRY_FUZZ_SEED={seed}.");
    }

    /// <summary>Every row of every table, as table, keys and ETag: a row added or rewritten changes the set.</summary>
    private static async Task<HashSet<string>> RowVersionsAsync(LocalHostFactory host) =>
        (await host.Tables.AllRowsAsync())
            .SelectMany(t => t.Value.Select(r => $"{t.Key}/{r.PartitionKey}/{r.RowKey}@{r.ETag}"))
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>What is wrong with an answer, or null; and how many events it reports accepted.</summary>
    private static string? Check(HttpStatusCode status, string text, out int accepted)
    {
        accepted = 0;
        if ((int)status >= 500)
        {
            return "a server error";
        }

        JsonElement body;
        try
        {
            body = JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return "the answer is not JSON";
        }

        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("success", out var success) || success.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            return "the answer has no boolean 'success'";
        }

        if (status == HttpStatusCode.OK)
        {
            if (!success.GetBoolean() || !body.TryGetProperty("accepted", out var count) || !count.TryGetInt32(out accepted))
            {
                return "a 200 without success and an accepted count";
            }

            return null;
        }

        if ((int)status is < 400 or >= 500 || success.GetBoolean())
        {
            return "neither a 200 nor a 4xx refusal";
        }

        return body.TryGetProperty("error", out var error) && error.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 }
            ? null
            : "a refusal without a reason";
    }

    private static string ValidBatch(Random random, int seed, int @case)
    {
        var events = new List<string>();
        var count = random.Next(1, 6);
        for (var k = 0; k < count; k++)
        {
            var id = $"fz{seed}-{@case}-{k}-{random.Next():x8}";
            var subject = random.Next(3) switch
            {
                0 => $"\"userId\":\"user-{random.Next(1000)}\"",
                1 => $"\"anonymousId\":\"anon-{random.Next(1000)}\"",
                _ => $"\"userId\":\"user-{random.Next(1000)}\",\"anonymousId\":\"anon-{random.Next(1000)}\"",
            };
            var time = Hostile.Now.AddMinutes(-random.Next(0, 60 * 24 * 5)).ToString("O", CultureInfo.InvariantCulture);
            var properties = $"{{\"instanceId\":\"instance-{random.Next(50)}\",\"version\":\"1.{random.Next(10)}.0\",\"count\":{random.Next(100)},\"nested\":{{\"list\":[1,\"two\",{{\"three\":3}}]}}}}";
            var body = random.Next(6) switch
            {
                0 => $"\"type\":\"identify\",\"traits\":{{\"plan\":\"pro\"}}",
                1 => $"\"type\":\"page\",\"name\":\"Home\",\"properties\":{properties}",
                2 => $"\"type\":\"group\",\"groupId\":\"group-{random.Next(10)}\"",
                3 => $"\"type\":\"alias\",\"previousId\":\"old-{random.Next(10)}\"",
                _ => $"\"type\":\"track\",\"event\":\"{EventNames[random.Next(EventNames.Length)]}\",\"properties\":{properties}",
            };
            events.Add($"{{{body},{subject},\"messageId\":\"{id}\",\"timestamp\":\"{time}\",\"context\":{{\"library\":{{\"name\":\"fuzz\",\"version\":\"1.0\"}}}}}}");
        }

        var sentAt = random.Next(2) == 0 ? $"\"sentAt\":\"{Hostile.Now.ToString("O", CultureInfo.InvariantCulture)}\"," : "";
        return $"{{{sentAt}\"batch\":[{string.Join(",", events)}]}}";
    }

    private static byte[] Mutate(Random random, string json, List<string> applied, out bool gzip)
    {
        var textMutations = random.Next(0, 4);
        for (var m = 0; m < textMutations; m++)
        {
            var kind = random.Next(10);
            json = kind switch
            {
                0 => InsertMember(random, json, "\"deep\":" + Nest(random.Next(1, 600), random.Next(2) == 0)),
                1 => InsertMember(random, json, "\"n\":" + Pick(random, Numbers)),
                2 => InsertMember(random, json, "\"s\":" + Pick(random, OddStrings)),
                3 => InsertMember(random, json, Pick(random, OddStrings) + ":1"),
                4 => InsertMember(random, json, "\"messageId\":\"dup\""),
                5 => ReplaceField(random, json),
                6 => InsertMember(random, json, $"\"{Pick(random, Fields)}\":{Pick(random, JsonValues)}"),
                7 => InsertMember(random, json, random.Next(2) == 0 ? "\"" + new string('k', random.Next(250, 260)) + "\":1" : "\"k\\u0001\":1"),
                8 => InsertMember(random, json, "\"big\":\"" + BigText(random) + "\""),
                _ => json.Insert(1, $"\"{Pick(random, EnvelopeFields)}\":{Pick(random, JsonValues)},"),
            };
            applied.Add(kind switch
            {
                0 => "deep nesting",
                1 => "extreme number",
                2 => "odd unicode value",
                3 => "odd unicode name",
                4 => "duplicate key",
                5 => "wrong type",
                6 => "odd field value",
                7 => "long or control-character property name",
                8 => "big string",
                _ => "odd batch member",
            });
        }

        var bytes = Encoding.UTF8.GetBytes(json);
        var byteMutations = random.Next(4) switch { 0 => 1, 1 => 2, _ => 0 };
        for (var m = 0; m < byteMutations; m++)
        {
            switch (random.Next(6))
            {
                case 0:
                    bytes = bytes[..random.Next(bytes.Length)];
                    applied.Add("truncated");
                    break;
                case 1:
                    for (var f = random.Next(1, 9); f > 0 && bytes.Length > 0; f--)
                    {
                        bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    }

                    applied.Add("bytes flipped");
                    break;
                case 2:
                    var at = random.Next(bytes.Length + 1);
                    bytes = [.. bytes[..at], .. BadBytes[random.Next(BadBytes.Length)], .. bytes[at..]];
                    applied.Add("invalid UTF-8 inserted");
                    break;
                case 3:
                    var garbage = new byte[random.Next(0, 2000)];
                    random.NextBytes(garbage);
                    bytes = random.Next(2) == 0 ? garbage : [.. bytes[..(bytes.Length / 2)], .. garbage];
                    applied.Add("garbage");
                    break;
                case 4:
                    var start = random.Next(bytes.Length);
                    var length = random.Next(Math.Min(64, bytes.Length - start) + 1);
                    bytes = random.Next(2) == 0 ? [.. bytes[..start], .. bytes[(start + length)..]] : [.. bytes[..(start + length)], .. bytes[start..]];
                    applied.Add("span removed or repeated");
                    break;
                default:
                    bytes = [.. bytes, .. Encoding.UTF8.GetBytes(random.Next(2) == 0 ? "{}" : " x")];
                    applied.Add("trailing bytes");
                    break;
            }
        }

        gzip = random.Next(8) == 0;
        if (gzip)
        {
            applied.Add("gzip");
        }

        return bytes;
    }

    /// <summary>Inserts <c>member,</c> right after a randomly chosen '{' (an object's start, or one inside a string: either is fair game).</summary>
    private static string InsertMember(Random random, string json, string member)
    {
        var positions = Enumerable.Range(0, json.Length).Where(p => json[p] == '{').ToList();
        var at = positions[random.Next(positions.Count)] + 1;
        return json.Insert(at, member + (at < json.Length && json[at] == '}' ? "" : ","));
    }

    /// <summary>Replaces the value of one occurrence of a known field with an arbitrary JSON value.</summary>
    private static string ReplaceField(Random random, string json)
    {
        var key = "\"" + Pick(random, Fields) + "\":";
        var at = json.IndexOf(key, StringComparison.Ordinal);
        if (at < 0)
        {
            return json;
        }

        var valueStart = at + key.Length;
        var valueEnd = ValueEnd(json, valueStart);
        return json[..valueStart] + Pick(random, JsonValues) + json[valueEnd..];
    }

    /// <summary>Where the JSON value starting at <paramref name="start"/> ends (for the well-formed text this generator writes).</summary>
    private static int ValueEnd(string json, int start)
    {
        var depth = 0;
        var inString = false;
        for (var i = start; i < json.Length; i++)
        {
            var c = json[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                    if (depth == 0)
                    {
                        return i + 1;
                    }
                }

                continue;
            }

            switch (c)
            {
                case '"':
                    inString = true;
                    break;
                case '{' or '[':
                    depth++;
                    break;
                case '}' or ']' when depth == 0:
                    return i;
                case '}' or ']':
                    depth--;
                    if (depth == 0)
                    {
                        return i + 1;
                    }

                    break;
                case ',' when depth == 0:
                    return i;
            }
        }

        return json.Length;
    }

    private static string Nest(int depth, bool objects) =>
        objects
            ? string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth)
            : new string('[', depth) + new string(']', depth);

    private static string Pick(Random random, string[] values) => values[random.Next(values.Length)];

    /// <summary>Text near the event size limit, some of it of characters that JSON writers escape.</summary>
    private static string BigText(Random random) => random.Next(3) switch
    {
        0 => new string('b', random.Next(20_000, 70_000)),
        1 => new string('<', random.Next(5_000, 33_000)),
        _ => string.Concat(Enumerable.Repeat("漢\U0001F600", random.Next(1_000, 5_000))),
    };

    private static string Shorten(string text) =>
        (text.Length <= 300 ? text : text[..300] + $"... ({text.Length} chars)").Replace("\n", "\\n", StringComparison.Ordinal);

    private static int EnvironmentInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;
}
