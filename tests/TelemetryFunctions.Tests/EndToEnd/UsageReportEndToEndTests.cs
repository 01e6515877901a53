using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// The local host as a separate process notices usage reports by itself: one uploaded straight to Azurite with the
/// Azure Storage SDK (as a customer admin with a SAS would), one through <c>POST /v1/usage-reports</c>; both are
/// processed and their figures and overage read back through the API.
/// </summary>
public sealed class UsageReportEndToEndTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Reports_uploaded_directly_to_Azurite_and_through_the_API_are_processed_and_their_usage_and_overage_read_back()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, Settings(new() { ["Telemetry:UsageReports:WatchInterval"] = "00:00:00.500" }), cancellationToken);
        using var customer = host.CreateClient();
        customer.DefaultRequestHeaders.Authorization = Basic(ReportKey);

        // Installation 1 uploads its January report straight into the container, gzip-compressed.
        await UploadAsync(azurite, host.TablePrefix, "acme/inst-1/2026-01.json.gz", Gzip(Signed(Report("r-inst-1-2026-01"))));

        // Installation 2 posts its January report to the API.
        var body = new ByteArrayContent(Signed(Report("r-inst-2-2026-01", installation: "inst-2", metrics: [Metric("process-instances", 300), Metric("task-users", 5)])));
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var upload = await customer.PostAsync("/v1/usage-reports", body, cancellationToken);
        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);

        var direct = await WaitForStatusAsync(customer, "r-inst-1-2026-01", "processed", cancellationToken);
        var posted = await WaitForStatusAsync(customer, "r-inst-2-2026-01", "processed", cancellationToken);
        Assert.Equal("processed", direct.GetProperty("status").GetString());
        Assert.Equal("processed", posted.GetProperty("status").GetString());
        Assert.Equal(1200, direct.GetProperty("months").GetProperty("202601").GetProperty("process-instances").GetInt64());

        using var admin = host.CreateClient();
        admin.DefaultRequestHeaders.Add("x-functions-key", AdminKey);
        using var usageResponse = await admin.GetAsync("/api/usage?customer=acme&from=2026-01&to=2026-01", cancellationToken);
        Assert.Equal(HttpStatusCode.OK, usageResponse.StatusCode);
        var usage = JsonDocument.Parse(await usageResponse.Content.ReadAsStringAsync(cancellationToken)).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(u => u.GetProperty("metric").GetString()!, u => (u.GetProperty("reported").GetInt64(), u.GetProperty("entitlement").GetInt64(), u.GetProperty("overage").GetInt64(), u.GetProperty("reports").GetInt32()));

        Assert.Equal((1500L, 1000L, 500L, 2), usage["process-instances"]);
        Assert.Equal((12L, 10L, 2L, 2), usage["task-users"]);
    }

    [Fact]
    public async Task A_host_killed_while_it_processes_a_large_report_leaves_exactly_one_runs_rows_after_its_restart()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var host = await LocalHostProcess.StartAsync(azurite, Settings(new() { ["Telemetry:UsageReports:WatchInterval"] = "00:00:00.200" }), cancellationToken);
        using var customer = host.CreateClient();
        customer.DefaultRequestHeaders.Authorization = Basic(ReportKey);
        using (var content = new MemoryStream())
        {
            WriteLarge(content, "r-large", days: 365, clusters: 240);
            content.Position = 0;
            await Container(azurite, host.TablePrefix).GetBlobClient("acme/large.json").UploadAsync(content, cancellationToken);
        }

        // Kill the host as soon as the report's first rows are in storage: in the middle of writing them, or just after.
        var deadline = DateTime.UtcNow + ProcessingTimeout;
        var rowsAtKill = 0;
        while (DateTime.UtcNow < deadline && rowsAtKill == 0)
        {
            rowsAtKill = (await host.Tables.RowsAsync(TableNames.UsageRows)).Count;
            if (rowsAtKill == 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(25), cancellationToken);
            }
        }

        host.Kill();
        var statusAtKill = (await host.Tables.RowsAsync(TableNames.UsageReports)).FirstOrDefault(r => r.RowKey == "r_r-large")?.GetString("Status");
        TestContext.Current.TestOutputHelper?.WriteLine($"Killed with {rowsAtKill} rows written; the report's record said {statusAtKill ?? "nothing"}.");
        Assert.True(rowsAtKill > 0, "The host never started writing the report's rows.");

        await host.RestartAsync(cancellationToken);
        var status = await WaitForStatusAsync(customer, "r-large", "processed", cancellationToken);

        Assert.Equal("processed", status.GetProperty("status").GetString());
        Assert.False(status.TryGetProperty("monthlyTotals", out _), "The report's monthly totals were still pending at the deadline.");
        var rows = await host.Tables.RowsAsync(TableNames.UsageRows);
        Assert.Equal(3 * (1 + 12 + 365 + 240), rows.Count);
        Assert.Equal(LargeTotal(0, 365, 240), rows.Single(r => r.RowKey == "t_process-instances").GetInt64("Value"));
        var monthly = (await host.Tables.RowsAsync(TableNames.UsageMonthly)).Where(r => r.GetString("Metric") == "process-instances").ToList();
        Assert.Equal(12, monthly.Count);
        Assert.Equal(LargeTotal(0, 365, 240), monthly.Sum(r => r.GetInt64("Value")));
        Assert.All(monthly, r => Assert.Equal(1, r.GetInt32("Reports")));
    }
}
