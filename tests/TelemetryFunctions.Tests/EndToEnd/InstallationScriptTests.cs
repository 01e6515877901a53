using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using TelemetryFunctions.Http;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>The local host as a process, called the way an installation shell script calls it: one curl line per step.</summary>
public sealed class InstallationScriptTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task An_installation_reported_started_then_succeeded_by_curl_is_one_succeeded_installation()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        var installationId = "install-" + Guid.NewGuid().ToString("N");

        await PostTrackAsync(host, Step("Installation Started", installationId), cancellationToken);
        await PostTrackAsync(host, Step("Installation Success", installationId), cancellationToken);

        var installation = Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.Equal("succeeded", installation.GetString("Status"));
        Assert.NotNull(installation.GetDateTimeOffset("StartedAt"));
        Assert.NotNull(installation.GetDateTimeOffset("SucceededAt"));
        Assert.Equal("ubuntu", installation.GetString("Os"));
        Assert.Equal("2.4.0", installation.GetString("Version"));
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        Assert.DoesNotContain(installationId, await host.Tables.DumpAllAsync(), StringComparison.Ordinal);
    }

    private static string Step(string eventName, string installationId) => new JsonObject
    {
        ["anonymousId"] = installationId,
        ["event"] = eventName,
        ["properties"] = new JsonObject { ["os"] = "ubuntu", ["version"] = "2.4.0" },
    }.ToJsonString();

    /// <summary><c>curl -fsS -u key: -H 'Content-Type: application/json' -d '{...}' host/v1/track</c>, or the same request without curl where it is missing.</summary>
    private static async Task PostTrackAsync(LocalHostProcess host, string body, CancellationToken cancellationToken)
    {
        var url = new Uri(host.BaseAddress, "/" + TelemetryRoutes.Track).ToString();
        if (ExternalCommand.IsOnPath("curl"))
        {
            var run = await ExternalCommand.RunAsync(
                "curl",
                ["-fsS", "--max-time", "10", "-u", LocalHostProcess.InstallerKey + ":", "-H", "Content-Type: application/json", "-d", body, url],
                workingDirectory: RepositoryPaths.Root,
                cancellationToken: cancellationToken);
            Assert.True(run.ExitCode == 0, run.Describe());
            return;
        }

        using var client = host.CreateSegmentClient(LocalHostProcess.InstallerKey);
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync(url, content, cancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
    }
}
