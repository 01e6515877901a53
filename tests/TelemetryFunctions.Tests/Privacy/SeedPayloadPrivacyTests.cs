using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// The sample payloads of the products whose telemetry policies shaped this service, ingested verbatim:
/// they are accepted (or refused with a reason where they are not JSON), and nothing personal in them is stored.
/// </summary>
public sealed class SeedPayloadPrivacyTests(AzuriteFixture azurite)
{
    internal static readonly string[] PersonalValuesInSeeds =
    [
        // IP addresses (in userId and context.ip)
        "111.65.255.130", "203.192.213.46", "49.207.192.209",
        // raw user, anonymous and instance ids
        "anonymoustId", "70280e5dd9e61e5e91526ac8704bbd68d3f75ebad67ba439f4c354d7",
        "a3d8b23b9b0cac986af79f4826d009463f8dfc372f188934710115491b7665a1", "0b62ab60-02ad-4f69-a181-d9c5eb2f97fa",
        "612460418944011a10fa5b", "<uuid>",
        // a hashed user name in properties, and the Camunda person identifiers and location
        "70280e5d07e61e5e915e5d26ac8704bbd68d3f75ebad67ba439f4c354d7", "auth0|669533a8339ceebe5e8f7fed",
        "190b6d254651ec-0a7e1ef548a163-4c657b58-e1000-190b6d2518f1ec", "Gotham City", "New Jersey",
    ];

    [Theory]
    [InlineData("appsmith-installation-started.json", LocalHostFactory.InstallerKey)]
    [InlineData("appsmith-instance-active.json", LocalHostFactory.WriteKey)]
    [InlineData("appsmith-client-page-load.json", LocalHostFactory.WriteKey)]
    public async Task Appsmith_sample_is_accepted_verbatim_and_stored_without_personal_data(string fixture, string writeKey)
    {
        var text = await ReadFixtureAsync(fixture);
        var time = new FakeTimeProvider(ReceivedAtOf(text));
        await using var host = new LocalHostFactory(azurite, time);

        var response = await host.CreateSegmentClient(writeKey).PostAsync("/v1/track", Segment.Json(text), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        await AssertNothingPersonalStoredAsync(host);
    }

    [Fact]
    public async Task Appsmith_plugin_usage_sample_is_refused_verbatim_for_its_trailing_comma_and_accepted_once_fixed()
    {
        var text = await ReadFixtureAsync("appsmith-plugin-usage.json");
        var time = new FakeTimeProvider(ReceivedAtOf(text));
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();

        var verbatim = await client.PostAsync("/v1/track", Segment.Json(text), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, verbatim.StatusCode);
        Assert.Contains("not valid JSON", (await Segment.ReadJsonAsync(verbatim)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await host.Tables.TotalRowsAsync());

        var fixedText = text.Replace("\",\n}", "\"\n}", StringComparison.Ordinal);
        var fixedResponse = await client.PostAsync("/v1/track", Segment.Json(fixedText), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, fixedResponse.StatusCode);

        var stored = JsonNode.Parse(StorageProbe.Dump(await host.Tables.RowsAsync(TableNames.RawEvents)).Split("Payload=")[1].Split('\n')[0])!;
        Assert.Equal("PostgreSQL", stored["properties"]!["pluginName"]!.GetValue<string>());
        Assert.Null(stored["properties"]!["username"]);
        Assert.Null(stored["properties"]!["name"]);
        Assert.Null(stored["properties"]!["instanceId"]);
        Assert.NotNull(stored["instanceKey"]);
        await AssertNothingPersonalStoredAsync(host);
    }

    [Fact]
    public async Task Camunda_mixpanel_sample_is_refused_without_a_segment_identity_and_scrubbed_inside_a_segment_envelope()
    {
        var text = await ReadFixtureAsync("camunda-modeler-deploy.json");
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();

        var verbatim = await client.PostAsync("/v1/track", Segment.Json(text), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, verbatim.StatusCode);
        Assert.Contains("userId or an anonymousId", (await Segment.ReadJsonAsync(verbatim)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        var sample = JsonNode.Parse(text)!.AsObject();
        var envelope = new JsonObject
        {
            ["type"] = "track",
            ["event"] = sample["event"]!.GetValue<string>(),
            ["userId"] = sample["properties"]!["distinct_id"]!.GetValue<string>(),
            ["properties"] = sample["properties"]!.DeepClone(),
        };
        var response = await client.PostAsync("/v1/track", Segment.Json(envelope), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await Segment.ReadJsonAsync(response)).GetProperty("scrubbed").GetInt32() >= 6);
        var payload = StorageProbe.Dump(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Contains("clusterVersion", payload, StringComparison.Ordinal);
        Assert.Contains("Microsoft Edge", payload, StringComparison.Ordinal);
        await AssertNothingPersonalStoredAsync(host);
    }

    [Fact]
    public async Task Installation_support_email_goes_only_to_the_support_requests_table()
    {
        await using var host = new LocalHostFactory(azurite);
        var support = Segment.Track("Installation Support", userId: null, anonymousId: "install-7", properties: new JsonObject { ["email"] = "jane.doe@example.com", ["os"] = "ubuntu" });

        var response = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(support), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var request = Assert.Single(await host.Tables.RowsAsync(TableNames.SupportRequests));
        Assert.Equal("jane.doe@example.com", request.GetString("Email"));
        Assert.True(request.GetDateTimeOffset("DeleteAfter") > DateTimeOffset.UtcNow.AddDays(29));
        var analytics = await host.Tables.DumpAllAsync(TableNames.SupportRequests);
        Assert.DoesNotContain("jane.doe@example.com", analytics, StringComparison.Ordinal);
        Assert.DoesNotContain("install-7", analytics, StringComparison.Ordinal);
        var installation = Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.NotNull(installation.GetDateTimeOffset("SupportRequestedAt"));
    }

    private static async Task AssertNothingPersonalStoredAsync(LocalHostFactory host)
    {
        var everything = await host.Tables.DumpAllAsync();
        foreach (var value in PersonalValuesInSeeds)
        {
            Assert.DoesNotContain(value, everything, StringComparison.Ordinal);
        }

        Assert.DoesNotMatch(@"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+\.[A-Za-z]{2,}", everything);
    }

    private static Task<string> ReadFixtureAsync(string name) =>
        File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", "seeds", name), TestContext.Current.CancellationToken);

    /// <summary>The fixture's own receivedAt: the clock is set there so the 30-day window accepts a 2020 sample.</summary>
    private static DateTimeOffset ReceivedAtOf(string text)
    {
        var marker = "\"receivedAt\": \"";
        var start = text.IndexOf(marker, StringComparison.Ordinal) + marker.Length;
        return DateTimeOffset.Parse(text[start..text.IndexOf('"', start)], CultureInfo.InvariantCulture);
    }
}
