using System.Net;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Core.Pipeline;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Ingestion;

public sealed class InstanceLookupTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_batch_from_an_instance_not_yet_registered_reads_its_registry_row_once()
    {
        var reads = new InstanceReadCounter();
        await using var host = new LocalHostFactory(azurite, storagePolicy: reads);
        var client = host.CreateSegmentClient();
        var events = Enumerable.Range(0, 50)
            .Select(i => Segment.Track("Report Opened", $"user-{i}", properties: new JsonObject { ["instanceId"] = "instance-new", ["version"] = "2.0.0" }))
            .ToArray();

        var response = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(events)), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(50, (await Segment.ReadJsonAsync(response)).GetProperty("accepted").GetInt32());
        // One read to learn the instance's sharing level and one before registering it; not one per event.
        Assert.InRange(reads.Count, 1, 2);
    }

    /// <summary>Counts point reads of Instances rows.</summary>
    private sealed class InstanceReadCounter : HttpPipelineSynchronousPolicy
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public override void OnSendingRequest(HttpMessage message)
        {
            if (message.Request.Method == RequestMethod.Get && message.Request.Uri.Path.Contains("Instances(", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _count);
            }
        }
    }
}
