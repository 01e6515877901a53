using System.Text.Json;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>The local host as a process, driven by the official Segment Node client (@segment/analytics-node).</summary>
public sealed class SegmentNodeClientTests(AzuriteFixture azurite)
{
    private const int Events = 250;

    [Fact]
    public async Task Every_event_sent_by_the_Segment_node_client_is_stored_once_without_raw_identifiers()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        var identityPrefix = "e2e" + Guid.NewGuid().ToString("N");

        var (run, summary) = await SegmentNodeClient.SendAsync(host, Events, identityPrefix, cancellationToken: cancellationToken);

        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.NotNull(summary);
        Assert.Equal(Events, summary.Delivered);
        var sentIds = summary.MessageIds.ToHashSet(StringComparer.Ordinal);
        Assert.Equal(Events, sentIds.Count);

        var rows = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(Events, rows.Count);
        var storedIds = rows.Select(MessageIdOf).ToList();
        Assert.Equal(Events, storedIds.Distinct(StringComparer.Ordinal).Count());
        Assert.True(sentIds.SetEquals(storedIds!), "The stored messageIds are not the ones the client generated.");
        Assert.Contains(rows, r => r.GetString("UserKey") is not null);
        Assert.Contains(rows, r => r.GetString("AnonymousKey") is not null);

        // Every userId, anonymousId and instanceId the client sent starts with the prefix; none may be stored.
        var everything = await host.Tables.DumpAllAsync();
        Assert.DoesNotContain(identityPrefix, everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_the_Segment_node_client_sends_again_with_the_same_messageIds_are_stored_once()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: cancellationToken);
        var identityPrefix = "e2e" + Guid.NewGuid().ToString("N");
        var messageIdPrefix = "m" + Guid.NewGuid().ToString("N");
        var expectedIds = Enumerable.Range(0, Events).Select(i => $"{messageIdPrefix}-{i}").ToHashSet(StringComparer.Ordinal);

        // One client sends the events, flushes, then sends the same messageIds again in new requests.
        var (first, firstSummary) = await SegmentNodeClient.SendAsync(host, Events, identityPrefix, messageIdPrefix, repeat: 2, cancellationToken: cancellationToken);
        Assert.True(first.ExitCode == 0, first.Describe());
        Assert.NotNull(firstSummary);
        Assert.Equal(2 * Events, firstSummary.Delivered);
        Assert.True(firstSummary.Requests >= 2 * (Events / 20), $"Expected the two rounds in separate requests, saw {firstSummary.Requests} requests.");
        Assert.Equal(Events, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);

        // A new client process (as after a restart of the sender) sends them once more.
        var (second, secondSummary) = await SegmentNodeClient.SendAsync(host, Events, identityPrefix, messageIdPrefix, cancellationToken: cancellationToken);
        Assert.True(second.ExitCode == 0, second.Describe());
        Assert.NotNull(secondSummary);
        Assert.Equal(Events, secondSummary.Delivered);

        var rows = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(Events, rows.Count);
        Assert.True(expectedIds.SetEquals(rows.Select(MessageIdOf)!), "The stored messageIds are not the ones the client sent.");
    }

    private static string? MessageIdOf(TableEntity row)
    {
        using var payload = JsonDocument.Parse(row.GetBinary("Payload"));
        return payload.RootElement.GetProperty("messageId").GetString();
    }
}
