using System.Net;
using System.Text.Json.Nodes;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

public sealed class IngestBatchTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_valid_batch_is_stored_as_raw_events_activity_and_instance_rows()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var properties = new JsonObject { ["instanceId"] = "instance-42", ["version"] = "1.2.3", ["os"] = "ubuntu" };

        var response = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(
            Segment.Track("Report Opened", "user-1", properties: properties),
            Segment.Track("Instance Active", "user-1", properties: (JsonObject)properties.DeepClone()))), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await Segment.ReadJsonAsync(response);
        Assert.True(body.GetProperty("success").GetBoolean());
        Assert.Equal(2, body.GetProperty("accepted").GetInt32());
        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
        var instance = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal("1.2.3", instance.GetString("Version"));
        Assert.Equal("ubuntu", instance.GetString("Os"));
        var activity = await host.Tables.RowsAsync(TableNames.Activity);
        Assert.Contains(activity, r => r.RowKey.StartsWith("u_", StringComparison.Ordinal));
        Assert.Contains(activity, r => r.RowKey.StartsWith("i_", StringComparison.Ordinal));
    }
}
