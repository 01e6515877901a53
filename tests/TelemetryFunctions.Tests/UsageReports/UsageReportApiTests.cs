using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>POST /v1/usage-reports, GET /v1/usage-reports/{id} and GET /api/usage through the local host's pipeline.</summary>
public sealed class UsageReportApiTests(AzuriteFixture azurite)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static ByteArrayContent Body(byte[] content, string contentType = "application/json", string? encoding = null)
    {
        var body = new ByteArrayContent(content);
        body.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null)
        {
            body.Headers.TryAddWithoutValidation("Content-Encoding", encoding);
        }

        return body;
    }

    private static HttpClient Client(UsageReportHarness harness, string? key = ReportKey)
    {
        var client = harness.Host.CreateClient();
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = Basic(key);
        }

        return client;
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync(Token)).RootElement.Clone();

    private static async Task<JsonElement> StatusAsync(HttpClient client, string reportId)
    {
        using var response = await client.GetAsync($"/v1/usage-reports/{reportId}", Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString()); // a customer's figures: no cache keeps them
        return await JsonAsync(response);
    }

    [Fact]
    public async Task Upload_status_and_usage_refuse_callers_without_the_right_key_with_401_and_store_nothing()
    {
        await using var harness = new UsageReportHarness(azurite);
        var content = Signed(Report());

        foreach (var key in new[] { null, "not-a-report-key-at-all", LocalHostFactory.WriteKey })
        {
            using var client = Client(harness, key);
            using var upload = await client.PostAsync("/v1/usage-reports", Body(content), Token);
            using var status = await client.GetAsync("/v1/usage-reports/r-2026-01", Token);
            Assert.Equal(HttpStatusCode.Unauthorized, upload.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, status.StatusCode);
            Assert.Equal("unauthorized", (await JsonAsync(upload)).GetProperty("error").GetProperty("code").GetString());
        }

        using var anonymous = harness.Host.CreateClient();
        using var noAdminKey = await anonymous.GetAsync("/api/usage", Token);
        using var customerKeyIsNoAdminKey = await Client(harness).GetAsync("/api/usage?code=" + ReportKey, Token);
        Assert.Equal(HttpStatusCode.Unauthorized, noAdminKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, customerKeyIsNoAdminKey.StatusCode);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    /// <summary>Two Authorization headers, or two credentials in one, each time with the right key among them.</summary>
    public static TheoryData<string, string[]> AmbiguousCredentials => new()
    {
        { "two Basic headers", [Basic(ReportKey).ToString(), Basic(ReportKey).ToString()] },
        { "Basic and Bearer headers", [Basic(ReportKey).ToString(), "Bearer " + ReportKey] },
        { "two Bearer headers", ["Bearer " + ReportKey, "Bearer " + ReportKey] },
        { "two credentials in one header", [Basic(ReportKey) + ", Bearer " + ReportKey] },
        { "a Bearer token with a comma", ["Bearer " + ReportKey + "," + ReportKey] },
    };

    [Theory]
    [MemberData(nameof(AmbiguousCredentials))]
    public async Task An_upload_or_status_request_with_two_sets_of_credentials_is_refused_401_like_ingest_and_stores_nothing(string what, string[] authorization)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = harness.Host.CreateClient();

        foreach (var (method, target, content) in new (HttpMethod, string, HttpContent?)[] { (HttpMethod.Post, "/v1/usage-reports", Body(Signed(Report()))), (HttpMethod.Get, "/v1/usage-reports/r-2026-01", null) })
        {
            using var request = new HttpRequestMessage(method, target) { Content = content };
            foreach (var value in authorization)
            {
                request.Headers.TryAddWithoutValidation("Authorization", value);
            }

            using var response = await client.SendAsync(request, Token);
            var error = (await JsonAsync(response)).GetProperty("error");
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}, {method}: {(int)response.StatusCode}");
            Assert.Equal("unauthorized", error.GetProperty("code").GetString());
            Assert.Equal("Send one Authorization header with one set of credentials.", error.GetProperty("message").GetString());
        }

        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Fact]
    public async Task An_upload_is_answered_202_with_a_status_url_that_says_queued_then_processed_with_the_figures()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);

        using var upload = await client.PostAsync("/v1/usage-reports", Body(Signed(Report())), Token);

        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        var accepted = await JsonAsync(upload);
        Assert.Equal(("r-2026-01", "queued", "/v1/usage-reports/r-2026-01"), (accepted.GetProperty("reportId").GetString(), accepted.GetProperty("status").GetString(), accepted.GetProperty("statusUrl").GetString()));
        Assert.Equal("/v1/usage-reports/r-2026-01", upload.Headers.Location?.OriginalString);
        Assert.Equal(["acme/r-2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal("queued", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());

        await harness.ProcessAsync("acme/r-2026-01.json");
        var processed = await StatusAsync(client, "r-2026-01");

        Assert.Equal("processed", processed.GetProperty("status").GetString());
        Assert.Equal("inst-1", processed.GetProperty("installationId").GetString());
        var metrics = processed.GetProperty("metrics").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m.GetProperty("value").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["process-instances"] = 1200, ["task-users"] = 7 }, metrics);
        Assert.Equal(1200, processed.GetProperty("months").GetProperty("202601").GetProperty("process-instances").GetInt64());
    }

    [Theory]
    [InlineData("application/json", "gzip")]
    [InlineData("application/gzip", null)]
    public async Task A_gzip_upload_is_stored_compressed_and_processed_like_plain_json(string contentType, string? encoding)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = harness.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ReportKey);

        using var upload = await client.PostAsync("/v1/usage-reports", Body(Gzip(Signed(Report())), contentType, encoding), Token);
        var outcome = await harness.ProcessAsync("acme/r-2026-01.json.gz");

        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        Assert.Equal(BlobLedgerEntry.Processed, outcome.Status);
        Assert.Equal("processed", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_same_report_again_is_a_duplicate_and_other_content_is_a_409_conflict_once_the_id_is_counted_and_before_that_a_conflict_the_processor_quarantines()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);
        var content = Signed(Report());
        using var first = await client.PostAsync("/v1/usage-reports", Body(content), Token);

        using var queuedAgain = await client.PostAsync("/v1/usage-reports", Body(content), Token);
        using var queuedOther = await client.PostAsync("/v1/usage-reports", Body(Signed(Report(metrics: [Metric("process-instances", 1)]))), Token);
        var other = Assert.Single(await UsageReportHarness.NamesAsync(harness.Reports), n => n != "acme/r-2026-01.json");
        await harness.ProcessAsync("acme/r-2026-01.json");
        var otherOutcome = await harness.ProcessAsync(other);
        using var processedAgain = await client.PostAsync("/v1/usage-reports", Body(Gzip(content), "application/gzip"), Token);
        using var processedOther = await client.PostAsync("/v1/usage-reports", Body(Signed(Report(metrics: [Metric("process-instances", 2)]))), Token);

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal((HttpStatusCode.Accepted, true), (queuedAgain.StatusCode, (await JsonAsync(queuedAgain)).GetProperty("duplicate").GetBoolean()));
        Assert.Equal((HttpStatusCode.Accepted, false), (queuedOther.StatusCode, (await JsonAsync(queuedOther)).GetProperty("duplicate").GetBoolean()));
        Assert.StartsWith("acme/r-2026-01~", other, StringComparison.Ordinal);
        Assert.Equal(BlobLedgerEntry.Conflict, otherOutcome.Status);
        Assert.Equal((HttpStatusCode.Accepted, "processed"), (processedAgain.StatusCode, (await JsonAsync(processedAgain)).GetProperty("status").GetString()));
        Assert.Equal(HttpStatusCode.Conflict, processedOther.StatusCode);
        var conflict = (await JsonAsync(processedOther)).GetProperty("error");
        Assert.Equal("report_id_conflict", conflict.GetProperty("code").GetString());
        Assert.StartsWith("Report id 'r-2026-01' is already counted with different content; that report stands", conflict.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(["acme/r-2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        var status = await StatusAsync(client, "r-2026-01");
        Assert.Equal(("processed", 1200L), (status.GetProperty("status").GetString(), status.GetProperty("months").GetProperty("202601").GetProperty("process-instances").GetInt64()));
        Assert.Contains("that report is counted and this one is not", Assert.Single(status.GetProperty("conflicts").EnumerateArray()).GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_correctly_signed_report_posted_after_the_same_report_unsigned_or_wrongly_signed_is_stored_beside_it_and_counted_once_while_the_bad_one_is_quarantined(bool wrongSignature)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);
        var reportBytes = System.Text.Encoding.UTF8.GetBytes(Report().ToJsonString());
        var bad = wrongSignature ? Envelope(reportBytes, signature: new string('0', 64)) : Envelope(reportBytes, secret: null);
        var good = Envelope(reportBytes);

        using var badUpload = await client.PostAsync("/v1/usage-reports", Body(bad), Token);
        using var goodUpload = await client.PostAsync("/v1/usage-reports", Body(good), Token);
        using var goodAgain = await client.PostAsync("/v1/usage-reports", Body(good), Token);
        var names = await UsageReportHarness.NamesAsync(harness.Reports);
        var goodName = Assert.Single(names, n => n != "acme/r-2026-01.json");
        var badOutcome = await harness.ProcessAsync("acme/r-2026-01.json");
        var goodOutcome = await harness.ProcessAsync(goodName);

        Assert.Equal((HttpStatusCode.Accepted, false), (badUpload.StatusCode, (await JsonAsync(badUpload)).GetProperty("duplicate").GetBoolean()));
        Assert.Equal((HttpStatusCode.Accepted, false), (goodUpload.StatusCode, (await JsonAsync(goodUpload)).GetProperty("duplicate").GetBoolean()));
        Assert.Equal((HttpStatusCode.Accepted, true), (goodAgain.StatusCode, (await JsonAsync(goodAgain)).GetProperty("duplicate").GetBoolean()));
        Assert.Equal(2, names.Count);
        Assert.StartsWith("acme/r-2026-01~", goodName, StringComparison.Ordinal);
        Assert.Equal(BlobLedgerEntry.Rejected, badOutcome.Status);
        Assert.Equal(BlobLedgerEntry.Processed, goodOutcome.Status);
        Assert.Equal(["acme/r-2026-01.json", "acme/r-2026-01.json.error.json"], await UsageReportHarness.NamesAsync(harness.Quarantine));
        var monthly = (await harness.MonthlyAsync()).Single(r => r.RowKey == "202601_process-instances");
        Assert.Equal(1200L, monthly.GetInt64("Value"));
        Assert.Equal(1, monthly.GetInt32("Reports"));
        var status = await StatusAsync(client, "r-2026-01");
        Assert.Equal(("processed", 1200L), (status.GetProperty("status").GetString(), status.GetProperty("months").GetProperty("202601").GetProperty("process-instances").GetInt64()));
    }

    [Fact]
    public async Task A_report_posted_under_an_id_whose_upload_name_a_container_blob_of_another_report_holds_is_stored_under_a_unique_name_and_counted()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);
        // An admin uploaded January's report straight into the container under a name of their choosing.
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.UploadAndProcessAsync("acme/r-2026-02.json", Signed(Report("r-2026-01")))).Status);
        var february = Report("r-2026-02", start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z", metrics: [Metric("process-instances", 900)]);
        february["generatedAt"] = "2026-03-01T00:00:00Z";
        using var before = await client.GetAsync("/v1/usage-reports/r-2026-02", Token);

        using var upload = await client.PostAsync("/v1/usage-reports", Body(Signed(february)), Token);
        using var retried = await client.PostAsync("/v1/usage-reports", Body(Signed(february)), Token);

        Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        var accepted = await JsonAsync(upload);
        Assert.Equal(("r-2026-02", "queued", false), (accepted.GetProperty("reportId").GetString(), accepted.GetProperty("status").GetString(), accepted.GetProperty("duplicate").GetBoolean()));
        Assert.Equal((HttpStatusCode.Accepted, true), (retried.StatusCode, (await JsonAsync(retried)).GetProperty("duplicate").GetBoolean()));
        var names = await UsageReportHarness.NamesAsync(harness.Reports);
        var stored = Assert.Single(names, n => n != "acme/r-2026-02.json");
        Assert.Matches(@"^acme/r-2026-02~[0-9a-f]{16}\.json\z", stored);
        Assert.Equal(Signed(february), (await harness.Reports.GetBlobClient(stored).DownloadContentAsync(Token)).Value.Content.ToArray());
        Assert.Equal("queued", (await StatusAsync(client, "r-2026-02")).GetProperty("status").GetString());

        Assert.Equal(BlobLedgerEntry.Processed, (await harness.ProcessAsync(stored)).Status);
        var processed = await StatusAsync(client, "r-2026-02");
        using var again = await client.PostAsync("/v1/usage-reports", Body(Signed(february)), Token);

        Assert.Equal(("processed", 900L), (processed.GetProperty("status").GetString(), processed.GetProperty("months").GetProperty("202602").GetProperty("process-instances").GetInt64()));
        Assert.Equal((HttpStatusCode.Accepted, "processed", true), (again.StatusCode, (await JsonAsync(again)).GetProperty("status").GetString(), (await JsonAsync(again)).GetProperty("duplicate").GetBoolean()));
        Assert.Equal(2, (await UsageReportHarness.NamesAsync(harness.Reports)).Count);
    }

    [Fact]
    public async Task The_status_of_a_report_id_never_reports_the_outcome_of_a_blob_that_only_bears_its_upload_name_and_held_another_report()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);
        Assert.Equal(BlobLedgerEntry.Rejected, (await harness.UploadAndProcessAsync("acme/r-2026-02.json", Signed(Report("r-2026-01"), OtherSecret))).Status);

        using var february = await client.GetAsync("/v1/usage-reports/r-2026-02", Token);
        var january = await StatusAsync(client, "r-2026-01");

        Assert.Equal(HttpStatusCode.NotFound, february.StatusCode);
        Assert.Equal("rejected", january.GetProperty("status").GetString());
        Assert.Contains("The signature does not match", january.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_report_uploaded_again_is_stored_again_queued_and_processed_afresh()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        using var client = Client(harness);
        var content = Signed(Report());
        using var first = await client.PostAsync("/v1/usage-reports", Body(content), Token);
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/r-2026-01.json")).Status);
        Assert.Equal("failed", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());
        faults.Heal();

        using var again = await client.PostAsync("/v1/usage-reports", Body(content), Token);

        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        var accepted = await JsonAsync(again);
        Assert.Equal(("queued", false), (accepted.GetProperty("status").GetString(), accepted.GetProperty("duplicate").GetBoolean()));
        Assert.Equal(["acme/r-2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Equal("queued", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.ProcessAsync("acme/r-2026-01.json")).Status);
        Assert.Equal("processed", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_regenerated_report_posted_after_its_report_id_failed_is_stored_and_takes_the_failed_reports_place()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        using var client = Client(harness);
        using var first = await client.PostAsync("/v1/usage-reports", Body(Signed(Report())), Token);
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/r-2026-01.json")).Status);
        var failed = await StatusAsync(client, "r-2026-01");
        faults.Heal();
        var regenerated = Report();
        regenerated["generatedAt"] = "2026-06-01T08:00:00Z";

        using var again = await client.PostAsync("/v1/usage-reports", Body(Signed(regenerated)), Token);

        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        var accepted = await JsonAsync(again);
        Assert.Equal(("queued", false), (accepted.GetProperty("status").GetString(), accepted.GetProperty("duplicate").GetBoolean()));
        Assert.Equal("queued", (await StatusAsync(client, "r-2026-01")).GetProperty("status").GetString());
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.ProcessAsync("acme/r-2026-01.json")).Status);
        var processed = await StatusAsync(client, "r-2026-01");
        Assert.Equal("processed", processed.GetProperty("status").GetString());
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(regenerated.ToJsonString()))), processed.GetProperty("contentSha256").GetString());
        Assert.Equal(["acme/r-2026-01.json", "acme/r-2026-01.json.error.json"], await UsageReportHarness.NamesAsync(harness.Quarantine));
    }

    [Fact]
    public async Task A_failed_report_uploaded_again_after_another_report_covered_its_period_has_status_rejected_with_the_overlap()
    {
        var faults = new FailAfter { Matches = FailAfter.IsTransaction, Pass = 1 };
        await using var harness = new UsageReportHarness(azurite, storagePolicy: faults, settings: new() { ["Telemetry:UsageReports:MaxAttempts"] = "1" });
        using var client = Client(harness);
        var content = Signed(Report("r-a"));
        using var first = await client.PostAsync("/v1/usage-reports", Body(content), Token);
        Assert.Equal(BlobLedgerEntry.Failed, (await harness.ProcessAsync("acme/r-a.json")).Status);
        faults.Heal();
        using var replacement = await client.PostAsync("/v1/usage-reports", Body(Signed(Report("r-b"))), Token);
        Assert.Equal(BlobLedgerEntry.Processed, (await harness.ProcessAsync("acme/r-b.json")).Status);

        using var again = await client.PostAsync("/v1/usage-reports", Body(content), Token);
        var outcome = await harness.ProcessAsync("acme/r-a.json");
        var status = await StatusAsync(client, "r-a");

        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        Assert.Equal(BlobLedgerEntry.Rejected, outcome.Status);
        Assert.Equal("rejected", status.GetProperty("status").GetString());
        Assert.Contains("overlaps report 'r-b'", status.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_the_processor_refuses_has_status_rejected_with_its_reasons()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);

        using var upload = await client.PostAsync("/v1/usage-reports", Body(Signed(Report(), OtherSecret)), Token);
        await harness.ProcessAsync("acme/r-2026-01.json");
        var status = await StatusAsync(client, "r-2026-01");

        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        Assert.Equal("rejected", status.GetProperty("status").GetString());
        Assert.Contains("The signature does not match", status.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, byte[], string, string?, HttpStatusCode, string> Refused() => new()
    {
        { "empty", [], "application/json", null, HttpStatusCode.BadRequest, "The report is empty." },
        { "binary garbage", [0xFF, 0x00, 0x13, 0x37], "application/json", null, HttpStatusCode.BadRequest, "not valid JSON" },
        { "gzip of garbage", Gzip([0xFF, 0x00, 0x13]), "application/gzip", null, HttpStatusCode.BadRequest, "not valid JSON" },
        { "gzip with its trailer cut off", Gzip(Signed(Report()))[..^8], "application/gzip", null, HttpStatusCode.BadRequest, "not valid gzip" },
        { "gzip followed by garbage", [.. Gzip(Signed(Report())), .. "GARBAGE"u8.ToArray()], "application/json", "gzip", HttpStatusCode.BadRequest, "not valid gzip" },
        { "two gzip members", [.. Gzip(Signed(Report())), .. Gzip(" "u8.ToArray())], "application/gzip", null, HttpStatusCode.BadRequest, "not valid gzip" },
        { "no report id", Signed(new System.Text.Json.Nodes.JsonObject { ["customerId"] = Customer }), "application/json", null, HttpStatusCode.BadRequest, "no valid report.reportId" },
        { "an empty report id", Signed(new System.Text.Json.Nodes.JsonObject { ["reportId"] = "", ["customerId"] = Customer }), "application/json", null, HttpStatusCode.BadRequest, "report.reportId must be 1-128 characters" },
        { "a report id of 300 characters", Signed(new System.Text.Json.Nodes.JsonObject { ["reportId"] = new string('r', 300), ["customerId"] = Customer }), "application/json", null, HttpStatusCode.BadRequest, "report.reportId must be 1-128 characters" },
        { "another customer's report", Signed(Report(customer: OtherCustomer), OtherSecret), "application/json", null, HttpStatusCode.Forbidden, "another customer" },
        { "text/plain", Signed(Report()), "text/plain", null, HttpStatusCode.UnsupportedMediaType, "Content-Type must be application/json or application/gzip" },
        { "stacked encodings", Gzip(Gzip(Signed(Report()))), "application/json", "gzip, gzip", HttpStatusCode.UnsupportedMediaType, "Only one Content-Encoding" },
        { "brotli", Signed(Report()), "application/json", "br", HttpStatusCode.UnsupportedMediaType, "Content-Encoding must be gzip or identity" },
        { "a gzip type gzip-encoded", Gzip(Gzip(Signed(Report()))), "application/gzip", "gzip", HttpStatusCode.UnsupportedMediaType, "means gzip twice" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task An_upload_that_cannot_be_stored_as_a_report_gets_a_4xx_with_a_reason_and_nothing_is_stored(string what, byte[] content, string contentType, string? encoding, HttpStatusCode expected, string reason)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);

        using var response = await client.PostAsync("/v1/usage-reports", Body(content, contentType, encoding), Token);

        Assert.True(expected == response.StatusCode, what);
        Assert.Contains(reason, (await JsonAsync(response)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    private static ByteArrayContent Labelled(byte[] content, string contentType)
    {
        var body = new ByteArrayContent(content);
        Assert.True(body.Headers.TryAddWithoutValidation("Content-Type", contentType));
        return body;
    }

    [Theory]
    [InlineData("application/json; charset=utf-8; charset=latin1", "Content-Type names a charset more than once")]
    [InlineData("application/json; charset=utf-8; CHARSET=utf-8", "Content-Type names a charset more than once")]
    [InlineData("application/json; charset=latin1", "Only the utf-8 charset is accepted")]
    [InlineData("application/json; charset=\"latin1\"", "Only the utf-8 charset is accepted")]
    [InlineData("application/json; charset=utf-16", "Only the utf-8 charset is accepted")]
    public async Task A_json_upload_with_a_charset_other_than_utf8_or_named_twice_is_415_like_ingest_and_nothing_is_stored(string contentType, string reason)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);

        using var response = await client.PostAsync("/v1/usage-reports", Labelled(Signed(Report()), contentType), Token);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains(reason, (await JsonAsync(response)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Theory]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/json;charset=UTF8")]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json; charset=\"UTF-8\"")]
    public async Task A_json_upload_labelled_utf8_bare_or_quoted_is_accepted_like_ingest(string contentType)
    {
        await using var harness = new UsageReportHarness(azurite);
        using var client = Client(harness);

        using var response = await client.PostAsync("/v1/usage-reports", Labelled(Signed(Report()), contentType), Token);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(["acme/r-2026-01.json"], await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Fact]
    public async Task An_upload_over_the_limit_is_413_whether_or_not_it_declares_its_length()
    {
        await using var harness = new UsageReportHarness(azurite, settings: new() { ["Telemetry:UsageReports:MaxUploadBytes"] = "2048" });
        using var client = Client(harness);
        var content = Signed(Report(metrics: [Metric("process-instances", 40, [.. Enumerable.Range(1, 40).Select(d => ("2026-01-01", (string?)$"cluster-{d}", 1L))])]));
        Assert.True(content.Length > 2048);

        using var declared = await client.PostAsync("/v1/usage-reports", Body(content), Token);
        using var chunked = await client.PostAsync("/v1/usage-reports", new StreamContent(new MemoryStream(content)) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } }, Token);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
    }

    [Fact]
    public async Task A_report_id_never_received_or_received_from_another_customer_is_404()
    {
        await using var harness = new UsageReportHarness(azurite);
        using var acme = Client(harness);
        using var globex = Client(harness, OtherReportKey);
        using var upload = await acme.PostAsync("/v1/usage-reports", Body(Signed(Report())), Token);

        using var unknown = await acme.GetAsync("/v1/usage-reports/r-1999-01", Token);
        using var foreign = await globex.GetAsync("/v1/usage-reports/r-2026-01", Token);
        using var malformed = await acme.GetAsync("/v1/usage-reports/..%2F..%2Fsecrets", Token);

        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, malformed.StatusCode);
    }

    [Fact]
    public async Task The_usage_endpoint_lists_each_reported_month_and_metric_with_entitlement_and_overage_as_json_or_csv()
    {
        await using var harness = new UsageReportHarness(azurite);
        await harness.UploadAndProcessAsync("acme/jan.json", Signed(Report()));
        var march = Report("r-2026-03", start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", metrics: [Metric("process-instances", 900)]);
        march["generatedAt"] = "2026-04-01T00:00:00Z";
        await harness.UploadAndProcessAsync("acme/mar.json", Signed(march));
        using var admin = harness.Host.CreateClient();
        admin.DefaultRequestHeaders.Add("x-functions-key", AdminKey);

        using var byMonths = await admin.GetAsync("/api/usage?customer=acme&from=2026-01&to=2026-03", Token);
        using var byDays = await admin.GetAsync("/api/usage?from=2026-01-15&to=2026-02-20", Token);
        using var csv = await admin.GetAsync("/api/usage?customer=acme&from=2026-01&to=2026-03&format=csv", Token);
        using var badRange = await admin.GetAsync("/api/usage?from=2026-03&to=2026-01", Token);

        Assert.Equal(HttpStatusCode.OK, byMonths.StatusCode);
        var rows = (await JsonAsync(byMonths)).GetProperty("rows").EnumerateArray()
            .Select(u => (Month: u.GetProperty("month").GetString(), Metric: u.GetProperty("metric").GetString(), Reported: u.GetProperty("reported").GetInt64(), Entitlement: u.GetProperty("entitlement").GetInt64(), Overage: u.GetProperty("overage").GetInt64(), Reports: u.GetProperty("reports").GetInt32()))
            .ToList();
        Assert.Equal(
            [
                ("2026-01", "process-instances", 1200L, 1000L, 200L, 1),
                ("2026-01", "task-users", 7L, 10L, 0L, 1),
                ("2026-03", "process-instances", 900L, 1000L, 0L, 1),
            ],
            rows);
        var january = await JsonAsync(byDays);
        Assert.Equal(("2026-01", "2026-02"), (january.GetProperty("from").GetString(), january.GetProperty("to").GetString()));
        Assert.Equal(2, january.GetProperty("rows").GetArrayLength());
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        var computedAt = CsvResult.Field(Now);
        Assert.Equal(
            [
                "customer,metric,month,reported,entitlement,overage,reports,aggregation,computedAt,problem",
                $"acme,process-instances,2026-01,1200,1000,200,1,sum,{computedAt},",
                $"acme,task-users,2026-01,7,10,0,1,max,{computedAt},",
                $"acme,process-instances,2026-03,900,1000,0,1,sum,{computedAt},",
            ],
            (await csv.Content.ReadAsStringAsync(Token)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(HttpStatusCode.BadRequest, badRange.StatusCode);
    }

    [Fact]
    public async Task A_usage_row_as_csv_carries_the_same_fields_as_json_its_computed_at_and_problem_included()
    {
        await using var harness = new UsageReportHarness(azurite);
        var computedAt = new DateTimeOffset(2026, 2, 1, 0, 11, 2, TimeSpan.Zero);
        var table = await harness.Host.Services.GetRequiredService<TelemetryStorage>().GetTableAsync(TableNames.UsageMonthly, Token);
        const string TooLarge = "The month's reports add up beyond what can be counted, so no figure is given.";
        await table.UpsertEntityAsync(new TableEntity("acme", "202601_process-instances")
        {
            ["Metric"] = "process-instances",
            ["Month"] = "2026-01",
            ["Aggregation"] = "sum",
            ["Reports"] = 3,
            ["ComputedAt"] = computedAt,
            ["Problem"] = TooLarge,
        }, cancellationToken: Token);
        await table.UpsertEntityAsync(new TableEntity("acme", "202601_task-users")
        {
            ["Metric"] = "task-users",
            ["Month"] = "2026-01",
            ["Value"] = 5L,
            ["Aggregation"] = "max",
            ["Reports"] = 1,
            ["ComputedAt"] = computedAt,
        }, cancellationToken: Token);
        using var admin = harness.Host.CreateClient();
        admin.DefaultRequestHeaders.Add("x-functions-key", AdminKey);

        using var json = await admin.GetAsync("/api/usage?from=2026-01&to=2026-01", Token);
        using var csv = await admin.GetAsync("/api/usage?from=2026-01&to=2026-01&format=csv", Token);

        var rows = (await JsonAsync(json)).GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(TooLarge, rows[0].GetProperty("problem").GetString());
        Assert.Equal(computedAt, rows[0].GetProperty("computedAt").GetDateTimeOffset());
        var lines = (await csv.Content.ReadAsStringAsync(Token)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            [
                "customer,metric,month,reported,entitlement,overage,reports,aggregation,computedAt,problem",
                $"acme,process-instances,2026-01,,1000,,3,sum,2026-02-01T00:11:02Z,\"{TooLarge}\"",
                "acme,task-users,2026-01,5,10,0,1,max,2026-02-01T00:11:02Z,",
            ],
            lines);

        // Every field of a JSON row is a CSV column.
        var columns = lines[0].Split(',');
        Assert.All(rows.SelectMany(r => r.EnumerateObject()).Select(p => p.Name).Distinct(), name => Assert.Contains(name, columns));
    }

    [Fact]
    public async Task An_upload_dripping_under_the_minimum_data_rate_keeps_the_servers_408_and_stores_nothing()
    {
        // Two bytes a second, far under the host's minimum body data rate: the server itself cuts the body off.
        await using var harness = new UsageReportHarness(azurite);

        var (answered, elapsed, answer) = await SlowBody.DripAsync(harness.Host, "/v1/usage-reports", Basic(ReportKey).ToString(), "{\"report\":", bytesPerWrite: 1, every: TimeSpan.FromMilliseconds(500));

        Assert.True(answered, "The server kept waiting for an upload dripping at two bytes a second.");
        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        Assert.Contains("\"bad_request_body\"", answer, StringComparison.Ordinal);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(30));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await harness.ReportRecordsAsync());
    }

    [Fact]
    public async Task An_upload_dripping_above_the_minimum_rate_is_cut_off_at_its_read_deadline_with_408_and_stores_nothing()
    {
        // 500 bytes a second keeps above Kestrel's minimum data rate (240), so only the upload's read deadline stops it.
        var logs = new CapturedLogs();
        await using var harness = new UsageReportHarness(azurite, settings: new() { ["Telemetry:UsageReports:MaxUploadReadTime"] = "00:00:03" }, logs: logs);

        var (answered, elapsed, answer) = await SlowBody.DripAsync(harness.Host, "/v1/usage-reports", Basic(ReportKey).ToString(), "{\"report\":", bytesPerWrite: 50, every: TimeSpan.FromMilliseconds(100));

        Assert.True(answered, "The server kept reading an upload dripping at 500 bytes a second past its read deadline.");
        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        Assert.Contains("\"request_timeout\"", answer, StringComparison.Ordinal);
        Assert.Contains("did not arrive within 3 seconds", answer, StringComparison.Ordinal);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(20));
        Assert.Empty(await UsageReportHarness.NamesAsync(harness.Reports));
        Assert.Empty(await harness.ReportRecordsAsync());
        await Task.Delay(TimeSpan.FromSeconds(2), Token);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
    }
}
