using System.Net;
using System.Text.Json.Nodes;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// <c>POST /v1/preview</c> with one event rather than a batch: no route implies the event's type there, so the event
/// names it, as an event in a batch does.
/// </summary>
public sealed class PreviewTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Previewing_one_event_without_a_type_is_refused_with_400_saying_to_give_its_type()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Report Opened");
        e.Remove("type");

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/preview", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.type is required to preview one event: give track, identify, page, screen, group or alias");
        Assert.Contains("/v1/preview does not", answer.Body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, answer.Rejected[0].GetProperty("index").GetInt32());
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Previewing_one_event_of_an_unknown_type_is_refused_with_400_naming_it()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Report Opened");
        e["type"] = "purchase";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/preview", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "event.type 'purchase' is not a Segment event type");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("track")]
    [InlineData("identify")]
    [InlineData("page")]
    public async Task Previewing_one_event_with_its_type_answers_what_would_be_stored_and_stores_nothing(string type)
    {
        await using var host = new LocalHostFactory(azurite);
        var e = new JsonObject { ["type"] = type, ["userId"] = "user-1", ["event"] = "Report Opened", ["name"] = "Reports" };

        using var response = await host.CreateSegmentClient().PostAsync("/v1/preview", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.False(body["stored"]!.GetValue<bool>());
        Assert.Equal(1, body["wouldAccept"]!.GetValue<int>());
        var raw = Assert.Single(body["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.RawEvents)!;
        Assert.Equal(type, raw["event"]!["type"]!.GetValue<string>());
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task The_preview_shows_times_in_iso_8601_and_every_row_with_its_partition_key()
    {
        await using var host = new LocalHostFactory(azurite);
        var failed = new JsonObject
        {
            ["type"] = "track",
            ["event"] = "Installation Errors",
            ["anonymousId"] = "install-preview-1",
            ["timestamp"] = DateTimeOffset.UtcNow.AddMinutes(-5).ToString("O"),
            ["properties"] = new JsonObject { ["os"] = "ubuntu", ["version"] = "1.4.0", ["instanceId"] = "inst-preview-1" },
        };

        using var response = await host.CreateSegmentClient().PostAsync("/v1/preview", Segment.Json(failed), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["wouldStore"]!.AsArray();
        var installation = Assert.Single(rows, r => r!["table"]!.GetValue<string>() == TableNames.Installations)!;
        var failedAt = installation["FailedAt"]!.GetValue<string>();
        Assert.True(DateTimeOffset.TryParseExact(failedAt, "yyyy-MM-ddTHH:mm:ss.FFFFFFFzzz", null, System.Globalization.DateTimeStyles.None, out _), failedAt);
        Assert.All(rows, r => Assert.False(string.IsNullOrEmpty(r!["partitionKey"]?.GetValue<string>()), r!["table"]!.GetValue<string>()));
        Assert.Contains(rows, r => r!["table"]!.GetValue<string>() == TableNames.Instances);
        await Hostile.AssertNothingStoredAsync(host);
    }
}
