using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// <c>POST /v1/preview</c> against the rows ingestion then writes: each payload is previewed, then ingested into fresh
/// tables at the same (fake) moment, and every table is read back. The preview shows pseudonyms made under the preview
/// key of the host's pseudonymization key, so the payload is ingested by a host whose pseudonymization key is that
/// preview key: row for row and column for column, pseudonyms and the keys built from them included, the preview must
/// be what it stored. Fresh tables, one moment and events that carry their messageId leave none of the differences
/// docs/api.md lists (rows already stored, times of receipt, assigned message ids, a late event's day flagged for the
/// rollup) to allow for. <see cref="PreviewPseudonymTests"/> shows that the preview and the stored pseudonyms differ.
/// </summary>
public sealed class PreviewFidelityTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> Payloads() =>
    [
        "appsmith installation script sample",
        "appsmith heartbeat sample",
        "appsmith page load sample",
        "appsmith plugin usage sample",
        "camunda sample in a segment envelope",
        "mixed batch of every call",
        "installation lifecycle with a support request",
        "installation started and support request in one batch",
        "feature event declaring basic",
        "heartbeat then feature event declaring basic",
        "identify with traits",
        "several events of one instance",
    ];

    [Theory]
    [MemberData(nameof(Payloads))]
    public async Task The_preview_lists_exactly_the_rows_that_ingesting_the_same_payload_stores_under_the_preview_key(string payload)
    {
        var (body, writeKey, at) = await PayloadAsync(payload);
        var time = new FakeTimeProvider(at);
        await using var host = new LocalHostFactory(azurite, time);
        await using var storing = new LocalHostFactory(azurite, time, new()
        {
            ["Telemetry:Privacy:PseudonymizationKey"] = Pseudonymizer.PreviewKeyOf(PseudonymizationKeyOf(host)),
        });

        var preview = await PostAsync(host.CreateSegmentClient(writeKey), "/v1/preview", body);
        Assert.Equal(0, await host.Tables.TotalRowsAsync());
        var ingest = await PostAsync(storing.CreateSegmentClient(writeKey), body["batch"] is null ? "/v1/" + body["type"]!.GetValue<string>() : "/v1/batch", body);

        Assert.Equal("preview-only", preview["pseudonyms"]!.GetValue<string>());
        Assert.Equal(ingest["accepted"]!.GetValue<int>(), preview["wouldAccept"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(ingest["dropped"], preview["dropped"]), $"dropped: {ingest["dropped"]} stored, {preview["dropped"]} previewed");
        Assert.Equal(ingest["scrubbed"]!.GetValue<int>(), preview["scrubbed"]!.GetValue<int>());
        var differences = Differences(await storing.Tables.AllRowsAsync(), preview["wouldStore"]!.AsArray());
        Assert.True(differences.Count == 0, string.Join('\n', differences));
    }

    [Fact]
    public async Task The_preview_of_several_events_of_one_instance_shows_its_row_with_every_attribute_they_give()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var (body, _, _) = await PayloadAsync("several events of one instance");

        var preview = await PostAsync(host.CreateSegmentClient(), "/v1/preview", body);

        var instance = Assert.Single(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.Instances)!;
        Assert.Equal("2.0.0", instance["Version"]!.GetValue<string>());
        Assert.Equal("linux", instance["Os"]!.GetValue<string>());
        Assert.Equal("ee", instance["Edition"]!.GetValue<string>());
        Assert.Equal("basic", instance["SharingLevel"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_preview_of_a_feature_event_dropped_at_basic_lists_the_instance_row_it_still_records()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var (body, _, _) = await PayloadAsync("feature event declaring basic");

        var preview = await PostAsync(host.CreateSegmentClient(), "/v1/preview", body);

        Assert.Equal(0, preview["wouldAccept"]!.GetValue<int>());
        Assert.Equal(1, preview["dropped"]!["sharingBasic"]!.GetValue<int>());
        var instance = Assert.Single(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.Instances)!;
        Assert.Equal("basic", instance["SharingLevel"]!.GetValue<string>());
        Assert.Equal("3.0.0", instance["Version"]!.GetValue<string>());
        Assert.DoesNotContain(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.RawEvents);
    }

    /// <summary>The pseudonymization key <paramref name="host"/> is configured with.</summary>
    internal static string PseudonymizationKeyOf(LocalHostFactory host) =>
        host.Services.GetRequiredService<IOptions<TelemetryOptions>>().Value.Privacy.PseudonymizationKey;

    internal static async Task<JsonObject> PostAsync(HttpClient client, string route, JsonObject body)
    {
        using var response = await client.PostAsync(route, Segment.Json(body), TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{route}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Every row stored and not previewed, previewed and not stored, or stored with other columns than previewed.</summary>
    private static List<string> Differences(Dictionary<string, List<TableEntity>> stored, JsonArray previewed)
    {
        var differences = new List<string>();
        var expected = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var row in previewed.Select(r => r!.AsObject()))
        {
            var id = $"{row["table"]}|{row["partitionKey"]}|{row["rowKey"]}";
            if (!expected.TryAdd(id, row))
            {
                differences.Add($"previewed twice: {id}");
            }
        }

        foreach (var (table, rows) in stored)
        {
            foreach (var row in rows)
            {
                var id = $"{table}|{row.PartitionKey}|{row.RowKey}";
                if (!expected.Remove(id, out var preview))
                {
                    differences.Add($"stored, not previewed: {id}");
                    continue;
                }

                var columns = preview.Where(p => p.Key is not ("table" or "partitionKey" or "rowKey")).ToDictionary(p => p.Key, p => p.Value);
                foreach (var (column, value) in row.Where(p => p.Key is not ("PartitionKey" or "RowKey" or "Timestamp" or "odata.etag")))
                {
                    var name = column == "Payload" ? "event" : column;
                    if (!columns.Remove(name, out var shown))
                    {
                        differences.Add($"{id}: {column} stored, not previewed");
                    }
                    else if (!SameValue(value, shown))
                    {
                        differences.Add($"{id}: {column} stored as {Text(value)}, previewed as {shown?.ToJsonString()}");
                    }
                }

                differences.AddRange(columns.Keys.Select(column => $"{id}: {column} previewed, not stored"));
            }
        }

        differences.AddRange(expected.Keys.Select(id => $"previewed, not stored: {id}"));
        return differences;
    }

    private static bool SameValue(object stored, JsonNode? shown) => stored switch
    {
        byte[] payload => JsonNode.DeepEquals(JsonNode.Parse(payload), shown),
        DateTimeOffset time => shown is JsonValue v && v.TryGetValue<DateTimeOffset>(out var previewed) && previewed == time,
        _ => shown is JsonValue v && Text(stored) == (v.TryGetValue<string>(out var s) ? s : v.ToJsonString()),
    };

    private static string Text(object value) => value switch
    {
        bool flag => flag ? "true" : "false",
        byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private static async Task<(JsonObject Body, string WriteKey, DateTimeOffset At)> PayloadAsync(string payload)
    {
        async Task<(JsonObject, string, DateTimeOffset)> SeedAsync(string name, string writeKey)
        {
            var text = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", "seeds", name), TestContext.Current.CancellationToken);
            // The plugin-usage sample ends with a trailing comma, which strict JSON refuses.
            var body = JsonNode.Parse(text.Replace("\",\n}", "\"\n}", StringComparison.Ordinal))!.AsObject();
            var receivedAt = body["receivedAt"]?.GetValue<string>();
            return (body, writeKey, receivedAt is null ? Now : DateTimeOffset.Parse(receivedAt, CultureInfo.InvariantCulture));
        }

        const string Server = LocalHostFactory.WriteKey;
        const string Installer = LocalHostFactory.InstallerKey;
        switch (payload)
        {
            case "appsmith installation script sample":
                return await SeedAsync("appsmith-installation-started.json", Installer);
            case "appsmith heartbeat sample":
                return await SeedAsync("appsmith-instance-active.json", Server);
            case "appsmith page load sample":
                return await SeedAsync("appsmith-client-page-load.json", Server);
            case "appsmith plugin usage sample":
                return await SeedAsync("appsmith-plugin-usage.json", Server);
            case "camunda sample in a segment envelope":
                {
                    var (sample, _, _) = await SeedAsync("camunda-modeler-deploy.json", Server);
                    // With a messageId: without one, each request assigns another (a documented difference).
                    var envelope = new JsonObject
                    {
                        ["type"] = "track",
                        ["messageId"] = "camunda-deploy-1",
                        ["event"] = sample["event"]!.GetValue<string>(),
                        ["userId"] = sample["properties"]!["distinct_id"]!.GetValue<string>(),
                        ["properties"] = sample["properties"]!.DeepClone(),
                    };
                    return (envelope, Server, Now);
                }

            case "mixed batch of every call":
                return (Segment.Batch(
                    Event("Installation Started", new() { ["os"] = "ubuntu", ["version"] = "1.0.0" }, userId: null, anonymousId: "install-1"),
                    Event("Installation Support", new() { ["email"] = "help.me@example.com", ["os"] = "ubuntu" }, userId: null, anonymousId: "install-1"),
                    Event("Instance Active", new() { ["instanceId"] = "instance-1", ["version"] = "1.0.0", ["os"] = "linux", ["sharingLevel"] = "advanced" }),
                    Event("Report Exported", new() { ["instanceId"] = "instance-1", ["format"] = "pdf" }),
                    Call("identify", "traits", new JsonObject { ["plan"] = "pro", ["email"] = "x@example.com" }),
                    Call("page", "name", "Home"),
                    Call("group", "groupId", "group-1"),
                    Call("alias", "previousId", "old-id")), Server, Now);

            case "installation lifecycle with a support request":
                return (Segment.Batch(
                    Event("Installation Started", new() { ["os"] = "debian", ["version"] = "1.4.0" }, userId: null, anonymousId: "install-2", minutesAgo: 30),
                    Event("Installation Errors", new() { ["error"] = "port 80 in use" }, userId: null, anonymousId: "install-2", minutesAgo: 20),
                    Event("Installation Support", new() { ["email"] = "ops@example.com" }, userId: null, anonymousId: "install-2", minutesAgo: 15),
                    Event("Installation Success", new() { ["instanceId"] = "instance-5" }, userId: null, anonymousId: "install-2", minutesAgo: 10)), Installer, Now);

            case "installation started and support request in one batch":
                return (Segment.Batch(
                    Event("Installation Started", new() { ["os"] = "ubuntu" }, userId: null, anonymousId: "install-3"),
                    Event("Installation Support", new() { ["email"] = "help@example.com" }, userId: null, anonymousId: "install-3")), Installer, Now);

            case "feature event declaring basic":
                return (Event("Report Exported", new() { ["instanceId"] = "instance-3", ["sharingLevel"] = "basic", ["version"] = "3.0.0" }), Server, Now);

            case "heartbeat then feature event declaring basic":
                return (Segment.Batch(
                    Event("Instance Active", new() { ["instanceId"] = "instance-4", ["version"] = "4.0.0" }),
                    Event("Report Exported", new() { ["instanceId"] = "instance-4", ["version"] = "4.1.0", ["sharingLevel"] = "basic" })), Server, Now);

            case "identify with traits":
                return (Call("identify", "traits", new JsonObject { ["plan"] = "pro", ["company"] = new JsonObject { ["size"] = 10 }, ["name"] = "Jane" }), Server, Now);

            case "several events of one instance":
                return (Segment.Batch(
                    Event("Instance Active", new() { ["instanceId"] = "instance-2" }),
                    Event("Instance Active", new() { ["instanceId"] = "instance-2", ["version"] = "2.0.0", ["os"] = "linux", ["edition"] = "ee", ["sharingLevel"] = "basic" })), Server, Now);

            default:
                throw new ArgumentOutOfRangeException(nameof(payload), payload, null);
        }
    }

    private static JsonObject Event(string name, JsonObject properties, string? userId = "user-1", string? anonymousId = null, int minutesAgo = 5) =>
        Segment.Track(name, userId, properties: properties, timestamp: Now.AddMinutes(-minutesAgo), anonymousId: anonymousId);

    private static JsonObject Call(string type, string field, JsonNode value)
    {
        var call = new JsonObject
        {
            ["type"] = type,
            ["userId"] = "user-1",
            ["messageId"] = Guid.NewGuid().ToString(),
            ["timestamp"] = Now.AddMinutes(-5).ToString("O"),
        };
        call[field] = value;
        return call;
    }
}
