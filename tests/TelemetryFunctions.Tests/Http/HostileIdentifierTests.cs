using System.Net;
using System.Text.Json.Nodes;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile identifiers (catalogue #20, #21): characters table keys forbid, control characters, huge and
/// placeholder values. Usable ones are only ever stored as keyed hashes; the rest are refused.
/// </summary>
public sealed class HostileIdentifierTests(AzuriteFixture azurite)
{
    private static readonly char[] KeyForbidden = ['/', '\\', '#', '?'];

    public static TheoryData<string> KeyHostileIds => new()
    {
        "a/b",
        "a\\b",
        "a#b",
        "a?b",
        "/\\#?",
        "../../etc/passwd",
        "%2F%5C%23%3F",
        "x' or PartitionKey ne '",
        " padded ",
        "名前/ü\\#",
        string.Concat(Enumerable.Repeat("/\\#?", 256)),
    };

    [Theory]
    [MemberData(nameof(KeyHostileIds))]
    public async Task Identifiers_with_characters_table_keys_forbid_are_accepted_and_only_stored_as_hashes(string id)
    {
        await using var host = new LocalHostFactory(azurite);
        var ids = new[] { "u:" + id, "a:" + id, "i:" + id, "g:" + id, "p:" + id }.Select(v => v.Length > 1024 ? v[..1024] : v).ToArray();
        var batch = new JsonObject
        {
            ["batch"] = new JsonArray(
                new JsonObject { ["type"] = "track", ["event"] = "Report Opened", ["userId"] = ids[0], ["anonymousId"] = ids[1], ["properties"] = new JsonObject { ["instanceId"] = ids[2] } },
                new JsonObject { ["type"] = "track", ["event"] = "Installation Started", ["anonymousId"] = ids[1] },
                new JsonObject { ["type"] = "identify", ["userId"] = ids[0] },
                new JsonObject { ["type"] = "group", ["userId"] = ids[0], ["groupId"] = ids[3] },
                new JsonObject { ["type"] = "alias", ["userId"] = ids[0], ["previousId"] = ids[4] }),
        };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 5);
        var all = await host.Tables.AllRowsAsync();
        Assert.NotEmpty(all[TableNames.Instances]);
        Assert.NotEmpty(all[TableNames.Installations]);
        foreach (var row in all.Values.SelectMany(r => r))
        {
            Assert.True(row.PartitionKey.IndexOfAny(KeyForbidden) < 0, $"PartitionKey '{row.PartitionKey}'");
            Assert.True(row.RowKey.IndexOfAny(KeyForbidden) < 0, $"RowKey '{row.RowKey}'");
        }

        var stored = StorageProbe.Dump(all.Values.SelectMany(r => r));
        foreach (var raw in ids)
        {
            Assert.DoesNotContain(raw, stored, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_identifier_of_1024_characters_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var id = new string('u', 1024);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", userId: id));

        Hostile.AssertAccepted(answer, 1);
        Assert.DoesNotContain(id, await host.Tables.DumpAllAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("userId", "a\u0000b", "contains control characters")]
    [InlineData("userId", "a\u0001b", "contains control characters")]
    [InlineData("userId", "line\nbreak", "contains control characters")]
    [InlineData("userId", "del\u007F", "contains control characters")]
    [InlineData("userId", "c1\u0085", "contains control characters")]
    [InlineData("anonymousId", "tab\there", "contains control characters")]
    [InlineData("userId", "LONG", "is longer than 1024 characters")]
    [InlineData("anonymousId", "LONG", "is longer than 1024 characters")]
    public async Task Identifiers_with_control_characters_or_over_1024_characters_are_refused(string field, string value, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var id = value == "LONG" ? new string('x', 1025) : value;
        var e = new JsonObject { ["type"] = "track", ["event"] = "e", ["messageId"] = "m-1", [field] = id };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{field} {reason}");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("group", "groupId", "g\u0000")]
    [InlineData("alias", "previousId", "p\u001F")]
    public async Task Group_and_previous_ids_with_control_characters_are_refused(string type, string field, string id)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = new JsonObject { ["type"] = type, ["userId"] = "u", ["messageId"] = "m-1", [field] = id };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/" + type, e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{field} contains control characters");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("bad\u0000instance")]
    [InlineData("")]
    [InlineData("LONG")]
    [InlineData("null")]
    [InlineData("undefined")]
    [InlineData("0")]
    [InlineData(" None ")]
    [InlineData("\u200B\u200B")]
    public async Task An_unusable_instanceId_in_the_properties_is_dropped_not_stored(string value)
    {
        await using var host = new LocalHostFactory(azurite);
        var id = value == "LONG" ? new string('i', 1025) : value;

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: new JsonObject { ["instanceId"] = id }));

        Hostile.AssertAccepted(answer, 1);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        var stored = await Hostile.SinglePayloadAsync(host);
        Assert.False(stored["properties"]!.AsObject().ContainsKey("instanceId"));
        Assert.Null(stored["instanceKey"]);
    }

    [Theory]
    [InlineData("10.20.30.40")]
    [InlineData(" 010.020.030.040 ")]
    [InlineData("2001:db8::7")]
    [InlineData("10.0.0.5:8080")]
    [InlineData("[2001:db8::5]:443")]
    [InlineData("ip-10-0-0-5")]
    [InlineData("ip-10-0-0-5.ec2.internal")]
    [InlineData("10%2E20%2E30%2E40")]
    [InlineData("\uFF11\uFF10.\uFF12\uFF10.\uFF13\uFF10.\uFF14\uFF10")]
    [InlineData("10.20.30.40\u200B")]
    [InlineData("0xc0.0xa8.0x00.0x01")]
    public async Task An_instanceId_that_is_an_IP_address_is_discarded_not_hashed_like_an_IP_userId(string value)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Instance Active", userId: value, properties: new JsonObject { ["instanceId"] = value, ["version"] = "1.0" });

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        Assert.Equal(2, answer.Body.GetProperty("scrubbed").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        var stored = await Hostile.SinglePayloadAsync(host);
        Assert.Null(stored["instanceKey"]);
        Assert.Null(stored["userKey"]);
        Assert.Equal(
            ["userId was an IP address and was discarded", "properties.instanceId was an IP address and was discarded"],
            stored["flags"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.DoesNotContain(value.Trim(), await host.Tables.DumpAllAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("userId", "null")]
    [InlineData("userId", "NULL")]
    [InlineData("userId", "undefined")]
    [InlineData("userId", "Undefined")]
    [InlineData("userId", "0")]
    [InlineData("userId", "")]
    [InlineData("userId", "   ")]
    [InlineData("userId", " null ")]
    [InlineData("userId", "nil")]
    [InlineData("userId", "None")]
    [InlineData("userId", "NaN")]
    [InlineData("anonymousId", "null")]
    [InlineData("anonymousId", "undefined")]
    [InlineData("anonymousId", "0")]
    [InlineData("anonymousId", "")]
    [InlineData("userId", "\u200B")]
    [InlineData("userId", " \u200B\u2060\uFEFF ")]
    [InlineData("anonymousId", "\u200D\u200C")]
    [InlineData("userId", "\u200Bnull")]
    public async Task Placeholder_identifiers_are_refused(string field, string value)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = new JsonObject { ["type"] = "track", ["event"] = "e", ["messageId"] = "m-1", [field] = value };
        if (field == "anonymousId")
        {
            e["userId"] = "real-user";
        }

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{field} '{value}' is not an identifier");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("group", "groupId", "null")]
    [InlineData("group", "groupId", "")]
    [InlineData("alias", "previousId", "undefined")]
    [InlineData("alias", "previousId", "0")]
    public async Task Placeholder_group_and_previous_ids_are_refused(string type, string field, string value)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = new JsonObject { ["type"] = type, ["userId"] = "u", ["messageId"] = "m-1", [field] = value };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/" + type, e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{field} '{value}' is not an identifier");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("00")]
    [InlineData("null-user")]
    [InlineData("0x0")]
    public async Task Identifiers_that_only_resemble_placeholders_are_accepted(string id)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", userId: id));

        Hostile.AssertAccepted(answer, 1);
    }

    [Fact]
    public async Task A_userId_sent_as_a_whole_number_is_the_identifier_of_its_digits_and_is_erased_by_an_opt_out_of_them()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();

        var answer = await Hostile.PostJsonAsync(client, "/v1/track", """{"type":"track","event":"Report Opened","userId":12345678901234567890}""");

        Hostile.AssertAccepted(answer, 1);
        Assert.DoesNotContain("12345678901234567890", StorageProbe.Dump((await host.Tables.AllRowsAsync()).Values.SelectMany(r => r)), StringComparison.Ordinal);
        var optOut = await Hostile.PostJsonAsync(client, "/v1/opt-out", new JsonObject { ["userId"] = "12345678901234567890" });
        Assert.Equal(HttpStatusCode.OK, optOut.Status);
        Assert.Equal(1, optOut.Body.GetProperty("erased").GetProperty("rawEvents").GetInt32());
    }

    [Theory]
    [InlineData("instanceId", "10.0.0.5:8080")]
    [InlineData("userId", "ip-10-0-0-5")]
    public async Task An_opt_out_for_an_address_with_a_port_or_spelt_as_a_host_name_is_accepted_as_such_ids_were_stored_before(string field, string value)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/opt-out", new JsonObject { [field] = value });

        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Theory]
    [InlineData("userId", "null", "is not an identifier")]
    [InlineData("anonymousId", "undefined", "is not an identifier")]
    [InlineData("instanceId", " 0 ", "is not an identifier")]
    [InlineData("userId", "10.1.2.3", "is an IP address")]
    [InlineData("anonymousId", "2001:db8::1", "is an IP address")]
    public async Task An_opt_out_for_an_identifier_ingestion_would_never_store_is_refused_and_writes_nothing(string field, string value, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/opt-out", new JsonObject { [field] = value });

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Numeric_instance_ids_beyond_2_pow_53_stay_apart_and_an_opt_out_of_their_digits_matches()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var a = Segment.Track("Instance Active", userId: null, anonymousId: "an-1", properties: new JsonObject { ["instanceId"] = JsonNode.Parse("12345678901234567890") });
        var b = Segment.Track("Instance Active", userId: null, anonymousId: "an-2", properties: new JsonObject { ["instanceId"] = JsonNode.Parse("12345678901234567891") });

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/batch", Segment.Batch(a, b)), 2);
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.Instances)).Count);

        var optOut = await Hostile.PostJsonAsync(client, "/v1/opt-out", new JsonObject { ["instanceId"] = "12345678901234567890" });
        Assert.Equal(HttpStatusCode.OK, optOut.Status);
        Assert.Equal(1, optOut.Body.GetProperty("erased").GetProperty("rawEvents").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));

        var again = Segment.Track("Instance Active", userId: null, anonymousId: "an-3", properties: new JsonObject { ["instanceId"] = JsonNode.Parse("12345678901234567890") });
        var after = await Hostile.PostJsonAsync(client, "/v1/track", again);
        Hostile.AssertAccepted(after, 0);
        Assert.Equal(1, after.Body.GetProperty("dropped").GetProperty("optedOut").GetInt32());
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("1e3")]
    [InlineData("12345678901234567890.0")]
    [InlineData("{\"id\":\"i-1\"}")]
    [InlineData("[\"i-1\"]")]
    [InlineData("true")]
    public async Task An_instanceId_that_is_not_an_integer_or_a_string_is_flagged_and_ignored(string json)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Instance Active", properties: new JsonObject { ["instanceId"] = JsonNode.Parse(json) });

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e), 1);

        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
        var stored = await Hostile.SinglePayloadAsync(host);
        Assert.Null(stored["instanceKey"]);
        Assert.False(stored["properties"]!.AsObject().ContainsKey("instanceId"));
        Assert.Contains("properties.instanceId is not an instance identifier; ignored", stored["flags"]!.AsArray().Select(f => f!.GetValue<string>()));
    }
}
