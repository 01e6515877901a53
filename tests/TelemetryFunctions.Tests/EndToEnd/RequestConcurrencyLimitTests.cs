using System.Net;
using System.Net.Http.Headers;
using System.Text;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// The local host caps requests in progress as host.json does in Azure (maxConcurrentRequests, maxOutstandingRequests):
/// beyond the cap a request gets 429 with Retry-After before its body is read, and neither the health probe nor a CORS
/// preflight on an ingest route is ever refused.
/// </summary>
public sealed class RequestConcurrencyLimitTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_request_beyond_the_outstanding_limit_gets_429_with_retry_after_and_is_served_once_a_slot_is_free()
    {
        var token = TestContext.Current.CancellationToken;
        // The real host on Kestrel: a request holds its slot while its body is still arriving over the socket.
        await using var host = await LocalHostProcess.StartAsync(azurite, new Dictionary<string, string?>
        {
            ["LocalHost:Http:MaxConcurrentRequests"] = "1",
            ["LocalHost:Http:MaxOutstandingRequests"] = "1",
        }, token);
        var client = host.CreateSegmentClient();

        // A sender that holds its request open: half of the body now, the rest when released. If a probe below takes
        // the only slot first, the held request is the one refused; then it is sent again.
        var body = Segment.Batch(Segment.Track("Held Open", messageId: "held-open")).ToJsonString();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<HttpResponseMessage> SendHeld()
        {
            var content = new HeldOpenContent(body, release.Task);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            return client.PostAsync("/v1/batch", content, token);
        }

        var held = SendHeld();
        HttpResponseMessage refused;
        var acknowledgedProbes = 0;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            if (held.IsCompleted)
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, (await held).StatusCode);
                held = SendHeld();
            }

            await Task.Delay(50, token);
            refused = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("Probe", messageId: $"probe-{Guid.NewGuid():N}"))), token);
            acknowledgedProbes += refused.StatusCode == HttpStatusCode.OK ? 1 : 0;
        }
        while (refused.StatusCode != HttpStatusCode.TooManyRequests && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal("too_many_requests", (await Segment.ReadJsonAsync(refused)).GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("*", string.Join(",", refused.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health", token)).StatusCode);
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/batch");
        preflight.Headers.Add("Origin", "https://app.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendAsync(preflight, token)).StatusCode);

        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
        var after = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(Segment.Track("After", messageId: "after-release"))), token);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);

        // Every event stored was acknowledged: the held one, the one after, and the probes that got a slot (200).
        var stored = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(2 + acknowledgedProbes, stored.Count);
    }

    private sealed class HeldOpenContent(string json, Task release) : HttpContent
    {
        private readonly byte[] _bytes = Encoding.UTF8.GetBytes(json);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = _bytes.Length / 2;
            await stream.WriteAsync(_bytes.AsMemory(0, half));
            await stream.FlushAsync();
            await release;
            await stream.WriteAsync(_bytes.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return true;
        }
    }
}
