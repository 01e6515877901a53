using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// The members of a batch around its events, as Segment's libraries send them: <c>sentAt</c>, the send time of every
/// event without one of its own, and <c>context</c>, merged into each event's context. A value that cannot be either
/// refuses the whole request with a reason naming the member, and writes nothing.
/// </summary>
public sealed class BatchEnvelopeTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = Hostile.Now;

    [Fact]
    public async Task A_batch_sentAt_corrects_the_events_without_their_own_and_an_events_own_sentAt_wins()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var batchSentAt = Now.AddHours(-5);
        var queued = Segment.Track("Queued", messageId: "queued");
        queued["timestamp"] = Iso(batchSentAt.AddMinutes(-10));
        var ownClock = Segment.Track("Own clock", messageId: "own-clock");
        ownClock["sentAt"] = Iso(Now.AddHours(-1));
        ownClock["originalTimestamp"] = Iso(Now.AddHours(-1).AddMinutes(-3));
        var batch = Segment.Batch(queued, ownClock);
        batch["sentAt"] = Iso(batchSentAt);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 2);
        var rows = (await Hostile.RawEventsAsync(host)).ToDictionary(r => Hostile.Payload(r)["messageId"]!.GetValue<string>());
        Assert.Equal(Now.AddMinutes(-10), rows["queued"].GetDateTimeOffset("EventTime"));
        Assert.Equal(batchSentAt, Hostile.Payload(rows["queued"])["sentAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(Now.AddMinutes(-3), rows["own-clock"].GetDateTimeOffset("EventTime"));
        Assert.Equal(Now.AddHours(-1), Hostile.Payload(rows["own-clock"])["sentAt"]!.GetValue<DateTimeOffset>());
    }

    [Theory]
    [InlineData("1718445600", "sentAt must be a string, not a number.")]
    [InlineData("true", "sentAt must be a string, not a boolean.")]
    [InlineData("{\"at\":\"2025-06-15T11:00:00Z\"}", "sentAt must be a string, not an object.")]
    [InlineData("[\"2025-06-15T11:00:00Z\"]", "sentAt must be a string, not an array.")]
    [InlineData("\"yesterday\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"1718445600\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"2025-02-30T00:00:00Z\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"Sun, 15 Jun 2025 11:00:00 GMT\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"\u0662\u0660\u0662\u0665-06-15T11:00:00Z\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"\uFF12\uFF10\uFF12\uFF15-06-15T11:00:00Z\"", "sentAt is not an ISO 8601 date-time")]
    [InlineData("\"1600-12-31T23:59:59Z\"", "sentAt is outside the years 1601-9999.")]
    [InlineData("\"10000-01-01T00:00:00Z\"", "sentAt is outside the years 1601-9999.")]
    public async Task A_batch_sentAt_that_is_not_an_iso_date_time_string_refuses_the_batch_with_400_naming_it(string sentAt, string reason)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var json = $$"""{"sentAt":{{sentAt}},"batch":[{{Hostile.TrackJson()}},{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        Assert.Equal("invalid_sent_at", answer.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(answer.Rejected);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("[]", "context must be an object, not an array.")]
    [InlineData("[{\"locale\":\"fr-FR\"}]", "context must be an object, not an array.")]
    [InlineData("\"fr-FR\"", "context must be an object, not a string.")]
    [InlineData("42", "context must be an object, not a number.")]
    [InlineData("false", "context must be an object, not a boolean.")]
    public async Task A_batch_context_that_is_not_an_object_refuses_the_batch_with_400_naming_it(string context, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = $$"""{"context":{{context}},"batch":[{{Hostile.TrackJson()}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        Assert.Equal("invalid_context", answer.Body.GetProperty("error").GetProperty("code").GetString());
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("{\"sentAt\":12,\"batch\":[EVENT]}", "sentAt must be a string, not a number.")]
    [InlineData("{\"context\":[],\"batch\":[EVENT]}", "context must be an object, not an array.")]
    public async Task A_preview_of_a_batch_with_a_malformed_sentAt_or_context_is_refused_the_same_way(string json, string reason)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/preview", json.Replace("EVENT", Hostile.TrackJson(), StringComparison.Ordinal));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_null_batch_sentAt_and_context_are_the_same_as_none()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var json = $$"""{"sentAt":null,"context":null,"batch":[{{Hostile.TrackJson("m-1", $"\"timestamp\":\"{Iso(Now.AddMinutes(-7))}\"")}}]}""";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", json);

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(Now.AddMinutes(-7), row.GetDateTimeOffset("EventTime"));
    }

    [Fact]
    public async Task A_batch_context_is_merged_into_every_event_and_a_key_of_the_events_own_context_wins()
    {
        await using var host = new LocalHostFactory(azurite);
        var plain = Segment.Track("Plain", messageId: "plain");
        var french = Segment.Track("Own locale", messageId: "own-locale");
        french["context"] = new JsonObject { ["locale"] = "fr-FR", ["app"] = new JsonObject { ["build"] = "7" } };
        var batch = Segment.Batch(plain, french);
        batch["context"] = new JsonObject
        {
            ["locale"] = "en-US",
            ["library"] = new JsonObject { ["name"] = "analytics-node", ["version"] = "3.1.0" },
            ["app"] = new JsonObject { ["name"] = "Reports", ["build"] = "5" },
        };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 2);
        var contexts = (await Hostile.RawEventsAsync(host)).Select(Hostile.Payload).ToDictionary(p => p["messageId"]!.GetValue<string>(), p => p["context"]!);
        Assert.Equal("en-US", contexts["plain"]["locale"]!.GetValue<string>());
        Assert.Equal("analytics-node", contexts["plain"]["library"]!["name"]!.GetValue<string>());
        Assert.Equal("Reports", contexts["plain"]["app"]!["name"]!.GetValue<string>());
        Assert.Equal("fr-FR", contexts["own-locale"]["locale"]!.GetValue<string>());
        Assert.Equal("analytics-node", contexts["own-locale"]["library"]!["name"]!.GetValue<string>());

        // The event's own key wins whole: its app object replaces the batch's, it is not merged key by key.
        Assert.Equal("""{"build":"7"}""", contexts["own-locale"]["app"]!.ToJsonString());
    }

    [Fact]
    public async Task A_batch_context_is_scrubbed_of_personal_data_like_an_events_own_context()
    {
        await using var host = new LocalHostFactory(azurite);
        var batch = Segment.Batch(Segment.Track("First"), Segment.Track("Second"));
        batch["context"] = new JsonObject
        {
            ["ip"] = "203.0.113.7",
            ["traits"] = new JsonObject { ["email"] = "jane@example.com" },
            ["note"] = "sent for jane@example.com",
            ["locale"] = "en-US",
        };

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 2);
        Assert.True(answer.Body.GetProperty("scrubbed").GetInt32() > 0, answer.ToString());
        var rows = await Hostile.RawEventsAsync(host);
        Assert.Equal(2, rows.Count);
        foreach (var payload in rows.Select(Hostile.Payload))
        {
            var context = payload["context"]!.AsObject();
            var stored = payload.ToJsonString();
            Assert.False(context.ContainsKey("ip"), stored);
            Assert.DoesNotContain("203.0.113.7", stored, StringComparison.Ordinal);
            Assert.DoesNotContain("jane@example.com", stored, StringComparison.Ordinal);
            Assert.Equal("en-US", context["locale"]!.GetValue<string>());
        }
    }

    private static string Iso(DateTimeOffset value) => value.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
