using System.Net;
using System.Text.Json.Nodes;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>The local host killed with SIGKILL while it ingests, then restarted: what it acknowledged is stored, once.</summary>
public sealed class CrashRecoveryTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_host_killed_mid_ingest_loses_no_acknowledged_event_and_client_retries_double_nothing()
    {
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: TestContext.Current.CancellationToken);
        const int Batches = 40;
        var batches = Enumerable.Range(0, Batches)
            .Select(b => Segment.Batch(Enumerable.Range(0, 50).Select(i => Segment.Track("Clicked", userId: $"u{i % 7}", messageId: $"crash-{b}-{i}", timestamp: DateTimeOffset.UtcNow)).ToArray()).ToJsonString())
            .ToList();
        var acknowledged = new bool[Batches];

        // Four clients send concurrently; the host is killed once a quarter of the batches are acknowledged.
        var killed = 0;
        async Task SendAllAsync(int client)
        {
            using var http = host.CreateSegmentClient();
            for (var b = client; b < Batches; b += 4)
            {
                try
                {
                    var response = await http.PostAsync("/v1/batch", Segment.Json(batches[b]), TestContext.Current.CancellationToken);
                    acknowledged[b] = response.StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    // The connection died with the host: not acknowledged; the client will retry.
                }

                if (acknowledged.Count(a => a) >= Batches / 4 && Interlocked.Exchange(ref killed, 1) == 0)
                {
                    host.Kill();
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(SendAllAsync));
        Assert.Equal(1, killed);
        var acknowledgedBeforeCrash = acknowledged.Count(a => a);
        Assert.InRange(acknowledgedBeforeCrash, Batches / 4, Batches - 1);

        await host.RestartAsync(TestContext.Current.CancellationToken);
        using (var http = host.CreateSegmentClient())
        {
            // What a Segment client does: resend every batch it has no 200 for. One acknowledged batch is resent too,
            // as a client whose response was lost would.
            foreach (var b in Enumerable.Range(0, Batches).Where(b => !acknowledged[b]).Append(Array.IndexOf(acknowledged, true)))
            {
                var response = await http.PostAsync("/v1/batch", Segment.Json(batches[b]), TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        // The row key is a hash of the messageId, so distinct row keys prove nothing: count the messageIds read back
        // from the stored payloads. Every batch was either acknowledged or resent, so all of them must be there, once.
        var stored = (await host.Tables.RowsAsync(TableNames.RawEvents))
            .Select(r => JsonNode.Parse(r.GetBinary("Payload"))!["messageId"]!.GetValue<string>())
            .ToList();
        var sent = batches
            .SelectMany(b => JsonNode.Parse(b)!["batch"]!.AsArray().Select(e => e!["messageId"]!.GetValue<string>()))
            .ToHashSet(StringComparer.Ordinal);
        var doubled = stored.CountBy(id => id, StringComparer.Ordinal).Where(c => c.Value != 1).Select(c => $"{c.Key} x{c.Value}").ToList();
        Assert.True(doubled.Count == 0, "Stored more than once: " + string.Join(", ", doubled.Take(10)));
        Assert.True(sent.SetEquals(stored), $"{sent.Except(stored).Count()} sent events missing, {stored.Except(sent).Count()} unexpected.");
        Assert.Equal(Batches * 50, stored.Count);
    }
}
