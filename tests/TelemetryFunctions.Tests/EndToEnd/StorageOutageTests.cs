using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>Storage goes away under load and comes back; the official Segment client retries what was not acknowledged.</summary>
public sealed class StorageOutageTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Storage_down_for_a_while_under_load_then_back_stores_exactly_the_events_the_segment_client_sent()
    {
        await using var storage = await AzuriteProcess.StartAsync(persisted: true, TestContext.Current.CancellationToken);
        await using var host = await LocalHostProcess.StartAsync(
            azurite,
            new Dictionary<string, string?> { ["Telemetry:Storage:ConnectionString"] = storage.ConnectionString },
            TestContext.Current.CancellationToken);
        var tables = new StorageProbe(storage.ConnectionString, host.TablePrefix);
        const int Events = 400;

        var sending = SegmentNodeClient.SendAsync(host, Events, "outage", maxRetries: 30, timeout: TimeSpan.FromSeconds(150), cancellationToken: TestContext.Current.CancellationToken);

        // Take storage away once some events are in, keep it away for a few seconds, bring it back.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && (await tables.RowsAsync(TableNames.RawEvents)).Count < 60)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        await storage.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(4), TestContext.Current.CancellationToken);
        await storage.StartAsync(TestContext.Current.CancellationToken);

        var (run, summary) = await sending;

        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.NotNull(summary);
        Assert.Equal(Events, summary.Delivered);
        var stored = await tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(Events, stored.Count);
        Assert.Equal(Events, stored.Select(r => r.RowKey).Distinct(StringComparer.Ordinal).Count());
        Assert.Contains("503", string.Join(',', summary.Errors) + host.Output, StringComparison.Ordinal);
    }
}
