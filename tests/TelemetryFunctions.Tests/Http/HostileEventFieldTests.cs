using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile event contents (catalogue #1, #17-#19, #22, #23, #28, #29): sizes on both sides of the event limits,
/// missing or odd fields, duplicates, mixed batches and text that must survive storage unchanged.
/// </summary>
public sealed class HostileEventFieldTests(AzuriteFixture azurite)
{
    private const int MaxEventBytes = 32 * 1024;

    [Fact]
    public async Task A_single_event_of_exactly_the_event_limit_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Hostile.TrackOfSize(MaxEventBytes));

        Hostile.AssertAccepted(answer, 1);
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Fact]
    public async Task A_single_event_one_byte_over_the_event_limit_is_refused_naming_the_limit()
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Hostile.TrackOfSize(MaxEventBytes + 1));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"the limit for one event is {MaxEventBytes} bytes");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task In_a_batch_an_event_at_the_limit_is_stored_and_one_byte_over_is_listed_as_rejected()
    {
        await using var host = new LocalHostFactory(azurite);
        var batch = Segment.Batch(Hostile.TrackOfSize(MaxEventBytes, "at-limit"), Hostile.TrackOfSize(MaxEventBytes + 1, "over-limit"));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 1);
        var rejected = Assert.Single(answer.Rejected);
        Assert.Equal(1, rejected.GetProperty("index").GetInt32());
        Assert.Contains($"batch[1] is {MaxEventBytes + 1} bytes", rejected.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("at-limit", (await Hostile.SinglePayloadAsync(host))["messageId"]!.GetValue<string>());
    }

    /// <summary>Text that JSON writers like to escape, and whether an event at the size limit made only of it can be stored.</summary>
    public static TheoryData<string, string, bool> EscapedText => new()
    {
        { "HTML-sensitive characters", "<>&'+", true },
        { "Latin-1 letters", "äöüß", true },
        { "CJK characters", "漢字かな", true },
        { "emoji", "😀🎉", false },
    };

    /// <summary>
    /// Every accepted event must fit in the one table property it is stored in (64 KiB in Azure Table storage),
    /// whatever its text turns into once written back as JSON; an event that cannot is refused before storage.
    /// </summary>
    [Theory]
    [MemberData(nameof(EscapedText))]
    public async Task An_event_at_the_limit_made_of_text_that_json_escapes_is_stored_within_the_table_property_limit_or_refused(string kind, string text, bool storable)
    {
        await using var host = new LocalHostFactory(azurite);
        var room = MaxEventBytes - Encoding.UTF8.GetByteCount(Hostile.TrackJson("m-1", "\"properties\":{\"text\":\"\"}"));
        var repeat = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(repeat.ToString()) + Encoding.UTF8.GetByteCount(text) <= room)
        {
            repeat.Append(text);
        }

        var json = Encoding.UTF8.GetBytes(Hostile.TrackJson("m-1", "\"properties\":{\"text\":\"" + repeat + "\"}"));
        Assert.InRange(json.Length, MaxEventBytes - 8, MaxEventBytes);

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/track", json);

        if (storable)
        {
            Hostile.AssertAccepted(answer, 1);
            var row = Assert.Single(await Hostile.RawEventsAsync(host));
            Assert.True(row.GetBinary("Payload").Length <= 64 * 1024, $"{kind}: a {json.Length}-byte event became a {row.GetBinary("Payload").Length}-byte payload.");
            Assert.Equal(repeat.ToString(), Hostile.Payload(row)["properties"]!["text"]!.GetValue<string>());
        }
        else
        {
            Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "once stored");
            await Hostile.AssertNothingStoredAsync(host);
        }
    }

    [Theory]
    [InlineData("""{"type":"track","event":"e","messageId":"m-1"}""", "event needs a userId or an anonymousId")]
    [InlineData("""{"type":"track","event":"e","userId":null,"anonymousId":null,"messageId":"m-1"}""", "event needs a userId or an anonymousId")]
    [InlineData("""{"type":"track","userId":"u","messageId":"m-1"}""", "event.event is required for a track event")]
    [InlineData("""{"type":"track","event":"","userId":"u","messageId":"m-1"}""", "event.event is required for a track event")]
    [InlineData("""{"type":"track","event":"   ","userId":"u","messageId":"m-1"}""", "event.event is required for a track event")]
    [InlineData("""{"type":"identify","event":"e","userId":"u","messageId":"m-1"}""", "but this endpoint accepts 'track' events")]
    public async Task A_single_track_event_missing_what_it_needs_is_refused_with_the_reason(string json, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("""{"event":"e","userId":"u"}""", "batch[1].type is required")]
    [InlineData("""{"type":"purchase","event":"e","userId":"u"}""", "batch[1].type 'purchase' is not a Segment event type")]
    [InlineData("""{"type":"TRACK","event":"e","userId":"u"}""", "batch[1].type 'TRACK' is not a Segment event type")]
    [InlineData("""{"type":"group","userId":"u"}""", "batch[1].groupId is required for a group event")]
    [InlineData("""{"type":"alias","userId":"u"}""", "batch[1].previousId is required for an alias event")]
    [InlineData("""{"type":"track","event":"tab\there","userId":"u"}""", "batch[1].event must be at most 200 characters without control characters")]
    public async Task A_batch_event_missing_what_it_needs_is_listed_as_rejected_and_the_rest_is_stored(string bad, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", Hostile.BatchJson(Hostile.TrackJson(), bad));

        Hostile.AssertAccepted(answer, 1);
        var rejected = Assert.Single(answer.Rejected);
        Assert.Equal(1, rejected.GetProperty("index").GetInt32());
        Assert.Contains(reason, rejected.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Theory]
    [InlineData(200, true)]
    [InlineData(201, false)]
    public async Task Event_names_are_accepted_up_to_200_characters(int length, bool accepted)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track(new string('n', length)));

        if (accepted)
        {
            Hostile.AssertAccepted(answer, 1);
        }
        else
        {
            Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.event must be at most 200 characters");
            await Hostile.AssertNothingStoredAsync(host);
        }
    }

    [Fact]
    public async Task An_event_without_a_messageId_is_stored_with_one_assigned_by_the_server_and_flagged()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.BatchJson("""{"type":"track","event":"e","userId":"u"}""", """{"type":"track","event":"e","userId":"u","messageId":null}""");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertAccepted(answer, 2);
        var payloads = (await Hostile.RawEventsAsync(host)).Select(Hostile.Payload).ToList();
        Assert.Equal(2, payloads.Count);
        Assert.All(payloads, p =>
        {
            Assert.StartsWith("srv-", p["messageId"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("messageId assigned by the server", p["flags"]!.AsArray().Select(f => f!.GetValue<string>()));
        });
        Assert.NotEqual(payloads[0]["messageId"]!.GetValue<string>(), payloads[1]["messageId"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_messageId_of_100_characters_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var id = new string('m', 100);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", messageId: id));

        Hostile.AssertAccepted(answer, 1);
        Assert.Equal(id, (await Hostile.SinglePayloadAsync(host))["messageId"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(101, 'm')]
    [InlineData(5000, 'm')]
    [InlineData(0, 'm')]
    [InlineData(8, '\u0007')]
    [InlineData(8, '\0')]
    public async Task A_messageId_that_is_empty_over_100_characters_or_has_control_characters_is_refused(int length, char c)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", messageId: new string(c, length)));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.messageId must be 1-100 characters without control characters");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task The_same_messageId_twice_in_one_batch_is_stored_once()
    {
        await using var host = new LocalHostFactory(azurite);
        var batch = Segment.Batch(Segment.Track("First", messageId: "same"), Segment.Track("Second", messageId: "same"));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 1);
        Assert.Equal(1, answer.Body.GetProperty("duplicates").GetInt32());
        Assert.Equal("First", (await Hostile.SinglePayloadAsync(host))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_same_messageId_sent_again_later_the_same_day_is_stored_once()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e", messageId: "retried")), 1);
        time.Advance(TimeSpan.FromHours(6));
        var again = await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e", messageId: "retried"));

        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Fact]
    public async Task The_same_messageId_without_a_timestamp_retried_across_midnight_is_stored_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 6, 15, 23, 59, 50, TimeSpan.Zero));
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e", messageId: "late")), 1);
        time.Advance(TimeSpan.FromSeconds(20));
        var again = await Hostile.PostJsonAsync(client, "/v1/track", Segment.Track("e", messageId: "late"));

        Hostile.AssertAccepted(again, 0);
        Assert.Equal(1, again.Body.GetProperty("duplicates").GetInt32());
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Fact]
    public async Task An_event_with_250_properties_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: Properties(250)));

        Hostile.AssertAccepted(answer, 1);
    }

    [Theory]
    [InlineData(251, 0)]
    [InlineData(200, 51)]
    [InlineData(0, 251)]
    public async Task An_event_with_more_than_250_properties_and_traits_is_refused(int properties, int traits)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("e", properties: Properties(properties));
        e["traits"] = Properties(traits);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "has 251 properties; the limit is 250");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Nested_properties_count_towards_the_limit()
    {
        await using var host = new LocalHostFactory(azurite);
        var nested = new JsonObject { ["group"] = Properties(250) };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: nested));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "has 251 properties");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_string_value_over_64_KiB_is_refused_naming_the_limit()
    {
        // The event limit (32 KB by default) would refuse the event first, so it is raised for the test.
        var settings = new Dictionary<string, string?> { ["Telemetry:Ingestion:MaxEventBytes"] = "262144" };
        await using var host = new LocalHostFactory(azurite, settings: settings);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: new JsonObject { ["text"] = new string('a', (64 * 1024) + 1) }));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.properties.text is longer than 65536 bytes");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("with\u0001control")]
    [InlineData("with\u0000nul")]
    [InlineData("new\nline")]
    [InlineData("\u007F")]
    [InlineData("")]
    public async Task A_property_name_with_control_characters_or_empty_is_refused(string name)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: new JsonObject { [name] = 1 }));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.properties has a property name");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("properties")]
    [InlineData("context")]
    [InlineData("traits")]
    public async Task A_property_name_over_255_characters_is_refused_wherever_it_is(string section)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("e");
        e[section] = new JsonObject { ["outer"] = new JsonObject { [new string('k', 256)] = 1 } };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{section}.outer has a property name that is empty or longer than 255 characters");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Property_names_of_255_characters_and_with_dashes_dots_and_dollars_are_kept_as_sent()
    {
        await using var host = new LocalHostFactory(azurite);
        var names = new[] { new string('k', 255), "feature-flag", "a.b", "$set", "with space", "名前" };
        var properties = new JsonObject();
        foreach (var name in names)
        {
            properties[name] = "v";
        }

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", Segment.Track("e", properties: properties));

        Hostile.AssertAccepted(answer, 1);
        var stored = (await Hostile.SinglePayloadAsync(host))["properties"]!.AsObject();
        Assert.Equal(names.Order(StringComparer.Ordinal), stored.Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("{\"bad\\u0001name\":1}", "context has a property name with control characters")]
    [InlineData("{\"app\":{\"KEY\":1}}", "context.app has a property name that is empty or longer than 255 characters")]
    [InlineData("{\"\":1}", "context has a property name that is empty")]
    public async Task A_shared_batch_context_is_held_to_the_rules_of_an_event_context(string context, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = "{\"context\":" + context.Replace("KEY", new string('k', 256), StringComparison.Ordinal) + ",\"batch\":[" + Hostile.TrackJson() + "]}";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_shared_batch_context_too_large_to_store_with_each_event_gets_every_event_rejected()
    {
        await using var host = new LocalHostFactory(azurite);
        var context = new JsonObject { ["a"] = new string('a', 30_000), ["b"] = new string('b', 30_000), ["c"] = new string('c', 10_000) };
        var batch = Segment.Batch(Segment.Track("e"), Segment.Track("e"));
        batch["context"] = context;

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "once stored");
        Assert.Equal(2, answer.Rejected.Count);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_mixed_batch_stores_the_good_events_and_lists_each_bad_one_with_its_reason()
    {
        var time = new FakeTimeProvider(Hostile.Now);
        await using var host = new LocalHostFactory(azurite, time);
        var future = Hostile.Now.AddDays(2).ToString("O");
        var events = new[]
        {
            Hostile.TrackJson("good-0"),
            """{"type":"track","event":"e","messageId":"no-ids-1"}""",
            Hostile.TrackJson("good-2"),
            """{"type":"purchase","event":"e","userId":"u","messageId":"unknown-type-3"}""",
            Hostile.TrackOfSize(MaxEventBytes + 1, "oversize-4").ToJsonString(),
            $$"""{"type":"track","event":"e","userId":"u","messageId":"future-5","timestamp":"{{future}}"}""",
            """{"type":"track","userId":"u","messageId":"no-event-6"}""",
            """{"type":"track","event":"e","userId":7.5,"messageId":"wrong-type-7"}""",
            Hostile.TrackJson("good-8"),
            """{"type":"track","event":"e","userId":"u","messageId":"surrogate-9","properties":{"s":"\uD800"}}""",
            """{"type":"track","event":"e","userId":"null","messageId":"null-id-10"}""",
            """{"type":"track","event":"e","userId":"u","messageId":"old-11","timestamp":"1600-01-01T00:00:00Z"}""",
        };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", Hostile.BatchJson(events));

        Hostile.AssertAccepted(answer, 3);
        var expected = new Dictionary<int, string>
        {
            [1] = "needs a userId or an anonymousId",
            [3] = "not a Segment event type",
            [4] = "the limit for one event",
            [5] = "in the future",
            [6] = "event is required",
            [7] = "batch[7].userId must be a string or a whole number",
            [9] = "invalid Unicode",
            [10] = "is not an identifier",
            [11] = "outside the years 1601-9999",
        };
        Assert.Equal(expected.Keys, answer.Rejected.Select(r => r.GetProperty("index").GetInt32()));
        foreach (var rejected in answer.Rejected)
        {
            var index = rejected.GetProperty("index").GetInt32();
            Assert.Contains(expected[index], rejected.GetProperty("reason").GetString(), StringComparison.Ordinal);
            if (rejected.TryGetProperty("messageId", out var messageId))
            {
                Assert.EndsWith("-" + index, messageId.GetString(), StringComparison.Ordinal);
            }
        }

        var stored = (await Hostile.RawEventsAsync(host)).Select(r => Hostile.Payload(r)["messageId"]!.GetValue<string>()).Order(StringComparer.Ordinal);
        Assert.Equal(["good-0", "good-2", "good-8"], stored);
    }

    public static TheoryData<string, string> TrickyText => new()
    {
        { "zero-width space and joiner", "a\u200Bb\u200Dc\u2060d" },
        { "right-to-left override", "\u202Egnp.exe" },
        { "bidi isolates and marks", "\u2067abc\u2069\u200F\u200E" },
        { "emoji with zero-width joiners", "\U0001F469\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466" },
        { "flag and skin tone", "\U0001F1E9\U0001F1EA \U0001F44D\U0001F3FD" },
        { "combining accent (not normalized)", "e\u0301" },
        { "precomposed accent", "\u00E9" },
        { "stacked combining marks", "Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E\u0349" },
        { "byte order mark and noncharacter", "\uFEFFx\uFFFE\uFFFF" },
        { "Arabic and Hebrew", "\u0645\u0631\u062D\u0628\u0627 \u05E9\u05DC\u05D5\u05DD" },
        { "variation selector", "\u2764\uFE0F" },
    };

    [Theory]
    [MemberData(nameof(TrickyText))]
    public async Task Unusual_unicode_round_trips_exactly(string kind, string text)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Report " + text, properties: new JsonObject { ["label"] = text, ["list"] = new JsonArray(text, text) });
        e["context"] = new JsonObject { ["locale"] = text };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        Assert.Equal(0, answer.Body.GetProperty("scrubbed").GetInt32());
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        var stored = Hostile.Payload(row);
        Assert.True(text == stored["properties"]!["label"]!.GetValue<string>(), kind);
        Assert.Equal([text, text], stored["properties"]!["list"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(text, stored["context"]!["locale"]!.GetValue<string>());
        Assert.Equal("Report " + text, stored["event"]!.GetValue<string>());
        Assert.Equal("Report " + text, row.GetString("Event"));
    }

    private static JsonObject Properties(int count)
    {
        var properties = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            properties["p" + i] = i;
        }

        return properties;
    }
}
