using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>Blob processing against a real Azurite: rows, commit markers, monthly totals, quarantine, retries and reconciliation.</summary>
public sealed class UsageReportProcessingTests(AzuriteFixture azurite)
{
    private static long Value(TableEntity row) => row.GetInt64("Value") ?? -1;

    private static TableEntity Monthly(List<TableEntity> rows, string rowKey) => rows.Single(r => r.RowKey == rowKey);

    /// <summary>A report of 159 rows (over a transaction of 100), spanning January to May.</summary>
    private static (JsonObject Report, long Total, (string Day, string? Cluster, long Value)[] Days) LongReport(string reportId)
    {
        var days = Enumerable.Range(0, 150).Select(d => (new DateOnly(2026, 1, 1).AddDays(d).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), (string?)$"cluster-{d % 3}", (long)d)).ToArray();
        var report = Report(reportId, start: "2026-01-01T00:00:00Z", end: "2026-06-01T00:00:00Z", metrics: [Metric("process-instances", days.Sum(d => d.Item3), days)]);
        report["generatedAt"] = "2026-06-01T00:00:00Z";
        return (report, days.Sum(d => d.Item3), days);
    }

    /// <summary>The report again, regenerated: the same report id and figures, another generation time, signed afresh.</summary>
    private static JsonObject Regenerated(JsonObject report)
    {
        var regenerated = (JsonObject)report.DeepClone();
        regenerated["generatedAt"] = "2026-06-01T08:00:00Z";
        return regenerated;
    }

    private const int LongReportRows = 1 + 5 + 150 + 3;

    private static bool IsConditionalUpdateOfReportRecord(HttpMessage message) =>
        message.Request.Method != RequestMethod.Get
        && message.Request.Uri.Path.Contains(TableNames.UsageReports + "(", StringComparison.Ordinal)
        && message.Request.Headers.TryGetValue("If-Match", out var etag) && etag != "*";

    private static async Task<List<TableEntity>> RowsOfAsync(UsageReportHarness harness, string reportId) =>
        [.. (await harness.RowsAsync(TableNames.UsageRows)).Where(r => r.PartitionKey == UsageRowStore.PartitionKey("acme", reportId))];

    /// <summary>A processed record of a January report written straight into the table, as the service would not write it.</summary>
    private static async Task AddProcessedRecordAsync(UsageReportHarness harness, string reportId, string installation, string installationKey, DateTimeOffset end, string months)
    {
        var table = harness.Host.Tables.Table(TableNames.UsageReports);
        await table.CreateIfNotExistsAsync(TestContext.Current.CancellationToken);
        await table.AddEntityAsync(new TableEntity("acme", UsageReportStore.RowKey(reportId))
        {
            ["Status"] = UsageReportStore.Processed,
            ["Claim"] = 1,
            ["ContentHash"] = new string('0', 64),
            ["InstallationId"] = installation,
            ["InstallationKey"] = installationKey,
            ["PeriodStart"] = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
            ["PeriodEnd"] = end,
            ["Blob"] = $"acme/{reportId}.json",
            ["Months"] = months,
            ["Reasons"] = "[]",
        }, TestContext.Current.CancellationToken);
    }

    private static async Task<byte[]> DownloadAsync(Azure.Storage.Blobs.BlobContainerClient container, string name) =>
        (await container.GetBlobClient(name).DownloadContentAsync(TestContext.Current.CancellationToken)).Value.Content.ToArray();

    private static async Task AssertNothingCountedAsync(UsageReportHarness harness)
    {
        Assert.Empty(await harness.ReportRecordsAsync());
        Assert.Empty(await harness.RowsAsync(TableNames.UsageRows));
        Assert.Empty(await harness.MonthlyAsync());
    }

    [Fact]
    public async Task A_signed_report_becomes_rows_a_commit_marker_and_monthly_totals_with_overage()
    {
        await using var harness = new UsageReportHarness(azurite);

        var outcome = await harness.UploadAndProcessAsync("acme/2026-01.json", Signed(Report()));

        Assert.Equal((BlobLedgerEntry.Processed, "r-2026-01"), (outcome.Status, outcome.ReportId));
        var rows = (await harness.RowsAsync(TableNames.UsageRows)).ToDictionary(r => r.RowKey, Value);
        Assert.All((await harness.RowsAsync(TableNames.UsageRows)).Select(r => r.PartitionKey), pk => Assert.Equal("acme_r-2026-01", pk));
        Assert.Equal(1200, rows["t_process-instances"]);
        Assert.Equal(1200, rows["m_process-instances_202601"]);
        Assert.Equal(500, rows["d_process-instances_20260101"]);
        Assert.Equal(700, rows["d_process-instances_20260102"]);
        Assert.Equal([400, 800], rows.Where(r => r.Key.StartsWith("s_process-instances_", StringComparison.Ordinal)).Select(r => r.Value).Order());
        Assert.Equal(7, rows["t_task-users"]);
        Assert.Equal(8, rows.Count);

        var marker = Assert.Single(await harness.ReportRecordsAsync());
        Assert.Equal(("acme", "r_r-2026-01", "processed"), (marker.PartitionKey, marker.RowKey, marker.GetString("Status")));

        var monthly = await harness.MonthlyAsync();
        var instances = Monthly(monthly, "202601_process-instances");
        Assert.Equal((1200L, 1000L, 200L, 1), (Value(instances), instances.GetInt64("Entitlement"), instances.GetInt64("Overage"), instances.GetInt32("Reports")));
        var users = Monthly(monthly, "202601_task-users");
        Assert.Equal((7L, 10L, 0L), (Value(users), users.GetInt64("Entitlement"), users.GetInt64("Overage")));

        Assert.Equal(["acme/2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Quarantine));
    }

    public static TheoryData<string, string, byte[], string> Refused() => new()
    {
        { "malformed JSON", "acme/malformed.json", Encoding.UTF8.GetBytes("{\"report\": {\"reportId\": "), "not valid JSON" },
        { "wrong schema", "acme/schema.json", Signed(new JsonObject { ["reportId"] = "x", ["metrics"] = 3 }), "report.metrics must be an array" },
        { "negative counts", "acme/negative.json", Signed(Report(metrics: [Metric("process-instances", -1)])), "is negative (-1)" },
        { "a period in year 1", "acme/year-1.json", Signed(Report(start: "0001-01-01T00:00:00Z", end: "0001-02-01T00:00:00Z", metrics: [Metric("process-instances", 1)])), "report.period.start (0001-01-01T00:00:00.0000000+00:00) is before 2000-01-01 (UTC)" },
        { "end before start", "acme/backwards.json", Signed(Report(start: "2026-01-31T00:00:00Z", end: "2026-01-01T00:00:00Z", metrics: [Metric("process-instances", 1)])), "is not after report.period.start" },
        { "missing signature", "acme/unsigned.json", Envelope(Encoding.UTF8.GetBytes(Report().ToJsonString()), secret: null), "The report is not signed" },
        { "bad signature", "acme/other-secret.json", Signed(Report(), OtherSecret), "The signature does not match" },
        { "tampered body", "acme/tampered.json", Envelope(Encoding.UTF8.GetBytes(Report().ToJsonString().Replace("1200", "12", StringComparison.Ordinal)), signature: Hmac(Encoding.UTF8.GetBytes(Report().ToJsonString()), Secret)), "The signature does not match" },
        { "empty blob", "acme/empty.json", [], "The report is empty." },
        { "binary garbage", "acme/garbage.bin", [0x00, 0xDE, 0xAD, 0xBE, 0xEF, 0x7F, 0x45, 0x4C, 0x46], "not valid JSON" },
        { "gzip of garbage", "acme/garbage.json.gz", Gzip([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01]), "not valid JSON" },
        { "no customer folder", "2026-01.json", Signed(Report()), "not in a configured customer's folder" },
        { "unknown customer folder", "initech/2026-01.json", Signed(Report()), "not in a configured customer's folder" },
        { "another customer's folder", "globex/2026-01.json", Signed(Report(), OtherSecret), "report.customerId 'acme' is not the customer the report was uploaded for ('globex')" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_refused_report_moves_to_quarantine_with_a_readable_error_document_and_nothing_is_counted(string what, string blobName, byte[] content, string reason)
    {
        await using var harness = new UsageReportHarness(azurite);

        var outcome = await harness.UploadAndProcessAsync(blobName, content);

        Assert.Equal(BlobLedgerEntry.Rejected, outcome.Status);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal([blobName, blobName + ".error.json"], (await UsageReportHarness.NamesAsync(harness.Quarantine)).Order(StringComparer.Ordinal));
        var quarantined = await harness.Quarantine.GetBlobClient(blobName).DownloadContentAsync(TestContext.Current.CancellationToken);
        Assert.Equal(content, quarantined.Value.Content.ToArray());
        var error = await harness.ErrorDocumentAsync(blobName);
        Assert.Equal("rejected", error.GetProperty("status").GetString());
        Assert.Equal(blobName, error.GetProperty("blob").GetString());
        Assert.True(error.GetProperty("reasons").EnumerateArray().Any(r => r.GetString()!.Contains(reason, StringComparison.Ordinal)), $"{what}: {error}");
        await AssertNothingCountedAsync(harness);
    }

    [Fact]
    public async Task The_same_report_uploaded_twice_is_counted_once()
    {
        await using var harness = new UsageReportHarness(azurite);
        var content = Signed(Report());

        var first = await harness.UploadAndProcessAsync("acme/2026-01.json", content);
        var rowsAfterFirst = (await harness.RowsAsync(TableNames.UsageRows)).Select(r => (r.RowKey, Value(r))).ToList();
        var again = await harness.ProcessAsync("acme/2026-01.json");
        var copy = await harness.UploadAndProcessAsync("acme/2026-01-resent.json.gz", Gzip(content));

        Assert.Equal([BlobLedgerEntry.Processed, BlobLedgerEntry.Processed, BlobLedgerEntry.Duplicate], new[] { first.Status, again.Status, copy.Status });
        Assert.Equal(rowsAfterFirst, (await harness.RowsAsync(TableNames.UsageRows)).Select(r => (r.RowKey, Value(r))).ToList());
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
        Assert.Single(await harness.ReportRecordsAsync());
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Quarantine));
    }

    [Fact]
    public async Task Other_content_under_a_report_id_already_counted_is_a_conflict_quarantined_and_the_first_report_is_kept()
    {
        await using var harness = new UsageReportHarness(azurite);
        await harness.UploadAndProcessAsync("acme/2026-01.json", Signed(Report()));
        var altered = Report(metrics: [Metric("process-instances", 5000), Metric("task-users", 7)]);

        var outcome = await harness.UploadAndProcessAsync("acme/2026-01-corrected.json", Signed(altered));

        Assert.Equal(BlobLedgerEntry.Conflict, outcome.Status);
        var error = await harness.ErrorDocumentAsync("acme/2026-01-corrected.json");
        Assert.Equal("conflict", error.GetProperty("status").GetString());
        Assert.Contains("Report id 'r-2026-01' was already received with different content (blob 'acme/2026-01.json'", error.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("that report is counted and this one is not", error.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
        Assert.Equal(1200, Value((await harness.RowsAsync(TableNames.UsageRows)).Single(r => r.RowKey == "t_process-instances")));
        Assert.Equal(["acme/2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Fact]
    public async Task An_overlapping_period_of_the_same_installation_is_refused_but_another_installation_may_cover_it()
    {
        await using var harness = new UsageReportHarness(azurite);
        await harness.UploadAndProcessAsync("acme/inst-1-jan.json", Signed(Report()));
        var overlapping = Report("r-mid", start: "2026-01-20T00:00:00Z", end: "2026-02-10T00:00:00Z", metrics: [Metric("process-instances", 5, ("2026-01-25", null, 2), ("2026-02-03", null, 3))]);
        overlapping["generatedAt"] = "2026-02-10T00:00:00Z";
        var adjacent = Report("r-2026-02", start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z", metrics: [Metric("process-instances", 30)]);
        adjacent["generatedAt"] = "2026-03-01T00:00:00Z";

        var refused = await harness.UploadAndProcessAsync("acme/inst-1-mid.json", Signed(overlapping));
        var next = await harness.UploadAndProcessAsync("acme/inst-1-feb.json", Signed(adjacent));
        var other = await harness.UploadAndProcessAsync("acme/inst-2-jan.json", Signed(Report("r-inst-2-2026-01", installation: "inst-2", metrics: [Metric("process-instances", 34)])));

        Assert.Equal(BlobLedgerEntry.Rejected, refused.Status);
        Assert.Contains("overlaps report 'r-2026-01' (2026-01-01T00:00:00.0000000+00:00 to 2026-02-01T00:00:00.0000000+00:00) of the same installation", refused.Reasons[0], StringComparison.Ordinal);
        Assert.Equal(BlobLedgerEntry.Processed, next.Status);
        Assert.Equal(BlobLedgerEntry.Processed, other.Status);
        var monthly = await harness.MonthlyAsync();
        Assert.Equal(1234, Value(Monthly(monthly, "202601_process-instances")));
        Assert.Equal(30, Value(Monthly(monthly, "202602_process-instances")));
    }

    [Fact]
    public async Task Reports_naming_an_installation_in_other_case_or_with_white_space_around_it_are_not_counted_again()
    {
        await using var harness = new UsageReportHarness(azurite);

        var counted = await harness.UploadAndProcessAsync("acme/a.json", Signed(Report("r-a", installation: "inst-1")));
        var spaced = await harness.UploadAndProcessAsync("acme/b.json", Signed(Report("r-b", installation: "inst-1 ")));
        var upper = await harness.UploadAndProcessAsync("acme/c.json", Signed(Report("r-c", installation: "INST-1")));

        Assert.Equal(
            [BlobLedgerEntry.Processed, BlobLedgerEntry.Rejected, BlobLedgerEntry.Rejected],
            new[] { counted, spaced, upper }.Select(o => o.Status));
        Assert.Contains("report.installationId starts or ends with white space", spaced.Reasons[0], StringComparison.Ordinal);
        Assert.Contains("overlaps report 'r-a' (2026-01-01T00:00:00.0000000+00:00 to 2026-02-01T00:00:00.0000000+00:00) of the same installation", upper.Reasons[0], StringComparison.Ordinal);
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_report_naming_an_installation_with_an_invisible_character_is_refused_and_not_counted_again()
    {
        await using var harness = new UsageReportHarness(azurite);

        var counted = await harness.UploadAndProcessAsync("acme/a.json", Signed(Report("r-a", installation: "inst-1")));
        var invisible = await harness.UploadAndProcessAsync("acme/b.json", Signed(Report("r-b", installation: "inst-1\u200B")));

        Assert.Equal([BlobLedgerEntry.Processed, BlobLedgerEntry.Rejected], new[] { counted, invisible }.Select(o => o.Status));
        Assert.Contains("report.installationId contains an invisible or formatting character (U+200B)", invisible.Reasons[0], StringComparison.Ordinal);
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    [Theory]
    [InlineData("INST-1", "INST-1", "INST-1")] // before ids were compared ignoring case: the hash of the id as written
    [InlineData("inst-1\u200B", "inst-1\u200B", "inst-1")] // before ids with invisible characters were refused: lower-cased with them (zero-width space)
    [InlineData("INST\u00AD-1", "inst\u00AD-1", "inst-1")] // soft hyphen, in other case
    [InlineData("\u202Einst-1", "\u202Einst-1", "INST-1")] // right-to-left override
    [InlineData("cafe\u0301-1", "cafe\u0301-1", "caf\u00E9-1")] // before ids were Unicode-normalized: e and a combining accent, a report now precomposed
    [InlineData("\uFF29\uFF2E\uFF33\uFF34-1", "\uFF49\uFF4E\uFF53\uFF54-1", "inst-1")] // fullwidth letters, lower-cased, a report now in ASCII
    public async Task A_record_keyed_under_an_earlier_form_of_its_installation_id_still_blocks_an_overlapping_period_and_shares_its_distinct_counts(string stored, string keyedAs, string sent)
    {
        await using var harness = new UsageReportHarness(azurite);
        await AddProcessedRecordAsync(harness, "r-old", stored, UsageReportKeys.Hash(keyedAs), new DateTimeOffset(2026, 1, 16, 0, 0, 0, TimeSpan.Zero), "{\"202601\":{\"task-users\":7}}");
        var overlapping = Report("r-overlapping", installation: sent, end: "2026-01-10T00:00:00Z", metrics: [Metric("task-users", 5)]);
        var secondHalf = Report("r-second-half", installation: sent, start: "2026-01-16T00:00:00Z", metrics: [Metric("task-users", 9)]);

        var refused = await harness.UploadAndProcessAsync("acme/overlapping.json", Signed(overlapping));
        var counted = await harness.UploadAndProcessAsync("acme/second-half.json", Signed(secondHalf));

        Assert.Equal(BlobLedgerEntry.Rejected, refused.Status);
        Assert.Contains("overlaps report 'r-old'", refused.Reasons[0], StringComparison.Ordinal);
        Assert.Equal(BlobLedgerEntry.Processed, counted.Status);
        var users = Monthly(await harness.MonthlyAsync(), "202601_task-users");
        Assert.Equal((9L, 2), (Value(users), users.GetInt32("Reports")));
    }

    [Theory]
    [InlineData("caf\u00E9-1", "cafe\u0301-1")] // precomposed (NFC) and decomposed (NFD)
    [InlineData("\uFF49\uFF4E\uFF53\uFF54-1", "inst-1")] // fullwidth and ASCII
    [InlineData("\uFF29\uFF2E\uFF33\uFF34-1", "inst-1")] // fullwidth capitals and ASCII lower case
    [InlineData("\u212Bngstr\u00F6m", "\u00C5ngstro\u0308m")] // the angstrom sign and a letter A with ring, o with a combining diaeresis
    public async Task Installation_ids_that_differ_only_in_Unicode_normalization_are_one_installation_whose_periods_must_not_overlap(string first, string second)
    {
        Assert.Equal(UsageReportKeys.Installation(first), UsageReportKeys.Installation(second));
        await using var harness = new UsageReportHarness(azurite);
        var firstHalf = Report("r-1a", installation: first, end: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 100), Metric("task-users", 7)]);
        var overlapping = Report("r-overlapping", installation: second, end: "2026-01-10T00:00:00Z", metrics: [Metric("process-instances", 50), Metric("task-users", 5)]);
        var secondHalf = Report("r-1b", installation: second, start: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 200), Metric("task-users", 9)]);

        var counted = await harness.UploadAndProcessAsync("acme/1a.json", Signed(firstHalf));
        var refused = await harness.UploadAndProcessAsync("acme/overlapping.json", Signed(overlapping));
        var alsoCounted = await harness.UploadAndProcessAsync("acme/1b.json", Signed(secondHalf));

        Assert.Equal([BlobLedgerEntry.Processed, BlobLedgerEntry.Rejected, BlobLedgerEntry.Processed], new[] { counted, refused, alsoCounted }.Select(o => o.Status));
        Assert.Contains("overlaps report 'r-1a'", refused.Reasons[0], StringComparison.Ordinal);
        var monthly = await harness.MonthlyAsync();
        Assert.Equal((300L, 2), (Value(Monthly(monthly, "202601_process-instances")), Monthly(monthly, "202601_process-instances").GetInt32("Reports")));
        Assert.Equal(9, Value(Monthly(monthly, "202601_task-users")));
        // Normalization is for comparing only: each record keeps the id as its report wrote it.
        Assert.Equal(second, (await harness.ReportRecordsAsync()).Single(r => r.RowKey == UsageReportStore.RowKey("r-1b")).GetString("InstallationId"));
    }

    [Fact]
    public void The_installation_key_of_an_ascii_id_is_what_it_was_before_ids_were_normalized()
    {
        // Computed by the key function before ids were Unicode-normalized; records stored under these keys must still be found.
        Assert.Equal("81bf91245ce284f94340671d7a16608f", UsageReportKeys.Installation("inst-1"));
        Assert.Equal("81bf91245ce284f94340671d7a16608f", UsageReportKeys.Installation("INST-1"));
        Assert.Equal("a71eef5490ff53947e6817fd7188ef93", UsageReportKeys.Installation("caf\u00E9-1"));
    }

    [Fact]
    public void The_installation_key_of_an_id_in_lower_case_without_invisible_characters_is_still_the_hash_of_the_id_as_written()
    {
        // Keys already stored stay valid: only ids holding invisible characters, refused now, get another key.
        foreach (var id in new[] { "inst-1", "caf\u00E9-1", "\u0928\u093F\u0930\u094D\u092E\u093E\u0923-1", "a b" })
        {
            Assert.Equal(UsageReportKeys.Hash(id), UsageReportKeys.Installation(id));
        }
    }

    [Fact]
    public async Task Distinct_counts_of_an_installation_named_in_other_case_are_its_largest_report_not_added_up()
    {
        await using var harness = new UsageReportHarness(azurite);
        var firstHalf = Report("r-1a", installation: "inst-1", end: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 100), Metric("task-users", 7)]);
        var secondHalf = Report("r-1b", installation: "Inst-1", start: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 200), Metric("task-users", 9)]);

        Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync("acme/1a.json", Signed(firstHalf))).Status);
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync("acme/1b.json", Signed(secondHalf))).Status);

        var monthly = await harness.MonthlyAsync();
        Assert.Equal(300, Value(Monthly(monthly, "202601_process-instances")));
        Assert.Equal(9, Value(Monthly(monthly, "202601_task-users")));
    }

    [Fact]
    public async Task A_record_keyed_by_the_installation_id_as_written_still_blocks_an_overlapping_period_of_the_installation_named_in_other_case()
    {
        // The key of the old record is the hash of "INST-1"; the new report names the installation "inst-1".
        await using var harness = new UsageReportHarness(azurite);
        await AddProcessedRecordAsync(harness, "r-old", "INST-1", UsageReportKeys.Hash("INST-1"), new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero), "{\"202601\":{\"process-instances\":100}}");
        var again = Report("r-new", installation: "inst-1", metrics: [Metric("process-instances", 100)]);

        var refused = await harness.UploadAndProcessAsync("acme/r-new.json", Signed(again));

        Assert.Equal(BlobLedgerEntry.Rejected, refused.Status);
        Assert.Contains("overlaps report 'r-old'", refused.Reasons[0], StringComparison.Ordinal);
        Assert.DoesNotContain(await harness.ReportRecordsAsync(), r => r.RowKey == UsageReportStore.RowKey("r-new") && r.GetString("Status") == UsageReportStore.Processed);
    }

    [Fact]
    public async Task Counts_add_up_across_reports_and_distinct_counts_take_each_installations_largest_report()
    {
        await using var harness = new UsageReportHarness(azurite);
        var firstHalf = Report("r-1a", end: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 100), Metric("task-users", 7)]);
        var secondHalf = Report("r-1b", start: "2026-01-16T00:00:00Z", metrics: [Metric("process-instances", 200), Metric("task-users", 9)]);
        var otherInstallation = Report("r-2", installation: "inst-2", metrics: [Metric("process-instances", 1000), Metric("task-users", 4)]);

        foreach (var (name, report) in new[] { ("acme/1a.json", firstHalf), ("acme/1b.json", secondHalf), ("acme/2.json", otherInstallation) })
        {
            Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync(name, Signed(report))).Status);
        }

        var monthly = await harness.MonthlyAsync();
        var instances = Monthly(monthly, "202601_process-instances");
        Assert.Equal((1300L, 300L, 3), (Value(instances), instances.GetInt64("Overage"), instances.GetInt32("Reports")));
        var users = Monthly(monthly, "202601_task-users");
        Assert.Equal((13L, 3L, "max"), (Value(users), users.GetInt64("Overage"), users.GetString("Aggregation")));
    }

    [Fact]
    public async Task A_metric_named_in_other_case_is_refused_so_it_cannot_escape_the_entitlement_or_the_distinct_count()
    {
        await using var harness = new UsageReportHarness(azurite);
        var lower = Report("r-inst-1", metrics: [Metric("process-instances", 800), Metric("task-users", 5)]);
        var upper = Report("r-inst-2", installation: "inst-2", metrics: [Metric("Process-Instances", 800), Metric("Task-Users", 6)]);

        var counted = await harness.UploadAndProcessAsync("acme/inst-1.json", Signed(lower));
        var refused = await harness.UploadAndProcessAsync("acme/inst-2.json", Signed(upper));

        Assert.Equal(BlobLedgerEntry.Processed, counted.Status);
        Assert.Equal(BlobLedgerEntry.Rejected, refused.Status);
        Assert.Contains("report.metrics[0].name: metric names are lower case: 'Process-Instances' is written 'process-instances'.", refused.Reasons);
        var monthly = await harness.MonthlyAsync();
        Assert.Equal(["202601_process-instances", "202601_task-users"], monthly.Select(r => r.RowKey));
        var instances = Monthly(monthly, "202601_process-instances");
        Assert.Equal((800L, 1000L, 0L, 1), (Value(instances), instances.GetInt64("Entitlement"), instances.GetInt64("Overage"), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_metric_stated_as_0_over_two_months_is_counted_as_0_in_both_months_not_left_out()
    {
        await using var harness = new UsageReportHarness(azurite);
        var report = Report(start: "2026-01-15T00:00:00Z", end: "2026-02-15T00:00:00Z", metrics:
            [Metric("process-instances", 10, ("2026-01-20", null, 4), ("2026-02-02", null, 6)), Metric("decision-instances", 0), Metric("task-users", 0)]);
        report["generatedAt"] = "2026-02-15T00:00:00Z";

        var outcome = await harness.UploadAndProcessAsync("acme/mid-january.json", Signed(report));

        Assert.Equal(BlobLedgerEntry.Processed, outcome.Status);
        Assert.Equal(
            [
                ("202601_decision-instances", 0L, 1), ("202601_process-instances", 4L, 1), ("202601_task-users", 0L, 1),
                ("202602_decision-instances", 0L, 1), ("202602_process-instances", 6L, 1), ("202602_task-users", 0L, 1),
            ],
            (await harness.MonthlyAsync()).Select(r => (r.RowKey, Value(r), r.GetInt32("Reports") ?? 0)));
    }

    [Fact]
    public async Task Monthly_figures_that_add_up_beyond_what_can_be_counted_are_stated_as_not_countable_with_the_reason_instead_of_failing()
    {
        // Each report's figures are within the reader's limit; a month's reports could still add up beyond a long.
        await using var harness = new UsageReportHarness(azurite);
        var end = new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero);
        foreach (var installation in new[] { "inst-a", "inst-b" })
        {
            await AddProcessedRecordAsync(harness, "r-" + installation, installation, UsageReportKeys.Installation(installation), end,
                "{\"202601\":{\"process-instances\":5000000000000000000,\"task-users\":5000000000000000000,\"decision-instances\":6}}");
        }

        await harness.Host.Services.GetRequiredService<UsageMonthlyTotals>().RecomputeMonthAsync("acme", "202601", TestContext.Current.CancellationToken);

        var monthly = await harness.MonthlyAsync();
        Assert.Equal((12L, 2), (Value(Monthly(monthly, "202601_decision-instances")), Monthly(monthly, "202601_decision-instances").GetInt32("Reports")));
        foreach (var metric in new[] { "process-instances", "task-users" })
        {
            var row = Monthly(monthly, "202601_" + metric);
            Assert.Equal((null, null, 2), (row.GetInt64("Value"), row.GetInt64("Overage"), row.GetInt32("Reports")));
            Assert.Equal($"The reports of 2026-01 add up to more {metric} than can be counted (over 9223372036854775807); their figures need checking.", row.GetString("Problem"));
        }

        using var admin = harness.Host.CreateClient();
        admin.DefaultRequestHeaders.Add("x-functions-key", AdminKey);
        using var response = await admin.GetAsync("/api/usage?customer=acme&from=2026-01&to=2026-01", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var rows = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("rows");
        var instances = rows.EnumerateArray().Single(r => r.GetProperty("metric").GetString() == "process-instances");
        Assert.Equal(
            (System.Text.Json.JsonValueKind.Null, 1000L, System.Text.Json.JsonValueKind.Null),
            (instances.GetProperty("reported").ValueKind, instances.GetProperty("entitlement").GetInt64(), instances.GetProperty("overage").ValueKind));
        Assert.Contains("than can be counted", instances.GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.False(rows.EnumerateArray().Single(r => r.GetProperty("metric").GetString() == "decision-instances").TryGetProperty("problem", out _));
    }

    [Fact]
    public async Task A_crash_while_writing_rows_leaves_nothing_counted_and_the_rerun_leaves_exactly_the_rows_of_one_run()
    {
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults);
        var (report, _, days) = LongReport("r-h1");
        await harness.UploadAsync("acme/h1.json", Signed(report));

        // The claim's transaction and the first transaction of rows go through; storage fails for everything after.
        faults.Matches = FailAfter.IsTransaction;
        faults.Pass = 2;
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/h1.json"));

        Assert.True(faults.Injected > 0);
        var partial = await harness.RowsAsync(TableNames.UsageRows);
        Assert.Equal(100, partial.Count);
        Assert.Equal("pending", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Empty(await harness.MonthlyAsync());

        faults.Heal();
        var rerun = await harness.ProcessAsync("acme/h1.json");

        Assert.Equal(BlobLedgerEntry.Processed, rerun.Status);
        var rows = await harness.RowsAsync(TableNames.UsageRows);
        Assert.Equal(LongReportRows, rows.Count);
        Assert.Equal(rows.Count, rows.Select(r => r.RowKey).Distinct().Count());
        Assert.Equal(days.Sum(d => d.Item3), rows.Where(r => r.RowKey.StartsWith("d_", StringComparison.Ordinal)).Sum(Value));
        Assert.Equal(days.Sum(d => d.Item3), rows.Where(r => r.RowKey.StartsWith("m_", StringComparison.Ordinal)).Sum(Value));
        Assert.Equal("processed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Equal(
            [("202601_process-instances", days.Take(31).Sum(d => d.Item3)), ("202605_process-instances", days.Skip(120).Sum(d => d.Item3))],
            (await harness.MonthlyAsync()).Where(r => r.RowKey is "202601_process-instances" or "202605_process-instances").Select(r => (r.RowKey, Value(r))));
        var ledger = Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs));
        Assert.Equal(2, ledger.GetInt32("Attempts"));
    }

    [Fact]
    public async Task A_report_that_always_fails_is_quarantined_as_failed_after_the_attempt_limit_and_stays_visible()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "3" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));

        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        var third = await harness.ProcessAsync("acme/2026-01.json");
        var fourth = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal(BlobLedgerEntry.Failed, third.Status);
        Assert.Equal(UsageReportOutcome.Missing, fourth.Status);
        var error = await harness.ErrorDocumentAsync("acme/2026-01.json");
        Assert.Equal(("failed", 3), (error.GetProperty("status").GetString(), error.GetProperty("attempts").GetInt32()));
        Assert.StartsWith("Processing failed after 3 attempts; the last error was InvalidOperationException: Injected fault", error.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("acme/2026-01.json", await UsageReportHarness.NamesAsync(harness.Quarantine));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal("failed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Empty(await harness.MonthlyAsync());
    }

    [Fact]
    public async Task A_failed_report_moved_back_after_the_cause_is_fixed_is_processed()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        var content = Signed(Report());
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.UploadAndProcessAsync("acme/2026-01.json", content)).Status);

        faults.Heal();
        var again = await harness.UploadAndProcessAsync("acme/2026-01.json", content);

        Assert.Equal(BlobLedgerEntry.Processed, again.Status);
        Assert.Equal("processed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_failed_report_moved_back_after_another_report_covered_its_period_is_refused_as_overlapping_and_not_billed_twice()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        var first = Signed(Report("r-a", metrics: [Metric("process-instances", 1200)]));
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.UploadAndProcessAsync("acme/a.json", first)).Status);
        faults.Heal();
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync("acme/b.json", Signed(Report("r-b", metrics: [Metric("process-instances", 900)])))).Status);

        // The operator follows the error document: the cause is fixed, the failed report goes back into the container.
        var movedBack = await harness.UploadAndProcessAsync("acme/a.json", first);

        Assert.Equal(BlobLedgerEntry.Rejected, movedBack.Status);
        Assert.Contains("overlaps report 'r-b'", movedBack.Reasons[0], StringComparison.Ordinal);
        // The failed original and its error document stay as they were; the report refused now goes beside them.
        Assert.Equal("failed", (await harness.ErrorDocumentAsync("acme/a.json")).GetProperty("status").GetString());
        var refused = (await UsageReportHarness.NamesAsync(harness.Quarantine)).Single(n => n.StartsWith("acme/a~", StringComparison.Ordinal) && !n.EndsWith(UsageReportContainers.ErrorSuffix, StringComparison.Ordinal));
        Assert.Contains("overlaps report 'r-b'", (await harness.ErrorDocumentAsync(refused)).GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        var records = (await harness.ReportRecordsAsync()).ToDictionary(r => r.RowKey, r => r.GetString("Status") ?? "");
        Assert.Equal(new Dictionary<string, string> { ["r_r-a"] = "failed", ["r_r-b"] = "processed" }, records);
        Assert.Contains("overlaps report 'r-b'", UsageReportStore.ParseReasons((await harness.ReportRecordsAsync()).Single(r => r.RowKey == "r_r-a").GetString("Reasons"))[0], StringComparison.Ordinal);
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((900L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_regenerated_report_uploaded_under_the_name_of_one_that_failed_takes_its_report_id_over_is_counted_and_leaves_the_failed_original_in_quarantine()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        var original = Signed(Report("r-1"));
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.UploadAndProcessAsync("acme/2026-01.json", original)).Status);
        var failedError = await harness.ErrorDocumentAsync("acme/2026-01.json");
        faults.Heal();

        var outcome = await harness.UploadAndProcessAsync("acme/2026-01.json", Signed(Regenerated(Report("r-1"))));

        Assert.Equal((BlobLedgerEntry.Processed, "r-1"), (outcome.Status, outcome.ReportId));
        Assert.Equal(["acme/2026-01.json", "acme/2026-01.json.error.json"], await UsageReportHarness.NamesAsync(harness.Quarantine));
        Assert.Equal(original, await DownloadAsync(harness.Quarantine, "acme/2026-01.json"));
        Assert.Equal(failedError.ToString(), (await harness.ErrorDocumentAsync("acme/2026-01.json")).ToString());
        Assert.Equal("failed", failedError.GetProperty("status").GetString());
        var record = Assert.Single(await harness.ReportRecordsAsync());
        Assert.Equal(("processed", 2, "2026-06-01T08:00:00Z"), (record.GetString("Status"), record.GetInt32("Claim"), record.GetDateTimeOffset("GeneratedAt")?.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(await RowsOfAsync(harness, "r-1"), r => Assert.Equal(2, r.GetInt32("Claim")));
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));

        using var client = harness.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = Basic(ReportKey);
        using var status = await client.GetAsync("/v1/usage-reports/r-1", TestContext.Current.CancellationToken);
        var body = System.Text.Json.JsonDocument.Parse(await status.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal(("processed", record.GetString("ContentHash")), (body.GetProperty("status").GetString(), body.GetProperty("contentSha256").GetString()));
        Assert.False(body.TryGetProperty("conflicts", out _));
    }

    [Fact]
    public async Task A_report_taking_over_the_id_of_a_failed_one_deletes_the_rows_its_runs_left_and_a_crash_mid_run_still_leaves_exactly_the_rows_of_one_run()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 2 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/h9.json", Signed(LongReport("r-h9").Report));

        // The claim and the first 100 rows go through, then storage takes no transaction: the report fails, and the
        // deletion of its rows fails with it.
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/h9.json"));
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/h9.json")).Status);
        Assert.Equal(100, (await RowsOfAsync(harness, "r-h9")).Count);

        // A regenerated report for January only, under the same id: its rows' transaction fails once, after its claim.
        var transactions = 0;
        faults.Matches = m => FailAfter.IsTransaction(m) && Interlocked.Increment(ref transactions) == 3;
        var replacement = Signed(Report("r-h9"));
        await harness.UploadAsync("acme/h9-regenerated.json", replacement);
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/h9-regenerated.json"));

        Assert.Equal(("pending", 2), ((await harness.ReportRecordsAsync()).Single().GetString("Status"), (await harness.ReportRecordsAsync()).Single().GetInt32("Claim")));
        Assert.Empty(await RowsOfAsync(harness, "r-h9"));

        var rerun = await harness.ProcessAsync("acme/h9-regenerated.json");

        Assert.Equal(BlobLedgerEntry.Processed, rerun.Status);
        var record = Assert.Single(await harness.ReportRecordsAsync());
        var rows = await RowsOfAsync(harness, "r-h9");
        Assert.Equal(8, rows.Count);
        Assert.All(rows, r => Assert.Equal((2, record.GetString("ContentHash")), (r.GetInt32("Claim") ?? 0, r.GetString("ContentHash"))));
        Assert.Equal(1200, Value(rows.Single(r => r.RowKey == "t_process-instances")));
        Assert.Equal([("202601_process-instances", 1200L), ("202601_task-users", 7L)], (await harness.MonthlyAsync()).Select(r => (r.RowKey, Value(r))));
    }

    [Fact]
    public async Task Other_content_under_a_report_id_still_being_processed_is_a_conflict_whose_reason_says_the_first_is_not_counted_yet()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "3" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        faults.Heal();

        var conflict = await harness.UploadAndProcessAsync("acme/2026-01-regenerated.json", Signed(Regenerated(Report())));
        var first = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal((BlobLedgerEntry.Conflict, BlobLedgerEntry.Processed), (conflict.Status, first.Status));
        var reason = Assert.Single(conflict.Reasons);
        Assert.Contains("Report id 'r-2026-01' was already received with different content (blob 'acme/2026-01.json'", reason, StringComparison.Ordinal);
        Assert.Contains("that report is still being processed and this one is not counted", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("kept", reason, StringComparison.Ordinal);
        Assert.Equal(reason, (await harness.ErrorDocumentAsync("acme/2026-01-regenerated.json")).GetProperty("reasons")[0].GetString());
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_committed_report_whose_monthly_totals_keep_failing_is_never_quarantined_shows_processed_and_the_reconciliation_pass_finishes_its_months()
    {
        var faults = new FailAfter { Matches = m => m.Request.Uri.Path.Contains(TableNames.UsageMonthly, StringComparison.Ordinal) };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));

        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));

        Assert.Equal(["acme/2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Quarantine));
        Assert.Equal("processed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        using var client = harness.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = Basic(ReportKey);
        using var status = await client.GetAsync("/v1/usage-reports/r-2026-01", TestContext.Current.CancellationToken);
        var body = System.Text.Json.JsonDocument.Parse(await status.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal(("processed", "pending"), (body.GetProperty("status").GetString(), body.GetProperty("monthlyTotals").GetString()));

        faults.Heal();
        var pass = await harness.Host.Services.GetRequiredService<UsageReportReconciliation>().RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal((1, 1), (pass.Examined, pass.Processed));
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
        Assert.Equal(BlobLedgerEntry.Processed, Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs)).GetString("Status"));
    }

    [Fact]
    public async Task A_report_committed_by_runs_all_stopped_before_their_monthly_totals_is_never_quarantined_as_failed_and_its_months_are_counted()
    {
        using var stops = new StopRun { Matches = m => m.Request.Uri.Path.Contains(TableNames.UsageMonthly, StringComparison.Ordinal) };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: stops, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));

        // Each run is stopped (a host's timeout, a killed process) after the commit, before it can note anything.
        for (var run = 0; run < 2; run++)
        {
            var token = stops.NextRun();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/2026-01.json", token));
        }

        stops.Heal();
        var next = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal(BlobLedgerEntry.Processed, next.Status);
        Assert.Equal(["acme/2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Quarantine));
        Assert.Equal("processed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_blob_whose_runs_were_all_stopped_after_its_claim_fails_that_claim_when_given_up_so_a_replacement_for_the_period_is_counted()
    {
        using var stops = new StopRun { Matches = FailAfter.IsTransaction };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: stops, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/stopped.json", Signed(Report("r-stopped")));

        // The first run's claim goes through and it is stopped at its rows; so is the second, which finds its claim.
        stops.Pass = 1;
        var first = stops.NextRun();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/stopped.json", first));
        var second = stops.NextRun();
        stops.Pass = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/stopped.json", second));
        stops.Heal();

        var gaveUp = await harness.ProcessAsync("acme/stopped.json");
        var replacement = await harness.UploadAndProcessAsync("acme/replacement.json", Signed(Report("r-replacement")));

        Assert.Equal(BlobLedgerEntry.Failed, gaveUp.Status);
        Assert.Equal("r-stopped", gaveUp.ReportId);
        Assert.Equal(BlobLedgerEntry.Processed, replacement.Status);
        var records = (await harness.ReportRecordsAsync()).ToDictionary(r => r.RowKey, r => r.GetString("Status") ?? "");
        Assert.Equal(new Dictionary<string, string> { ["r_r-stopped"] = "failed", ["r_r-replacement"] = "processed" }, records);
        Assert.Empty(await RowsOfAsync(harness, "r-stopped"));
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_blob_given_up_on_an_attempt_that_failed_before_reading_it_fails_the_claim_an_earlier_attempt_made()
    {
        var reads = 0;
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report("r-unread")));

        // The first attempt claims the id and fails at its rows; the last fails reading the blob (once: the quarantine reads it too).
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/2026-01.json"));
        faults.Matches = m => m.Request.Method == RequestMethod.Get && m.Request.Uri.Path.EndsWith("/acme/2026-01.json", StringComparison.Ordinal) && Interlocked.Increment(ref reads) == 1;
        var gaveUp = await harness.ProcessAsync("acme/2026-01.json");
        faults.Heal();
        var replacement = await harness.UploadAndProcessAsync("acme/replacement.json", Signed(Report("r-replacement")));

        Assert.Equal(2, faults.Injected); // the first attempt's rows, the last attempt's read
        Assert.Equal(BlobLedgerEntry.Failed, gaveUp.Status);
        Assert.Equal("failed", (await harness.ReportRecordsAsync()).Single(r => r.RowKey == "r_r-unread").GetString("Status"));
        Assert.Equal(BlobLedgerEntry.Processed, replacement.Status);
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_report_uploaded_over_a_processed_one_under_the_same_name_whose_runs_were_all_stopped_is_failed_when_given_up_not_taken_for_the_earlier_upload_s_commit(bool stoppedAfterClaim)
    {
        using var stops = new StopRun();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: stops, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        var first = await harness.UploadAndProcessAsync("acme/usage.json", Signed(Report("r-first")));
        await harness.UploadAsync("acme/usage.json", Signed(Report("r-second", installation: "inst-2")));

        // Every run of the second upload is stopped (a host's timeout, a killed process) before it can note anything:
        // at its rows, after the first run's claim went through, or at reading the blob, before any claim.
        stops.Matches = stoppedAfterClaim
            ? FailAfter.IsTransaction
            : m => m.Request.Method == RequestMethod.Get && m.Request.Uri.Path.EndsWith("/acme/usage.json", StringComparison.Ordinal);
        for (var run = 0; run < 2; run++)
        {
            var token = stops.NextRun();
            stops.Pass = stoppedAfterClaim && run == 0 ? 1 : 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/usage.json", token));
        }

        stops.Heal();
        var gaveUp = await harness.ProcessAsync("acme/usage.json");
        var replacement = await harness.UploadAndProcessAsync("acme/replacement.json", Signed(Report("r-replacement", installation: "inst-2")));

        Assert.Equal(BlobLedgerEntry.Processed, first.Status);
        Assert.Equal((BlobLedgerEntry.Failed, stoppedAfterClaim ? "r-second" : null), (gaveUp.Status, gaveUp.ReportId));
        Assert.Equal(["acme/usage.json", "acme/usage.json.error.json"], await UsageReportHarness.NamesAsync(harness.Quarantine));
        Assert.Equal(BlobLedgerEntry.Processed, replacement.Status);
        var expected = new Dictionary<string, string> { ["r_r-first"] = "processed", ["r_r-replacement"] = "processed" };
        if (stoppedAfterClaim)
        {
            expected["r_r-second"] = "failed";
        }

        Assert.Equal(expected, (await harness.ReportRecordsAsync()).ToDictionary(r => r.RowKey, r => r.GetString("Status") ?? ""));
        Assert.Empty(await RowsOfAsync(harness, "r-second"));
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((2400L, 2), (Value(instances), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_report_uploaded_over_a_processed_one_under_the_same_name_whose_every_attempt_failed_before_reading_it_is_failed_on_the_last_not_taken_for_committed()
    {
        var reads = 0;
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAndProcessAsync("acme/usage.json", Signed(Report("r-first")));
        await harness.UploadAsync("acme/usage.json", Signed(Report("r-second", installation: "inst-2")));

        // Both attempts at the second upload fail reading it (not the quarantine's read that follows).
        faults.Matches = m => m.Request.Method == RequestMethod.Get && m.Request.Uri.Path.EndsWith("/acme/usage.json", StringComparison.Ordinal) && Interlocked.Increment(ref reads) <= 2;
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/usage.json"));
        var gaveUp = await harness.ProcessAsync("acme/usage.json");
        faults.Heal();

        Assert.Equal((BlobLedgerEntry.Failed, (string?)null, 2), (gaveUp.Status, gaveUp.ReportId, faults.Injected));
        Assert.Equal(BlobLedgerEntry.Failed, Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs)).GetString("Status"));
        Assert.Equal(["r_r-first"], (await harness.ReportRecordsAsync()).Select(r => r.RowKey));
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    [Fact]
    public async Task A_pending_claim_recorded_before_claims_kept_the_upload_is_taken_up_by_the_next_run_of_the_blob_and_failed_when_its_runs_are_all_stopped()
    {
        using var stops = new StopRun { Matches = FailAfter.IsTransaction };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: stops, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "2" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report("r-legacy")));

        // The first run claims and is stopped at its rows; its claim is then made to look as claims were recorded before
        // they kept the upload's ETag. The second run takes that claim up and is stopped at its rows too.
        stops.Pass = 1;
        var first = stops.NextRun();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/2026-01.json", first));
        var table = harness.Host.Tables.Table(TableNames.UsageReports);
        var claim = (await table.GetEntityAsync<TableEntity>("acme", UsageReportStore.RowKey("r-legacy"), cancellationToken: TestContext.Current.CancellationToken)).Value;
        Assert.True(claim.Remove("BlobETag"));
        await table.UpdateEntityAsync(claim, claim.ETag, TableUpdateMode.Replace, TestContext.Current.CancellationToken);
        stops.Pass = 0;
        var second = stops.NextRun();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Processor.ProcessAsync("acme/2026-01.json", second));
        stops.Heal();

        var gaveUp = await harness.ProcessAsync("acme/2026-01.json");
        var replacement = await harness.UploadAndProcessAsync("acme/replacement.json", Signed(Report("r-replacement")));

        Assert.Equal((BlobLedgerEntry.Failed, "r-legacy"), (gaveUp.Status, gaveUp.ReportId));
        Assert.Equal(BlobLedgerEntry.Processed, replacement.Status);
        var records = (await harness.ReportRecordsAsync()).ToDictionary(r => r.RowKey, r => r.GetString("Status") ?? "");
        Assert.Equal(new Dictionary<string, string> { ["r_r-legacy"] = "failed", ["r_r-replacement"] = "processed" }, records);
        var instances = Monthly(await harness.MonthlyAsync(), "202601_process-instances");
        Assert.Equal((1200L, 1), (Value(instances), instances.GetInt32("Reports")));
    }

    /// <summary>The one entry the shared batch writer logged for a refused transaction: its size and the refused action's index, no data.</summary>
    private static void AssertRefusalLogged(CapturedLogs logs, UsageReportHarness harness, string table, int actions, int failedActionIndex)
    {
        var entry = Assert.Single(logs.Of<TableBatchWriter>());
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, entry.Level);
        Assert.Equal((actions, failedActionIndex, 400), ((int)entry.Value("Actions")!, (int?)entry.Value("FailedActionIndex"), (int)entry.Value("Status")!));
        Assert.Contains(harness.Host.TablePrefix + table, entry.Message, StringComparison.Ordinal);
        foreach (var data in new[] { OversizedTransactionAction.Padding, "acme", "r-2026-01", "inst-1", "process-instances" })
        {
            Assert.DoesNotContain(data, entry.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_claim_transaction_storage_refuses_is_logged_with_the_index_of_the_refused_action_counts_nothing_and_a_later_try_counts_it()
    {
        var logs = new CapturedLogs();
        var refusal = new OversizedTransactionAction(TableNames.UsageReports, actionIndex: 1, times: 1);
        await using var harness = new UsageReportHarness(azurite, storagePolicy: refusal, logs: logs);
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));

        await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(() => harness.ProcessAsync("acme/2026-01.json"));

        // The claim and the customer's head row go in one transaction: storage refused the head row (action 1).
        Assert.Equal(1, refusal.Injected);
        AssertRefusalLogged(logs, harness, TableNames.UsageReports, actions: 2, failedActionIndex: 1);
        await AssertNothingCountedAsync(harness);

        var again = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal(BlobLedgerEntry.Processed, again.Status);
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_monthly_totals_transaction_storage_refuses_is_logged_with_the_index_of_the_refused_action_writes_no_month_and_a_later_try_writes_it()
    {
        var logs = new CapturedLogs();
        var refusal = new OversizedTransactionAction(TableNames.UsageMonthly, actionIndex: 0, times: 1);
        await using var harness = new UsageReportHarness(azurite, storagePolicy: refusal, logs: logs);
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));

        await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(() => harness.ProcessAsync("acme/2026-01.json"));

        // January's two metric rows and its head row go in one transaction: storage refused the first row (action 0).
        Assert.Equal(1, refusal.Injected);
        AssertRefusalLogged(logs, harness, TableNames.UsageMonthly, actions: 3, failedActionIndex: 0);
        Assert.Empty(await harness.RowsAsync(TableNames.UsageMonthly));
        Assert.Equal("processed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));

        var again = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal(BlobLedgerEntry.Processed, again.Status);
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
        Assert.Single(logs.Of<TableBatchWriter>());
    }

    [Fact]
    public async Task A_claim_that_other_claims_keep_beating_is_contention_not_an_attempt_so_it_is_never_quarantined_and_a_later_try_counts_it()
    {
        var otherClaims = new BeforeRequestPolicy(FailAfter.IsTransaction);
        await using var harness = new UsageReportHarness(azurite, storagePolicy: otherClaims, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        await harness.UploadAsync("acme/2026-01.json", Signed(Report()));
        // Before every transaction, another report of the customer gets its claim in: the head row changes each time.
        var records = harness.Host.Tables.Table(TableNames.UsageReports);
        otherClaims.Arm(() => records.UpsertEntityAsync(new TableEntity("acme", "head") { ["Other"] = Guid.NewGuid().ToString() }, TableUpdateMode.Merge), times: int.MaxValue);

        await Assert.ThrowsAsync<StorageContentionException>(() => harness.ProcessAsync("acme/2026-01.json"));
        var pass = await harness.Host.Services.GetRequiredService<UsageReportReconciliation>().RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal((1, 1, 0), (pass.Examined, pass.Failures, pass.Quarantined));
        Assert.Equal(["acme/2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Quarantine));
        var ledger = Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs));
        Assert.Equal((0, BlobLedgerEntry.Processing), (ledger.GetInt32("Attempts"), ledger.GetString("Status")));
        Assert.StartsWith("StorageContentionException: Could not claim", ledger.GetString("LastError"), StringComparison.Ordinal);
        await AssertNothingCountedAsync(harness);

        otherClaims.Disarm();
        var later = await harness.ProcessAsync("acme/2026-01.json");

        Assert.Equal(BlobLedgerEntry.Processed, later.Status);
        Assert.Equal(1200, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_commit_whose_record_keeps_changing_is_contention_the_attempt_is_given_back_and_a_later_try_commits_one_set_of_rows()
    {
        var faults = new StorageFaults();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        var (report, total, _) = LongReport("r-c1");
        await harness.UploadAsync("acme/c1.json", Signed(report));
        faults.Outage(IsConditionalUpdateOfReportRecord, status: 412);

        await Assert.ThrowsAsync<StorageContentionException>(() => harness.ProcessAsync("acme/c1.json"));

        Assert.Equal("pending", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Equal(["acme/c1.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal(0, Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs)).GetInt32("Attempts"));
        Assert.Empty(await harness.MonthlyAsync());

        faults.Heal();
        var later = await harness.ProcessAsync("acme/c1.json");

        Assert.Equal(BlobLedgerEntry.Processed, later.Status);
        Assert.Equal(LongReportRows, (await RowsOfAsync(harness, "r-c1")).Count);
        Assert.Equal(total, (await harness.MonthlyAsync()).Where(r => r.GetString("Metric") == "process-instances").Sum(Value));
    }

    [Fact]
    public async Task Giving_up_on_a_blob_at_the_start_of_an_attempt_fails_only_the_claim_of_the_content_it_read_not_another_uploads_claim_of_the_id()
    {
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "5" });
        var (regenerated, total, _) = LongReport("r-same-id");

        // A regenerated report holds the id: its claim went through, its rows are being written (storage failed after
        // the first transaction of them).
        await harness.UploadAsync("acme/regenerated.json", Signed(regenerated));
        faults.Matches = FailAfter.IsTransaction;
        faults.Pass = 2;
        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/regenerated.json"));
        faults.Heal();
        var claim = Assert.Single(await harness.ReportRecordsAsync());
        Assert.Equal("pending", claim.GetString("Status"));
        var rowsWritten = (await RowsOfAsync(harness, "r-same-id")).Count;
        Assert.True(rowsWritten > 0);

        // The original upload of that id, other content, whose attempts ran out, its last one stopped before it could
        // say so (the process ended): the next attempt gives up at its start.
        var original = Signed(Report("r-same-id"));
        await harness.UploadAsync("acme/original.json", original);
        var customer = harness.Host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<UsageReportOptions>>().Value.FindCustomer("acme")!;
        var read = await harness.Host.Services.GetRequiredService<UsageReportReader>().ReadAsync(new MemoryStream(original), customer, TestContext.Current.CancellationToken);
        Assert.NotEqual(claim.GetString("ContentHash"), read.ContentHash);
        var properties = await harness.Reports.GetBlobClient("acme/original.json").GetPropertiesAsync(cancellationToken: TestContext.Current.CancellationToken);
        await harness.Host.Tables.Table(TableNames.UsageReportBlobs).UpsertEntityAsync(
            new TableEntity(UsageBlobLedger.PartitionKey("acme/original.json"), UsageBlobLedger.RowKey("acme/original.json"))
            {
                ["BlobName"] = "acme/original.json",
                ["BlobETag"] = UsageBlobLedger.Normalize(properties.Value.ETag),
                ["Attempts"] = 5,
                ["Status"] = BlobLedgerEntry.Processing,
                ["ReportId"] = "r-same-id",
                ["ContentHash"] = read.ContentHash,
                ["LastError"] = "InvalidOperationException: storage stopped answering.",
                ["Reasons"] = "[]",
            },
            TableUpdateMode.Replace,
            TestContext.Current.CancellationToken);

        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/original.json")).Status);

        var kept = Assert.Single(await harness.ReportRecordsAsync());
        Assert.Equal(("pending", claim.GetString("ContentHash")), (kept.GetString("Status"), kept.GetString("ContentHash")));
        Assert.Equal(rowsWritten, (await RowsOfAsync(harness, "r-same-id")).Count);
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.ProcessAsync("acme/regenerated.json")).Status);
        Assert.Equal(total, (await harness.MonthlyAsync()).Where(r => r.GetString("Metric") == "process-instances").Sum(Value));
    }

    [Fact]
    public async Task A_report_given_up_after_a_crash_before_its_commit_leaves_no_rows_and_brought_back_writes_exactly_one_set()
    {
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync("acme/kept.json", Signed(Report("r-kept", installation: "inst-kept")))).Status);
        var kept = await RowsOfAsync(harness, "r-kept");
        var (report, total, _) = LongReport("r-h2");
        var content = Signed(report);
        await harness.UploadAsync("acme/h2.json", content);

        // The claim and the first 100 rows are written; the second transaction of rows fails, and with it the only attempt.
        var transactions = 0;
        faults.Matches = m => FailAfter.IsTransaction(m) && Interlocked.Increment(ref transactions) == 3;
        var gaveUp = await harness.ProcessAsync("acme/h2.json");

        Assert.Equal(BlobLedgerEntry.Failed, gaveUp.Status);
        Assert.Equal(1, faults.Injected);
        Assert.Empty(await RowsOfAsync(harness, "r-h2"));
        Assert.Equal("failed", (await harness.ReportRecordsAsync()).Single(r => r.RowKey == "r_r-h2").GetString("Status"));
        Assert.Equal(kept.Select(r => (r.RowKey, r.ETag)), (await RowsOfAsync(harness, "r-kept")).Select(r => (r.RowKey, r.ETag)));

        faults.Heal();
        var movedBack = await harness.UploadAndProcessAsync("acme/h2.json", content);

        Assert.Equal(BlobLedgerEntry.Processed, movedBack.Status);
        var rows = await RowsOfAsync(harness, "r-h2");
        Assert.Equal(LongReportRows, rows.Count);
        Assert.All(rows, r => Assert.Equal(2, r.GetInt32("Claim")));
        Assert.Equal(total + 1200, (await harness.MonthlyAsync()).Where(r => r.GetString("Metric") == "process-instances").Sum(Value));
    }

    [Fact]
    public async Task Rows_that_giving_up_could_not_delete_are_deleted_by_the_reconciliation_pass_once_no_run_of_the_claim_can_still_write()
    {
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        await harness.UploadAndProcessAsync("acme/kept.json", Signed(Report("r-kept", installation: "inst-kept")));
        var kept = await RowsOfAsync(harness, "r-kept");
        await harness.UploadAsync("acme/h3.json", Signed(LongReport("r-h3").Report));

        // Storage stops taking transactions after the first 100 rows: the attempt fails, and so does the deletion.
        faults.Matches = FailAfter.IsTransaction;
        faults.Pass = 2;
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/h3.json")).Status);
        Assert.Equal(100, (await RowsOfAsync(harness, "r-h3")).Count);
        faults.Heal();
        var reconciliation = harness.Host.Services.GetRequiredService<UsageReportReconciliation>();

        var tooSoon = await reconciliation.RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);
        harness.Time.Advance(TimeSpan.FromMinutes(61));
        var pass = await reconciliation.RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);
        var nextPass = await reconciliation.RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal((0, 100, 0), (tooSoon.AbandonedRowsDeleted, pass.AbandonedRowsDeleted, nextPass.AbandonedRowsDeleted));
        Assert.Empty(await RowsOfAsync(harness, "r-h3"));
        var record = (await harness.ReportRecordsAsync()).Single(r => r.RowKey == "r_r-h3");
        Assert.Equal(("failed", true), (record.GetString("Status"), record.GetBoolean("RowsDeleted")));
        Assert.Equal(kept.Select(r => (r.RowKey, r.ETag)), (await RowsOfAsync(harness, "r-kept")).Select(r => (r.RowKey, r.ETag)));
        Assert.Equal("processed", (await harness.ReportRecordsAsync()).Single(r => r.RowKey == "r_r-kept").GetString("Status"));
    }

    [Fact]
    public async Task A_run_whose_claim_another_run_gave_up_does_not_commit_and_a_stale_deletion_never_touches_the_rows_of_the_claim_taken_back()
    {
        var commit = new BeforeRequestPolicy(IsConditionalUpdateOfReportRecord);
        await using var harness = new UsageReportHarness(azurite, storagePolicy: commit);
        var (report, total, _) = LongReport("r-g1");
        await harness.UploadAsync("acme/g1.json", Signed(report));
        var store = harness.Host.Services.GetRequiredService<UsageReportStore>();
        var rowStore = harness.Host.Services.GetRequiredService<UsageRowStore>();
        UsageReportRecord? givenUp = null;
        // Just before this run's commit, a concurrent run of the same report gives up: it marks the report failed and
        // deletes its rows.
        commit.Arm(async () =>
        {
            givenUp = await store.MarkFailedAsync("acme", "r-g1", null, ["Processing failed after 5 attempts."], TestContext.Current.CancellationToken);
            await rowStore.DeleteAbandonedAsync(givenUp!, TestContext.Current.CancellationToken);
        });

        await Assert.ThrowsAsync<StorageContentionException>(() => harness.ProcessAsync("acme/g1.json"));

        Assert.True(commit.Fired);
        Assert.Equal("failed", Assert.Single(await harness.ReportRecordsAsync()).GetString("Status"));
        Assert.Empty(await RowsOfAsync(harness, "r-g1"));
        Assert.Empty(await harness.MonthlyAsync());
        Assert.Equal(0, Assert.Single(await harness.RowsAsync(TableNames.UsageReportBlobs)).GetInt32("Attempts"));

        // The retry takes the claim back and commits; a deletion still holding the given-up claim then runs late.
        var retry = await harness.ProcessAsync("acme/g1.json");
        var staleDeletion = await rowStore.DeleteAbandonedAsync(givenUp!, TestContext.Current.CancellationToken);

        Assert.Equal(BlobLedgerEntry.Processed, retry.Status);
        Assert.Equal(0, staleDeletion);
        var rows = await RowsOfAsync(harness, "r-g1");
        Assert.Equal(LongReportRows, rows.Count);
        Assert.All(rows, r => Assert.Equal(2, r.GetInt32("Claim")));
        Assert.Equal(total, (await harness.MonthlyAsync()).Where(r => r.GetString("Metric") == "process-instances").Sum(Value));
    }

    [Fact]
    public async Task The_reconciliation_pass_processes_blobs_whose_event_was_missed_and_leaves_young_ones_to_their_event()
    {
        await using var harness = new UsageReportHarness(azurite);
        await harness.UploadAndProcessAsync("acme/seen.json", Signed(Report("r-seen", installation: "inst-9")));
        await harness.UploadAsync("acme/missed-1.json", Signed(Report("r-missed-1", installation: "inst-1")));
        await harness.UploadAsync("acme/missed-2.json.gz", Gzip(Signed(Report("r-missed-2", installation: "inst-2"))));
        await harness.UploadAsync("acme/missed-bad.json", "{ nope"u8.ToArray());
        var uploaded = (await harness.Reports.GetBlobClient("acme/missed-2.json.gz").GetPropertiesAsync(cancellationToken: TestContext.Current.CancellationToken)).Value.LastModified;
        var jobs = harness.Host.Services.GetRequiredService<TelemetryJobs>();

        harness.Time.SetUtcNow(uploaded + TimeSpan.FromMinutes(1));
        var tooYoung = await jobs.ReconcileAsync(TestContext.Current.CancellationToken);
        harness.Time.SetUtcNow(uploaded + TimeSpan.FromMinutes(6));
        var pass = await jobs.ReconcileAsync(TestContext.Current.CancellationToken);
        var nextPass = await jobs.ReconcileAsync(TestContext.Current.CancellationToken);

        Assert.Equal((4, 0), (tooYoung.Blobs, tooYoung.Examined));
        Assert.Equal((4, 3, 2, 1), (pass.Blobs, pass.Examined, pass.Processed, pass.Quarantined));
        Assert.Equal((3, 0), (nextPass.Blobs, nextPass.Examined));
        Assert.Equal(["r_r-missed-1", "r_r-missed-2", "r_r-seen"], (await harness.ReportRecordsAsync()).Select(r => r.RowKey).Order(StringComparer.Ordinal));
        Assert.Equal(3600, Value(Monthly(await harness.MonthlyAsync(), "202601_process-instances")));
    }

    [Fact]
    public async Task A_quarantine_move_interrupted_before_the_delete_is_finished_by_the_next_pass()
    {
        var faults = new FailAfter { Matches = m => m.Request.Method == Azure.Core.RequestMethod.Delete && m.Request.Uri.Path.Contains("usage-reports/", StringComparison.Ordinal) };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults);
        await harness.UploadAsync("acme/bad.json", "[]"u8.ToArray());

        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/bad.json"));
        Assert.Contains("acme/bad.json", await UsageReportHarness.NamesAsync(harness.Reports));

        faults.Heal();
        var pass = await harness.Host.Services.GetRequiredService<UsageReportReconciliation>().RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal((1, 1), (pass.Examined, pass.Quarantined));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal(["acme/bad.json", "acme/bad.json.error.json"], await UsageReportHarness.NamesAsync(harness.Quarantine));
    }

    [Fact]
    public async Task A_report_whose_name_leaves_no_room_for_its_error_document_is_quarantined_under_a_shortened_tagged_name_within_azures_limit()
    {
        // Azure allows 1,024 characters in a blob name (Azurite does not check): the name itself fits, the name with
        // ".error.json" would not.
        var blobName = "acme/" + new string('r', 1020 - "acme/".Length - ".json".Length) + ".json";
        await using var harness = new UsageReportHarness(azurite);

        var outcome = await harness.UploadAndProcessAsync(blobName, "[]"u8.ToArray());

        Assert.Equal(BlobLedgerEntry.Rejected, outcome.Status);
        var names = await UsageReportHarness.NamesAsync(harness.Quarantine);
        Assert.Equal(2, names.Count);
        Assert.All(names, name => Assert.True(name.Length <= 1024, $"{name.Length} characters"));
        var copy = Assert.Single(names, n => !n.EndsWith(UsageReportContainers.ErrorSuffix, StringComparison.Ordinal));
        Assert.Equal(copy + UsageReportContainers.ErrorSuffix, Assert.Single(names, n => n.EndsWith(UsageReportContainers.ErrorSuffix, StringComparison.Ordinal)));
        Assert.StartsWith("acme/rrr", copy, StringComparison.Ordinal);
        Assert.Matches("~[0-9a-f]{16}\\.json\\z", copy);
        Assert.Equal(blobName, (await harness.ErrorDocumentAsync(copy)).GetProperty("blob").GetString());
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Theory]
    [InlineData("acme/report.json", 21, "acme/report~0123.json")]
    [InlineData("acme/abcdefghij.json.gz", 21, "acme/abc~0123.json.gz")]
    [InlineData("acme/abcdefghijkl", 21, "acme/abcdefghijk~0123")]
    [InlineData("acme/abcdef\U0001F600gh.json", 22, "acme/abcdef~0123.json")]
    public void A_tagged_quarantine_name_is_cut_before_its_tag_to_fit_and_never_inside_a_surrogate_pair(string name, int maxLength, string expected)
    {
        var fitted = UsageReportContainers.TaggedWithin(name, "0123", maxLength);

        Assert.Equal(expected, fitted);
        Assert.True(fitted.Length <= maxLength);
    }

    [Fact]
    public async Task A_report_quarantined_under_a_name_already_in_quarantine_goes_beside_it_under_a_unique_name_and_overwrites_nothing()
    {
        await using var harness = new UsageReportHarness(azurite);
        var first = "[]"u8.ToArray();
        var second = Signed(Report(), OtherSecret);
        Assert.Equal(BlobLedgerEntry.Rejected, (await harness.UploadAndProcessAsync("acme/2026-01.json", first)).Status);
        var firstError = await harness.ErrorDocumentAsync("acme/2026-01.json");

        var outcome = await harness.UploadAndProcessAsync("acme/2026-01.json", second);

        Assert.Equal(BlobLedgerEntry.Rejected, outcome.Status);
        var names = await UsageReportHarness.NamesAsync(harness.Quarantine);
        var unique = Assert.Single(names, n => n != "acme/2026-01.json" && !n.EndsWith(UsageReportContainers.ErrorSuffix, StringComparison.Ordinal));
        Assert.Matches(@"^acme/2026-01~[0-9a-f]{16}\.json\z", unique);
        Assert.Equal(["acme/2026-01.json", "acme/2026-01.json.error.json", unique, unique + ".error.json"], names.Order(StringComparer.Ordinal));
        Assert.Equal(first, await DownloadAsync(harness.Quarantine, "acme/2026-01.json"));
        Assert.Equal(firstError.ToString(), (await harness.ErrorDocumentAsync("acme/2026-01.json")).ToString());
        Assert.Equal(second, await DownloadAsync(harness.Quarantine, unique));
        var secondError = await harness.ErrorDocumentAsync(unique);
        Assert.Equal(("acme/2026-01.json", "rejected"), (secondError.GetProperty("blob").GetString(), secondError.GetProperty("status").GetString()));
        Assert.Contains("The signature does not match", secondError.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Fact]
    public async Task A_quarantine_move_under_a_unique_name_interrupted_before_the_delete_is_finished_under_that_same_name()
    {
        var faults = new FailAfter();
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults);
        Assert.Equal(BlobLedgerEntry.Rejected, (await harness.UploadAndProcessAsync("acme/bad.json", "[]"u8.ToArray())).Status);
        await harness.UploadAsync("acme/bad.json", "{}"u8.ToArray());
        faults.Matches = m => m.Request.Method == RequestMethod.Delete && m.Request.Uri.Path.Contains("usage-reports/", StringComparison.Ordinal);

        await Assert.ThrowsAnyAsync<Exception>(() => harness.ProcessAsync("acme/bad.json"));
        var interrupted = await UsageReportHarness.NamesAsync(harness.Quarantine);
        faults.Heal();
        var pass = await harness.Host.Services.GetRequiredService<UsageReportReconciliation>().RunAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal((1, 1), (pass.Examined, pass.Quarantined));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal(4, interrupted.Count);
        Assert.Equal(interrupted, await UsageReportHarness.NamesAsync(harness.Quarantine));
        var unique = interrupted.Single(n => n.StartsWith("acme/bad~", StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal) && !n.EndsWith(UsageReportContainers.ErrorSuffix, StringComparison.Ordinal));
        Assert.Equal("{}"u8.ToArray(), await DownloadAsync(harness.Quarantine, unique));
        Assert.Equal("[]"u8.ToArray(), await DownloadAsync(harness.Quarantine, "acme/bad.json"));
    }

    [Fact]
    public async Task A_20_MB_report_with_many_daily_per_cluster_rows_is_processed_into_bounded_rows()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var content = new MemoryStream();
        WriteLarge(content, "r-large", days: 365, clusters: 240);
        Assert.True(content.Length > 20_000_000);
        content.Position = 0;
        await harness.Reports.GetBlobClient("acme/large.json").UploadAsync(content, TestContext.Current.CancellationToken);

        var outcome = await harness.ProcessAsync("acme/large.json");

        Assert.Equal(BlobLedgerEntry.Processed, outcome.Status);
        var rows = await harness.RowsAsync(TableNames.UsageRows);
        Assert.Equal(3 * (1 + 12 + 365 + 240), rows.Count);
        Assert.Equal(LargeTotal(0, 365, 240), Value(rows.Single(r => r.RowKey == "t_process-instances")));
        Assert.Equal(LargeTotal(1, 365, 240), Value(rows.Single(r => r.RowKey == "t_decision-instances")));
        var monthly = await harness.MonthlyAsync();
        Assert.Equal(LargeTotal(0, 365, 240), monthly.Where(r => r.GetString("Metric") == "process-instances").Sum(Value));
        Assert.Equal(12, monthly.Count(r => r.GetString("Metric") == "process-instances"));
    }
}
