using System.Net;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>The process fixture itself: a hard kill stops the host, a restart brings it back on the same port and tables.</summary>
public sealed class LocalHostProcessTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_hard_killed_host_restarts_on_the_same_port_and_keeps_what_was_stored()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        using var client = host.CreateSegmentClient();
        var port = host.Port;

        using (var before = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("Report Opened"))), cancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        host.Kill();

        Assert.True(host.HasExited);
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/health", cancellationToken));

        await host.RestartAsync(cancellationToken);

        Assert.Equal(port, host.Port);
        using (var after = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("Report Opened"))), cancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        }

        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }
}
