using System.Net;
using System.Text;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile JSON (catalogue #9, #12-#16): malformed or lenient syntax, lone surrogates, deep nesting, duplicate keys,
/// numbers out of range and wrong types. Each is refused with 400 and a reason that names the problem (and, for a
/// field, its path), and nothing is written.
/// </summary>
public sealed class HostileJsonTests(AzuriteFixture azurite)
{
    private static readonly string[] BaseMembers = ["\"type\":\"track\"", "\"event\":\"e\"", "\"userId\":\"u\"", "\"messageId\":\"m-1\""];

    private const string Valid = """{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1"}]}""";

    [Theory]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1"}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1"}]""")]
    [InlineData("""{""")]
    [InlineData(Valid + "x")]
    [InlineData(Valid + "{}")]
    [InlineData(Valid + Valid)]
    [InlineData(Valid + "]")]
    [InlineData(Valid + "\"\"")]
    [InlineData("/* comment */" + Valid)]
    [InlineData("{\"batch\":[{\"type\":\"track\",// comment\n\"event\":\"e\",\"userId\":\"u\",\"messageId\":\"m-1\"}]}")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1"},]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1",}]}""")]
    [InlineData("""{'batch':[{'type':'track','event':'e','userId':'u','messageId':'m-1'}]}""")]
    [InlineData("""{batch:[{"type":"track","event":"e","userId":"u","messageId":"m-1"}]}""")]
    [InlineData("{\"batch\":[{\"type\":\"track\",\"event\":\"e\u0001\",\"userId\":\"u\",\"messageId\":\"m-1\"}]}")]
    [InlineData("{\"batch\":[{\"type\":\"track\",\"event\":\"line\nbreak\",\"userId\":\"u\",\"messageId\":\"m-1\"}]}")]
    [InlineData("""{"batch":[{"type":"track","event":"\x","userId":"u","messageId":"m-1"}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"\u12","userId":"u","messageId":"m-1"}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1","n":01}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1","n":+1}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1","n":.5}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1","n":0x10}]}""")]
    [InlineData("""{"batch":[{"type":"track","event":"e","userId":"u","messageId":"m-1","n":undefined}]}""")]
    public async Task Malformed_or_lenient_json_is_refused_with_400(string json)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "not valid JSON");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("""[{"type":"track","event":"e","userId":"u"}]""")]
    [InlineData("\"batch\"")]
    [InlineData("42")]
    [InlineData("null")]
    [InlineData("true")]
    public async Task Json_that_is_not_an_object_is_refused_with_400(string json)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "must be a JSON object");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""\uD800""", "event.properties.note")]
    [InlineData("""\uDFFF""", "event.properties.note")]
    [InlineData("""\uDC00\uD800""", "event.properties.note")]
    [InlineData("""ok\uD800A""", "event.properties.note")]
    [InlineData("""\uD83D""", "event.properties.note")]
    public async Task A_lone_or_inverted_surrogate_in_a_single_event_is_refused_with_400(string escaped, string path)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.TrackJson(extra: "\"properties\":{\"note\":\"" + escaped + "\"}");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "invalid Unicode");
        Assert.Contains(path, answer.Reasons, StringComparison.Ordinal);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""{"type":"track","event":"\uD800","userId":"u","messageId":"m-1"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"\uD800","messageId":"m-1"}""")]
    [InlineData("""{"type":"track","event":"e","anonymousId":"\uDC00","messageId":"m-1"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"\uD800"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","context":{"a":["\uDBFF"]}}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","timestamp":"\uD800"}""")]
    [InlineData("""{"type":"\uD800","event":"e","userId":"u","messageId":"m-1"}""")]
    public async Task A_lone_surrogate_anywhere_in_an_event_gets_it_listed_as_rejected(string bad)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.BatchJson(Hostile.TrackJson(), bad);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertAccepted(answer, 1);
        var rejected = Assert.Single(answer.Rejected);
        Assert.Equal(1, rejected.GetProperty("index").GetInt32());
        Assert.Contains("batch[1]", rejected.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains("invalid Unicode", rejected.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Theory]
    [InlineData("""{"sentAt":"\uD800","batch":[EVENT]}""")]
    [InlineData("""{"context":{"note":"\uD800"},"batch":[EVENT]}""")]
    [InlineData("""{"context":{"\uDC00":"x"},"batch":[EVENT]}""")]
    [InlineData("""{"context":{"deep":{"list":["\uD800"]}},"batch":[EVENT]}""")]
    [InlineData("""{"writeKey":"\uD800","batch":[EVENT]}""")]
    [InlineData("""{"integrations":{"\uD800":true},"batch":[EVENT]}""")]
    [InlineData("""{"batch":[EVENT,{"type":"track","event":"e","userId":"u","properties":{"\uD800":1}}]}""")]
    [InlineData("""{"batch":[EVENT,{"type":"track","event":"e","userId":"u","properties":{"a\uDC00b":1}}]}""")]
    public async Task A_lone_surrogate_outside_the_events_is_refused_with_400(string template)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = template.Replace("EVENT", Hostile.TrackJson(), StringComparison.Ordinal);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "invalid Unicode");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_lone_surrogate_as_the_body_write_key_is_an_invalid_key()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = """{"writeKey":"\uD800","batch":[EVENT]}""".Replace("EVENT", Hostile.TrackJson(), StringComparison.Ordinal);

        var answer = await Hostile.PostJsonAsync(host.CreateClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.Unauthorized, "The write key is not valid");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""{"userId":"\uD800"}""")]
    [InlineData("""{"anonymousId":"a","instanceId":"\uDFFF"}""")]
    [InlineData("""{"userId":"u","\uD800":1}""")]
    public async Task A_lone_surrogate_in_an_opt_out_request_is_refused_with_400(string json)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/opt-out", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "invalid Unicode");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData(500, '{')]
    [InlineData(500, '[')]
    [InlineData(33, '{')]
    [InlineData(33, '[')]
    public async Task Json_nested_deeper_than_the_limit_is_refused_with_400(int depth, char open)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", NestedEvent(depth, open));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "nested deeper than the limit of 32 levels");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData('{')]
    [InlineData('[')]
    public async Task Json_nested_exactly_to_the_limit_is_accepted(char open)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", NestedEvent(32, open));

        Hostile.AssertAccepted(answer, 1);
    }

    [Theory]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","messageId":"m-2"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","message\u0049d":"m-2"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","userId":"v","messageId":"m-1"}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","properties":{"a":1,"a":2}}""")]
    [InlineData("""{"type":"track","event":"e","userId":"u","messageId":"m-1","context":{"list":[{"k":1,"k":1}]}}""")]
    public async Task Duplicate_keys_are_refused_with_400(string json)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "duplicate keys");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""{"event":"a","anonymousId":"x","anonymousId":"y"}""", "repeats a key in one object at line 1, byte 32 (counted from 1)")]
    [InlineData("{\n  \"type\": \"track\",\n  \"type\": \"track\"\n}", "repeats a key in one object at line 3, byte 3 (counted from 1)")]
    [InlineData("{\"batch\":[\nx]}", "not valid JSON at line 2, byte 1 (counted from 1)")]
    public async Task A_json_error_names_its_position_counted_from_1(string json, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_duplicate_batch_key_is_refused_with_400()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = $$"""{"batch":[{{Hostile.TrackJson()}}],"batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "duplicate keys");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("1e999")]
    [InlineData("-1e999")]
    [InlineData("1E+400")]
    [InlineData("[1,2,1e309]")]
    [InlineData("{\"inner\":-2e308}")]
    public async Task A_number_out_of_range_is_refused_with_400_naming_its_path(string value)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.TrackJson(extra: "\"properties\":{\"n\":" + value + "}");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "number out of range");
        Assert.Contains("event.properties.n", answer.Reasons, StringComparison.Ordinal);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_number_out_of_range_in_the_shared_batch_context_is_refused_with_400()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = $$"""{"context":{"n":1e999},"batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "number out of range");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("nan")]
    public async Task NaN_and_Infinity_literals_are_refused_with_400(string literal)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.TrackJson(extra: "\"properties\":{\"n\":" + literal + "}");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "not valid JSON");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("1e-999", 0d)]
    [InlineData("123456789012345678901234567890", 1.2345678901234568E+29)]
    [InlineData("-0", 0d)]
    [InlineData("1.7976931348623157e308", double.MaxValue)]
    public async Task Extreme_but_finite_numbers_are_accepted(string value, double expected)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.TrackJson(extra: "\"properties\":{\"n\":" + value + "}");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertAccepted(answer, 1);
        var stored = await Hostile.SinglePayloadAsync(host);
        Assert.Equal(expected, stored["properties"]!["n"]!.GetValue<double>());
    }

    [Theory]
    [InlineData("\"userId\":{\"id\":1}", "event.userId must be a string, not an object")]
    [InlineData("\"anonymousId\":4.2", "event.anonymousId must be a string or a whole number, not 4.2")]
    [InlineData("\"anonymousId\":1e3", "event.anonymousId must be a string or a whole number, not 1e3")]
    [InlineData("\"userId\":-7", "event.userId must be a string or a whole number, not -7")]
    [InlineData("\"messageId\":5", "event.messageId must be a string, not a number")]
    [InlineData("\"event\":true", "event.event must be a string, not a boolean")]
    [InlineData("\"type\":[\"track\"]", "event.type must be a string, not an array")]
    [InlineData("\"timestamp\":1700000000", "event.timestamp must be a string, not a number")]
    [InlineData("\"originalTimestamp\":{}", "event.originalTimestamp must be a string, not an object")]
    [InlineData("\"sentAt\":false", "event.sentAt must be a string, not a boolean")]
    [InlineData("\"properties\":\"x\"", "event.properties must be an object, not a string")]
    [InlineData("\"context\":[]", "event.context must be an object, not an array")]
    [InlineData("\"traits\":7", "event.traits must be an object, not a number")]
    public async Task A_wrong_type_in_a_single_event_is_refused_with_400_naming_the_field(string member, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", EventWith(member));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("\"timestamp\":1700000000", "batch[0].timestamp must be a string, not a number")]
    [InlineData("\"userId\":[\"u\"]", "batch[0].userId must be a string, not an array")]
    [InlineData("\"properties\":[1,2]", "batch[0].properties must be an object, not an array")]
    public async Task A_wrong_type_in_a_batch_event_is_refused_with_400_naming_the_field(string member, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.BatchJson(EventWith(member));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""{"batch":{}}""", "'batch' array")]
    [InlineData("""{"batch":"events"}""", "'batch' array")]
    [InlineData("""{"batch":null}""", "'batch' array")]
    [InlineData("""{"events":[]}""", "'batch' array")]
    [InlineData("""{"batch":[]}""", "no events")]
    [InlineData("""{"batch":["track"]}""", "batch[0] must be a JSON object")]
    [InlineData("""{"batch":[null]}""", "batch[0] must be a JSON object")]
    [InlineData("""{"batch":[[]]}""", "batch[0] must be a JSON object")]
    public async Task A_batch_of_the_wrong_shape_is_refused_with_400(string json, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    /// <summary>A track event whose properties hold nested objects or arrays so the whole body is <paramref name="depth"/> levels deep.</summary>
    private static string NestedEvent(int depth, char open)
    {
        var close = open == '{' ? '}' : ']';
        var levels = depth - 2; // the event object and its properties object
        var inner = new StringBuilder();
        for (var i = 0; i < levels; i++)
        {
            inner.Append(open == '{' ? "{\"a\":" : "[");
        }

        inner.Append('1');
        inner.Append(close, levels);
        return Hostile.TrackJson(extra: "\"properties\":{\"deep\":" + inner + "}");
    }

    /// <summary>A valid track event with <paramref name="member"/> replacing (or added to) its members.</summary>
    private static string EventWith(string member)
    {
        var name = member[..(member.IndexOf(':', StringComparison.Ordinal) + 1)];
        var members = BaseMembers
            .Where(m => !m.StartsWith(name, StringComparison.Ordinal))
            .Append(member);
        return "{" + string.Join(",", members) + "}";
    }
}
