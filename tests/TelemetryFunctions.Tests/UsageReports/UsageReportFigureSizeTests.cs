using System.Globalization;
using System.Text.Json.Nodes;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>
/// A report's record keeps each metric's share of every month, from which monthly totals are computed. Table Storage
/// holds at most 32K characters in one string property and 1 MiB in one entity: a report with many metrics over a
/// long period must still be committed, and one too large for any record is refused up front rather than failing at
/// its commit attempt after attempt.
/// </summary>
public sealed class UsageReportFigureSizeTests(AzuriteFixture azurite)
{
    /// <summary>
    /// A year-long report of <paramref name="metrics"/> counts with 45-character names, each broken down to one day a
    /// month: metric <c>i</c> reports <c>i * 100 + month</c> in each month.
    /// </summary>
    private static JsonObject YearReport(string reportId, int metrics)
    {
        var list = Enumerable.Range(0, metrics).Select(i =>
        {
            var days = Enumerable.Range(1, 12).Select(month => (new DateOnly(2025, month, 15).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), (string?)null, (long)((i * 100) + month))).ToArray();
            return Metric(MetricName(i), days.Sum(d => d.Item3), days);
        }).ToArray();
        var report = Report(reportId, start: "2025-01-01T00:00:00Z", end: "2026-01-01T00:00:00Z", metrics: list);
        report["generatedAt"] = "2026-01-01T00:05:00Z";
        return report;
    }

    private static string MetricName(int i) => $"m{i:D3}-" + new string('x', 40);

    [Fact]
    public async Task A_report_whose_monthly_figures_exceed_one_table_property_is_committed_and_its_monthly_totals_are_exact()
    {
        await using var harness = new UsageReportHarness(azurite);

        var outcome = await harness.UploadAndProcessAsync("acme/2025.json", Signed(YearReport("r-2025", metrics: 64)));

        Assert.Equal(BlobLedgerEntry.Processed, outcome.Status);
        var record = Assert.Single(await harness.ReportRecordsAsync());
        Assert.True(record.GetInt32("MonthsChunks") > 1, "The months' figures were expected to take more than one property.");
        var monthly = (await harness.MonthlyAsync()).ToDictionary(r => r.RowKey, r => r.GetInt64("Value"));
        Assert.Equal(64 * 12, monthly.Count);
        Assert.Equal(101, monthly[$"202501_{MetricName(1)}"]);
        Assert.Equal(6312, monthly[$"202512_{MetricName(63)}"]);

        // The status the customer reads back holds every month's figures too.
        using var client = harness.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = Basic(ReportKey);
        var status = JsonNode.Parse(await client.GetStringAsync("/v1/usage-reports/r-2025", TestContext.Current.CancellationToken))!;
        Assert.Equal(12, status["months"]!.AsObject().Count);
        Assert.Equal(1207, status["months"]!["202507"]![MetricName(12)]!.GetValue<long>());
    }

    [Fact]
    public async Task A_report_whose_figures_do_not_fit_a_record_is_refused_with_the_reason_and_nothing_is_counted()
    {
        await using var harness = new UsageReportHarness(azurite, settings: new() { ["Telemetry:UsageReports:MaxMetrics"] = "700" });

        var outcome = await harness.UploadAndProcessAsync("acme/2025.json", Signed(YearReport("r-2025", metrics: 700)));

        Assert.Equal(BlobLedgerEntry.Rejected, outcome.Status);
        var error = await harness.ErrorDocumentAsync("acme/2025.json");
        var reason = Assert.Single(error.GetProperty("reasons").EnumerateArray()).GetString()!;
        Assert.Contains("700 metrics over 12 months", reason, StringComparison.Ordinal);
        Assert.Contains("split the period into several reports", reason, StringComparison.Ordinal);
        Assert.Empty(await harness.ReportRecordsAsync());
        Assert.Empty(await harness.RowsAsync(TableNames.UsageRows));
        Assert.Empty(await harness.MonthlyAsync());
    }
}
