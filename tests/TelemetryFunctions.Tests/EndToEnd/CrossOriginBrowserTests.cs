using System.Text.Json;
using Microsoft.Playwright;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// A page on another origin in a real headless Chromium, against the local host as a process: the browser preflights a
/// POST with the write key as HTTP Basic and a JSON body (gzip-compressed, too), is allowed and sends, while a call to
/// the read API from the same page is refused by the browser. The page is the host's own <c>/health</c> answer opened
/// as <c>http://localhost:PORT</c>, an origin other than the <c>http://127.0.0.1:PORT</c> it sends to.
/// </summary>
public sealed class CrossOriginBrowserTests(AzuriteFixture azurite)
{
    private const string Send = """
        async ([url, writeKey, body, gzip]) => {
          let payload = body;
          const headers = { 'Authorization': 'Basic ' + btoa(writeKey + ':'), 'Content-Type': 'application/json' };
          if (gzip) {
            payload = await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
            headers['Content-Encoding'] = 'gzip';
          }
          const response = await fetch(url, { method: 'POST', headers, body: payload });
          return { status: response.status, body: await response.text() };
        }
        """;

    private const string Read = """
        async ([url, adminKey]) => {
          try {
            const response = await fetch(url, { headers: { 'x-functions-key': adminKey } });
            return 'answered ' + response.status;
          } catch (e) {
            return 'refused by the browser';
          }
        }
        """;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_page_on_another_origin_sends_with_basic_auth_and_json_after_its_preflight_but_cannot_call_the_read_api()
    {
        DashboardBrowserTests.RequireChromium();
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: Token);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = DashboardBrowserTests.ChromiumPath, Headless = true, Args = DashboardBrowserTests.ChromiumArgs });
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"http://localhost:{host.Port}/health");
        Assert.Equal($"http://localhost:{host.Port}", await page.EvaluateAsync<string>("() => window.location.origin"));

        var batch = Segment.Batch(Segment.Track("Page Button Clicked", "browser-user-1")).ToJsonString();
        var track = Segment.Track("Page Compressed Sent", "browser-user-1").ToJsonString();
        var sentBatch = await page.EvaluateAsync<JsonElement>(Send, new object[] { new Uri(host.BaseAddress, "/v1/batch").ToString(), LocalHostProcess.WriteKey, batch, false });
        var sentTrack = await page.EvaluateAsync<JsonElement>(Send, new object[] { new Uri(host.BaseAddress, "/v1/track").ToString(), LocalHostProcess.WriteKey, track, true });
        var read = await page.EvaluateAsync<string>(Read, new object[] { new Uri(host.BaseAddress, "/api/stats/instances").ToString(), "dev-admin-key" });

        Assert.True(sentBatch.GetProperty("status").GetInt32() == 200, sentBatch.ToString());
        Assert.True(sentTrack.GetProperty("status").GetInt32() == 200, sentTrack.ToString());
        Assert.Equal(1, JsonDocument.Parse(sentTrack.GetProperty("body").GetString()!).RootElement.GetProperty("accepted").GetInt32());
        Assert.Equal("refused by the browser", read);
        var stored = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(["Page Button Clicked", "Page Compressed Sent"], stored.Select(r => r.GetString("Event")).Order(StringComparer.Ordinal));
    }
}
