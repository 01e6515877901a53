using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>
/// <c>GET /api/instances/{instanceId}</c> takes the id URL-encoded once and decodes it exactly once: a '/' sent as
/// <c>%2F</c> is a slash, and a '%' sent as <c>%25</c> is a percent sign, so <c>q%252Fb</c> is the id <c>q%2Fb</c>,
/// not <c>q/b</c>. Each instance below reports a version of its own, so an answer shows which one was found.
/// </summary>
/// <remarks>
/// Kestrel decodes the path before routing except <c>%2F</c>, so <c>q%2Fb</c> and <c>q%252Fb</c> reach the route as the
/// same value and only the request target as sent tells them apart. The in-process test server passes no request
/// target, so the twice-encoded cases are proven against the host running on Kestrel.
/// </remarks>
public sealed class InstanceIdDecodingTests(AzuriteFixture azurite)
{
    /// <summary>Raw id, as the product sends it in events, and the version it reports.</summary>
    private static readonly (string Id, string Version)[] Instances =
    [
        ("q/b", "slash"),
        ("q%2Fb", "percent-2F"),
        ("q%2fb", "percent-2f"),
        ("a/b/c", "two-slashes"),
        ("50%", "percent"),
        ("inst-7f3a", "plain"),
    ];

    /// <summary>A path as sent, and the version of the instance it must find.</summary>
    private static readonly (string Path, string Version)[] EncodedOnce =
    [
        ("/api/instances/inst-7f3a", "plain"),
        ("/api/instances/q%2Fb", "slash"),
        ("/api/instances/q%2fb", "slash"),
        ("/api/instances/a%2Fb%2Fc", "two-slashes"),
        ("/api/instances/50%25", "percent"),
        ("/api/instances/inst-7f3a?format=json", "plain"),
    ];

    /// <summary>Ids that hold an encoded slash themselves, so their '%' is sent as <c>%25</c>.</summary>
    private static readonly (string Path, string Version)[] EncodedSlashInTheId =
    [
        ("/api/instances/q%252Fb", "percent-2F"),
        ("/api/instances/q%252fb", "percent-2f"),
        ("/api/instances/q%252Fb?format=json", "percent-2F"),
    ];

    public static TheoryData<string, string> EncodedOnceLookups => new(EncodedOnce);

    [Theory]
    [MemberData(nameof(EncodedOnceLookups))]
    public async Task An_instance_id_with_slashes_or_percent_signs_is_found_by_its_encoded_path(string path, string version)
    {
        await using var host = new LocalHostFactory(azurite);
        await SeedAsync(host.CreateSegmentClient(), Instances);

        var (status, found) = await LookUpAsync(host.CreateClient(), path);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(version, found);
    }

    [Fact]
    public async Task An_instance_id_in_the_path_is_decoded_exactly_once_by_the_host_on_kestrel()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        await SeedAsync(host.CreateSegmentClient(), Instances);
        using var client = host.CreateClient();

        foreach (var (path, version) in EncodedOnce.Concat(EncodedSlashInTheId))
        {
            var (status, found) = await LookUpAsync(client, path);
            Assert.True(status == HttpStatusCode.OK && found == version, $"{path}: {(int)status}, version {found}; expected {version}");
        }
    }

    [Fact]
    public async Task A_twice_encoded_slash_is_not_taken_for_a_slash_by_the_host_on_kestrel()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        await SeedAsync(host.CreateSegmentClient(), [("q/b", "slash")]);
        using var client = host.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await LookUpAsync(client, "/api/instances/q%2Fb")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await LookUpAsync(client, "/api/instances/q%252Fb")).Status);
    }

    [Fact]
    public async Task A_trailing_slash_after_the_id_finds_the_same_instance_as_without_it_on_kestrel()
    {
        // Routing takes /api/instances/{id}/ for /api/instances/{id}; the id is then read from the segment before the
        // slash, never from the empty one after it.
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        await SeedAsync(host.CreateSegmentClient(), Instances);
        using var client = host.CreateClient();

        foreach (var (path, version) in EncodedOnce.Concat(EncodedSlashInTheId))
        {
            var parts = path.Split('?', 2);
            var slashed = parts[0] + "/" + (parts.Length > 1 ? "?" + parts[1] : "");
            var (status, found) = await LookUpAsync(client, slashed);
            Assert.True(status == HttpStatusCode.OK && found == version, $"{slashed}: {(int)status}, version {found}; expected {version}");
        }
    }

    [Theory]
    [InlineData("/api/instances/q%252Fb")]
    [InlineData("/api/instances/q%2Fb")]
    public async Task A_forwarded_request_reads_an_encoded_slash_in_the_route_value_as_a_slash_whatever_its_target(string forwardedTarget)
    {
        // The Functions host forwards requests to the worker and may encode the path again, so the target the worker
        // sees says nothing about what the client sent: the route value (q%2Fb) alone counts.
        await using var host = new LocalHostFactory(azurite);
        await SeedAsync(host.CreateSegmentClient(), Instances);
        var context = new DefaultHttpContext { RequestServices = host.Services };
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = forwardedTarget;
        context.Request.Headers["x-functions-key"] = ReadApiTests.AdminKey;
        context.Response.Body = new MemoryStream();

        var result = await host.Services.GetRequiredService<StatsEndpoints>().InstanceAsync(context.Request, "q%2Fb", RequestTarget.Forwarded, TestContext.Current.CancellationToken);
        await result.ExecuteAsync(context);

        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        context.Response.Body.Position = 0;
        Assert.Equal("slash", JsonNode.Parse(context.Response.Body)!["version"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_instance_id_as_long_as_the_configured_identifier_limit_is_registered_and_found()
    {
        // Telemetry:Ingestion:MaxIdentifierLength is the one limit on instance ids: ingestion registers an id up to it,
        // the lookup finds it, and an id one character longer is refused by the lookup with the limit in its reason.
        await using var host = new LocalHostFactory(azurite, settings: new() { ["Telemetry:Ingestion:MaxIdentifierLength"] = "2000" });
        var id = "inst-" + new string('x', 1995);
        await SeedAsync(host.CreateSegmentClient(), [(id, "long")]);
        using var client = host.CreateClient();

        var (status, found) = await LookUpAsync(client, "/api/instances/" + id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("long", found);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/instances/" + id + "x");
        request.Headers.Add("x-functions-key", ReadApiTests.AdminKey);
        using var tooLong = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains("1-2000 characters", await tooLong.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    private static JsonObject Heartbeat(string instanceId, string version) =>
        Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = instanceId, ["version"] = version });

    private static async Task SeedAsync(HttpClient segmentClient, (string Id, string Version)[] instances)
    {
        using var response = await segmentClient.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. instances.Select(i => Heartbeat(i.Id, i.Version))])), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>The status of a lookup with the admin key, and the version of the instance it found.</summary>
    private static async Task<(HttpStatusCode Status, string? Version)> LookUpAsync(HttpClient client, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-functions-key", ReadApiTests.AdminKey);
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        return (response.StatusCode, body["version"]?.GetValue<string>());
    }
}
