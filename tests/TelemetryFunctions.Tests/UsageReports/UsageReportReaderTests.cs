using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>The streaming reader on its own: what it accepts, the reason it gives for everything it refuses.</summary>
public sealed class UsageReportReaderTests
{
    private static readonly UsageCustomerOptions Acme = new() { Id = Customer, SigningSecret = Secret, ReportKey = ReportKey };

    private static UsageReportOptions Options() => new() { Customers = [Acme] };

    private static Task<UsageReportReadResult> ReadAsync(byte[] content, UsageReportOptions? options = null, UsageCustomerOptions? customer = null) =>
        ReadAsync(new MemoryStream(content), options, customer);

    private static Task<UsageReportReadResult> ReadAsync(Stream content, UsageReportOptions? options = null, UsageCustomerOptions? customer = null) =>
        new UsageReportReader(options ?? Options(), new FakeTimeProvider(Now)).ReadAsync(content, customer ?? Acme, TestContext.Current.CancellationToken);

    private static async Task<string> RefusedAsync(byte[] content, UsageReportOptions? options = null)
    {
        var result = await ReadAsync(content, options);
        Assert.Null(result.Report);
        Assert.NotEmpty(result.Reasons);
        return string.Join("\n", result.Reasons);
    }

    private static JsonObject Without(JsonObject report, string path)
    {
        var parts = path.Split('.');
        var node = report;
        foreach (var part in parts[..^1])
        {
            node = (JsonObject)node[part]!;
        }

        node.Remove(parts[^1]);
        return report;
    }

    [Fact]
    public async Task A_signed_report_is_read_with_its_totals_days_scopes_and_months()
    {
        var result = await ReadAsync(Signed(Report()));

        Assert.Empty(result.Reasons);
        var report = Assert.IsType<UsageReport>(result.Report);
        Assert.Equal(("r-2026-01", Customer, "inst-1"), (report.ReportId, report.CustomerId, report.InstallationId));
        var instances = report.Metrics.Single(m => m.Name == "process-instances");
        Assert.Equal(1200, instances.Value);
        Assert.Equal(MetricAggregation.Sum, instances.Aggregation);
        Assert.Equal(500, instances.Days[new DateOnly(2026, 1, 1)]);
        Assert.Equal(700, instances.Days[new DateOnly(2026, 1, 2)]);
        Assert.Equal(800, instances.Scopes[new UsageScope("prod-eu", null)]);
        Assert.Equal(400, instances.Scopes[new UsageScope("prod-us", null)]);
        Assert.Equal(1200, instances.Months["202601"]);
        var users = report.Metrics.Single(m => m.Name == "task-users");
        Assert.Equal(MetricAggregation.Max, users.Aggregation);
        Assert.Equal(7, users.Months["202601"]);
    }

    [Fact]
    public async Task The_content_hash_is_the_SHA256_of_the_signed_bytes_whatever_surrounds_them()
    {
        var reportBytes = Encoding.UTF8.GetBytes(Report().ToJsonString());
        var compact = await ReadAsync(Envelope(reportBytes));
        var spaced = await ReadAsync(Encoding.UTF8.GetBytes($"\n  {{ \"signature\" : {{\"value\":\"{Hmac(reportBytes, Secret)}\", \"algorithm\":\"HMAC-SHA256\"}},\n \"report\" :  {Encoding.UTF8.GetString(reportBytes)}  }}\n"));

        Assert.Empty(spaced.Reasons);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(reportBytes)), compact.ContentHash);
        Assert.Equal(compact.ContentHash, spaced.ContentHash);
    }

    [Fact]
    public async Task A_report_read_a_few_bytes_at_a_time_gives_the_same_figures_and_hash()
    {
        var content = Signed(Report());
        var whole = await ReadAsync(content);
        var trickled = await ReadAsync(new TrickleStream(content));

        Assert.Empty(trickled.Reasons);
        Assert.Equal(whole.ContentHash, trickled.ContentHash);
        Assert.Equal(
            whole.Report!.Metrics.Select(m => (m.Name, m.Value, m.Days.Count, m.Scopes.Count)),
            trickled.Report!.Metrics.Select(m => (m.Name, m.Value, m.Days.Count, m.Scopes.Count)));
    }

    [Fact]
    public async Task A_gzip_report_is_read_like_the_plain_one()
    {
        var plain = Signed(Report());
        var result = await ReadAsync(Gzip(plain));

        Assert.Empty(result.Reasons);
        Assert.True(result.Compressed);
        Assert.Equal((await ReadAsync(plain)).ContentHash, result.ContentHash);
    }

    [Fact]
    public async Task A_report_signed_with_the_previous_secret_is_accepted_during_rotation()
    {
        var rotated = new UsageCustomerOptions { Id = Customer, SigningSecret = "a-brand-new-signing-secret-of-acme-000000", PreviousSigningSecret = Secret, ReportKey = ReportKey };

        var result = await ReadAsync(Signed(Report()), customer: rotated);

        Assert.Empty(result.Reasons);
    }

    [Fact]
    public async Task A_utf8_byte_order_mark_before_the_document_is_skipped()
    {
        var result = await ReadAsync([0xEF, 0xBB, 0xBF, .. Signed(Report())]);

        Assert.Empty(result.Reasons);
    }

    public static TheoryData<string, byte[], string> Unreadable() => new()
    {
        { "empty blob", [], "The report is empty." },
        { "whitespace", " \r\n\t "u8.ToArray(), "The report is empty." },
        { "binary garbage", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF, 0x13], "not valid JSON" },
        { "gzip of garbage", Gzip([0x00, 0x01, 0x02, 0xFE, 0xFF, 0x42]), "not valid JSON" },
        { "corrupt gzip", [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x07, 0xFF, 0xFF, 0xFF], "not valid gzip" },
        { "gzip of nothing", Gzip([]), "The report is empty" },
        { "truncated JSON", Signed(Report())[..200], "not valid JSON" },
        { "trailing bytes", [.. Signed(Report()), .. "{}"u8.ToArray()], "not valid JSON" },
        { "a comment", [.. "/* hi */"u8.ToArray(), .. Signed(Report())], "not valid JSON" },
        { "a trailing comma", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Signed(Report())).Replace("}}", "},}", StringComparison.Ordinal)), "not valid JSON" },
        { "UTF-16", Encoding.Unicode.GetBytes(Encoding.UTF8.GetString(Signed(Report()))), "not valid JSON" },
        { "invalid UTF-8 in a string", Envelope([.. "{\"reportId\":\""u8.ToArray(), 0xFF, .. "\"}"u8.ToArray()]), "not valid UTF-8" },
        { "500-deep nesting", Encoding.UTF8.GetBytes("{\"report\":{\"x\":" + new string('[', 500) + new string(']', 500) + "}}"), "depth" },
        { "an array instead of an object", "[1,2,3]"u8.ToArray(), "must be a JSON object" },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public async Task An_unreadable_document_is_refused_with_a_readable_reason(string what, byte[] content, string reason)
    {
        var result = await ReadAsync(content);

        Assert.True(result.Unreadable, what);
        Assert.Null(result.Report);
        Assert.Contains(reason, Assert.Single(result.Reasons), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_single_value_longer_than_the_token_limit_stops_the_reading_and_a_shorter_long_one_is_named()
    {
        var huge = Report();
        huge["installationId"] = new string('x', UsageReportReader.MaxTokenBytes + 10);
        var long500k = Report();
        long500k["installationId"] = new string('x', 500_000);

        var refused = await ReadAsync(Signed(huge));
        var named = await ReadAsync(Signed(long500k));

        Assert.Contains($"a single JSON value longer than {UsageReportReader.MaxTokenBytes} bytes", Assert.Single(refused.Reasons), StringComparison.Ordinal);
        Assert.Equal(UsageReportReader.MaxTokenBytes, refused.PeakBufferBytes);
        Assert.Contains("report.installationId is longer than 256 characters", Assert.Single(named.Reasons), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_larger_than_the_limit_after_decompression_is_refused_without_reading_it_all()
    {
        var bomb = Gzip(new byte[50 * 1024 * 1024].Select(_ => (byte)' ').ToArray());
        var options = Options();
        options.MaxReportBytes = 1024 * 1024;

        var result = await ReadAsync(bomb, options);

        Assert.Contains("larger than the limit of 1048576 bytes after decompression", Assert.Single(result.Reasons), StringComparison.Ordinal);
        Assert.True(result.Bytes <= options.MaxReportBytes + UsageReportReader.MaxTokenBytes);
    }

    public static TheoryData<string, Func<JsonObject, JsonObject>, string> WrongSchema() => new()
    {
        { "missing reportId", r => Without(r, "reportId"), "report is missing 'reportId'" },
        { "missing period end", r => Without(r, "period.end"), "report.period is missing 'end'" },
        { "reportId with a slash", r => { r["reportId"] = "a/b"; return r; }, "report.reportId must be" },
        { "number as a string", r => { r["metrics"]![0]!["value"] = "1200"; return r; }, "report.metrics[0].value must be a whole number" },
        { "fraction", r => { r["metrics"]![1]!["value"] = 7.5; return r; }, "report.metrics[1].value must be a whole number" },
        { "unknown property", r => { r["comment"] = "hi"; return r; }, "property the format does not define: 'comment'" },
        { "object for a string", r => { r["installationId"] = new JsonObject { ["id"] = 1 }; return r; }, "report.installationId must be a string" },
        { "timestamp without offset", r => { r["period"]!["start"] = "2026-01-01T00:00:00"; return r; }, "report.period.start must be an RFC 3339 date-time" },
        { "timestamp without seconds", r => { r["generatedAt"] = "2026-02-01T00:10+00:00"; return r; }, "report.generatedAt must be an RFC 3339 date-time" },
        { "timestamp with a space before its offset", r => { r["generatedAt"] = "2026-02-01T00:10:00 Z"; return r; }, "report.generatedAt must be an RFC 3339 date-time" },
        { "timestamp with AM or PM", r => { r["generatedAt"] = "2026-02-01T01:10:00 PM+00:00"; return r; }, "report.generatedAt must be an RFC 3339 date-time" },
        { "timestamp with a comma before its fraction", r => { r["period"]!["end"] = "2026-02-01T00:00:00,000Z"; return r; }, "report.period.end must be an RFC 3339 date-time" },
        { "day not a day", r => { r["metrics"]![0]!["breakdown"]![0]!["day"] = "01/01/2026"; return r; }, "breakdown[0].day must be a day" },
        { "schema version 2", r => { r["schemaVersion"] = 2; return r; }, "schemaVersion 2 is not supported" },
        { "no metrics", r => { r["metrics"] = new JsonArray(); return r; }, "report.metrics is empty" },
        { "a metric twice", r => { r["metrics"]!.AsArray().Add(Metric("task-users", 3)); return r; }, "repeats the metric 'task-users'" },
        { "control character", r => { r["installationId"] = "inst\u0007"; return r; }, "contains control characters" },
    };

    [Theory]
    [MemberData(nameof(WrongSchema))]
    public async Task A_report_that_breaks_the_schema_is_refused_naming_the_field(string what, Func<JsonObject, JsonObject> change, string reason)
    {
        var reasons = await RefusedAsync(Signed(change(Report())));

        Assert.True(reasons.Contains(reason, StringComparison.Ordinal), $"{what}: {reasons}");
    }

    [Theory]
    [InlineData("1250.0", 1250L)]
    [InlineData("1.25e3", 1250L)]
    [InlineData("1.25E+3", 1250L)]
    [InlineData("12500e-1", 1250L)]
    [InlineData("0.000", 0L)]
    [InlineData("-0.0", 0L)]
    [InlineData("0e999999999999", 0L)]
    [InlineData("1e15", 1_000_000_000_000_000L)]
    public async Task A_count_written_with_a_fraction_of_zeros_or_an_exponent_is_the_whole_number_it_is(string written, long value)
    {
        var report = Report(metrics: [Metric("process-instances", 4242)]).ToJsonString().Replace("4242", written, StringComparison.Ordinal);

        var result = await ReadAsync(Envelope(Encoding.UTF8.GetBytes(report)));

        Assert.Empty(result.Reasons);
        Assert.Equal(value, Assert.Single(result.Report!.Metrics).Value);
    }

    [Theory]
    [InlineData("1250.5", "must be a whole number")]
    [InlineData("1250.0000000000000000001", "must be a whole number")]
    [InlineData("1e-1", "must be a whole number")]
    [InlineData("1e999999999999", "must be a whole number")]
    [InlineData("1.000000000000001e15", "(1000000000000001) is larger than 1000000000000000")]
    [InlineData("-1.0", "is negative (-1)")]
    public async Task A_count_written_with_a_fraction_or_an_exponent_that_is_no_whole_count_is_refused(string written, string reason)
    {
        var report = Report(metrics: [Metric("process-instances", 4242)]).ToJsonString().Replace("4242", written, StringComparison.Ordinal);

        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(report)));

        Assert.Contains(reason, reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_count_whose_exponent_offsets_a_million_digits_is_read_as_the_number_it_is_never_as_another()
    {
        // Both tokens stay under the token limit: 10^5 written as 0.000...01e1000005, and 10^-5 as 1000...0e-1000005.
        var hundredThousand = "0." + new string('0', 999_999) + "1e1000005";
        var hundredThousandth = "1" + new string('0', 1_000_000) + "e-1000005";
        string With(string written) => Report(metrics: [Metric("process-instances", 4242)]).ToJsonString().Replace("4242", written, StringComparison.Ordinal);

        var read = await ReadAsync(Envelope(Encoding.UTF8.GetBytes(With(hundredThousand))));
        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(With(hundredThousandth))));

        Assert.Empty(read.Reasons);
        Assert.Equal(100_000, Assert.Single(read.Report!.Metrics).Value);
        Assert.Contains("report.metrics[0].value must be a whole number", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metric_names_are_lower_case_so_a_case_variant_is_refused_rather_than_counted_as_another_metric()
    {
        var reasons = await RefusedAsync(Signed(Report(metrics:
        [
            Metric("process-instances", 800),
            Metric("Process-Instances", 800),
            Metric("TASK-USERS", 3),
            Metric("Ärger", 1),
        ])));

        Assert.Contains("report.metrics[1].name: metric names are lower case: 'Process-Instances' is written 'process-instances'.", reasons, StringComparison.Ordinal);
        Assert.Contains("report.metrics[2].name: metric names are lower case: 'TASK-USERS' is written 'task-users'.", reasons, StringComparison.Ordinal);
        Assert.Contains("report.metrics[3].name must be a lowercase letter, then up to 63 lowercase letters, digits, '.', '_' or '-'.", reasons, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(" inst-1")]
    [InlineData("inst-1 ")]
    [InlineData("inst-1\u00A0")]
    [InlineData("\u3000inst-1")]
    [InlineData("inst-1\uFEFF")]
    public async Task An_installation_id_with_white_space_at_either_end_is_refused(string installation)
    {
        var reasons = await RefusedAsync(Signed(Report(installation: installation)));

        Assert.Equal("report.installationId starts or ends with white space; name the installation without it, the same way in every report.", reasons);
    }

    [Theory]
    [InlineData("inst-1\u200B", "U+200B")] // zero-width space, which is no white space to .NET
    [InlineData("inst\u200D-1", "U+200D")] // zero-width joiner
    [InlineData("in\u00ADst-1", "U+00AD")] // soft hyphen
    [InlineData("\u202Einst-1", "U+202E")] // right-to-left override
    [InlineData("inst\u2060-1", "U+2060")] // word joiner
    [InlineData("inst\uFEFF-1", "U+FEFF")] // byte order mark inside the id
    [InlineData("inst-1\uFE0F", "U+FE0F")] // variation selector
    [InlineData("inst\u034F-1", "U+034F")] // combining grapheme joiner
    [InlineData("inst\u3164-1", "U+3164")] // Hangul filler
    [InlineData("inst\u0085-1", "U+0085")] // next line, a C1 control
    [InlineData("inst\u2028-1", "U+2028")] // line separator
    [InlineData("inst-1\U000E0031", "U+E0031")] // tag digit one
    public async Task An_installation_id_holding_an_invisible_or_format_character_is_refused_naming_it(string installation, string codePoint)
    {
        var reasons = await RefusedAsync(Signed(Report(installation: installation)));

        Assert.Equal($"report.installationId contains an invisible or formatting character ({codePoint}); name the installation without it, the same way in every report.", reasons);
    }

    [Theory]
    [InlineData("caf\u00E9-1")]
    [InlineData("cafe\u0301-1")]
    [InlineData("\uFF49nst-1")]
    [InlineData("inst 1")]
    [InlineData("\u0928\u093F\u0930\u094D\u092E\u093E\u0923-1")] // Devanagari with a virama and vowel signs (marks, not format characters)
    public async Task An_installation_id_in_any_script_or_unicode_form_without_invisible_characters_is_read_as_sent(string installation)
    {
        var result = await ReadAsync(Signed(Report(installation: installation)));

        Assert.Empty(result.Reasons);
        Assert.Equal(installation, result.Report!.InstallationId);
    }

    [Fact]
    public async Task A_lone_surrogate_escape_is_refused_naming_the_field()
    {
        var report = Report();
        report["product"]!["version"] = "LONE";
        var json = report.ToJsonString().Replace("\"LONE\"", "\"\\uD800\"", StringComparison.Ordinal);

        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(json)));

        Assert.Contains("report.product.version is not valid text", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_schema_link_with_an_unpaired_surrogate_escape_is_refused_like_any_text()
    {
        var content = Encoding.UTF8.GetString(Signed(Report()));
        var withSchema = Encoding.UTF8.GetBytes("{\"$schema\":\"\\ud800\"," + content[1..]);

        var reasons = await RefusedAsync(withSchema);

        Assert.Equal("$schema is not valid text (invalid UTF-8 or an unpaired surrogate escape).", reasons);
    }

    [Fact]
    public async Task A_schema_link_of_any_valid_text_is_read()
    {
        var content = Encoding.UTF8.GetString(Signed(Report()));
        var withSchema = Encoding.UTF8.GetBytes("{\"$schema\":\"https://example.com/\\u00e9/" + new string('a', 5000) + "\"," + content[1..]);

        var result = await ReadAsync(withSchema);

        Assert.Empty(result.Reasons);
        Assert.NotNull(result.Report);
    }

    [Fact]
    public async Task A_property_given_twice_is_refused()
    {
        var json = Report().ToJsonString().Replace("\"schemaVersion\":1,", "\"schemaVersion\":1,\"schemaVersion\":1,", StringComparison.Ordinal);

        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(json)));

        Assert.Contains("repeats the property 'schemaVersion'", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Negative_counts_are_refused_in_totals_and_in_breakdowns()
    {
        var reasons = await RefusedAsync(Signed(Report(metrics:
        [
            Metric("process-instances", -5),
            Metric("decision-instances", 10, ("2026-01-03", "c1", 13), ("2026-01-04", "c1", -3)),
        ])));

        Assert.Contains("report.metrics[0].value is negative (-5)", reasons, StringComparison.Ordinal);
        Assert.Contains("report.metrics[1].breakdown[1].value is negative (-3)", reasons, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z")]
    [InlineData("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")]
    public async Task A_period_that_ends_before_or_when_it_starts_is_refused(string start, string end)
    {
        var reasons = await RefusedAsync(Signed(Report(start: start, end: end, metrics: [Metric("process-instances", 1)])));

        Assert.Contains($"report.period.end ({DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture):O}) is not after report.period.start", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_breakdown_that_does_not_add_up_to_the_value_is_refused()
    {
        var reasons = await RefusedAsync(Signed(Report(metrics: [Metric("process-instances", 1000, ("2026-01-01", "c", 600), ("2026-01-02", "c", 300))])));

        Assert.Contains("the breakdown adds up to 900, but value is 1000", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_distinct_count_with_many_parts_each_at_most_its_value_is_read_however_far_beyond_what_can_be_counted_their_sum_would_go()
    {
        const long Value = 1_000_000_000_000_000;
        var parts = Enumerable.Range(0, 9300).Select(i => ("2026-01-05", (string?)$"c{i}", Value)).ToArray();

        var result = await ReadAsync(Signed(Report(metrics: [Metric("task-users", Value, parts), Metric("process-instances", 0)])));

        Assert.Empty(result.Reasons);
        var users = Assert.IsType<UsageReport>(result.Report).Metrics.Single(m => m.Name == "task-users");
        Assert.Equal(MetricAggregation.Max, users.Aggregation);
        Assert.Equal(Value, users.Days[new DateOnly(2026, 1, 5)]);
        Assert.Equal(Value, users.Months["202601"]);
        Assert.Equal(9300, users.Scopes.Count);
    }

    [Fact]
    public async Task A_count_whose_breakdown_adds_up_beyond_what_can_be_counted_is_refused_with_one_reason_for_the_metric()
    {
        const long Value = 1_000_000_000_000_000;
        // 9,300 parts of 10^15 add up beyond long.MaxValue (about 9.22 * 10^18) from the 9,224th on.
        var parts = Enumerable.Range(0, 9300).Select(i => ("2026-01-05", (string?)"c", Value)).ToArray();

        var result = await ReadAsync(Signed(Report(metrics: [Metric("process-instances", Value, parts)])));

        Assert.Null(result.Report);
        Assert.Equal("The values of report.metrics[0].breakdown ('process-instances') add up beyond what can be counted.", Assert.Single(result.Reasons));
    }

    [Theory]
    [InlineData("th-TH")]
    [InlineData("sv-SE")]
    [InlineData("ar-SA")]
    public async Task Reasons_write_numbers_and_days_the_same_whatever_the_current_culture(string culture)
    {
        using var scope = new CultureScope(culture);

        var reasons = await RefusedAsync(Signed(Report(metrics:
        [
            Metric("process-instances", -5),
            Metric("decision-instances", 10, ("2026-02-01", "c", 10)),
        ])));
        var early = await RefusedAsync(Signed(Report(start: "1999-12-01T00:00:00Z", end: "2000-01-01T00:00:00Z", metrics: [Metric("process-instances", 1, ("1999-12-01", "c", 1))])));

        Assert.Contains("report.metrics[0].value is negative (-5)", reasons, StringComparison.Ordinal);
        Assert.Contains("breakdown days outside the period 2026-01-01..2026-01-31", reasons, StringComparison.Ordinal);
        Assert.Contains("is before 2000-01-01 (UTC)", early, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2025-12-31")]
    [InlineData("2026-02-01")]
    public async Task Breakdown_days_outside_the_period_are_refused(string day)
    {
        var reasons = await RefusedAsync(Signed(Report(metrics: [Metric("process-instances", 10, (day, "c", 10))])));

        Assert.Contains("breakdown days outside the period 2026-01-01..2026-01-31", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_period_over_two_months_needs_daily_values_and_a_distinct_count_cannot_span_months()
    {
        var report = Report(start: "2026-01-15T00:00:00Z", end: "2026-02-15T00:00:00Z", metrics:
        [
            Metric("process-instances", 10),
            Metric("task-users", 3),
        ]);
        report["generatedAt"] = "2026-02-15T00:00:00Z";
        var reasons = await RefusedAsync(Signed(report));

        Assert.Contains("report.metrics[0] ('process-instances'): the period spans several months, so the metric needs a daily breakdown", reasons, StringComparison.Ordinal);
        Assert.Contains("report.metrics[1] ('task-users') counts distinct items, which cannot be split between months", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_period_over_two_months_with_daily_values_is_split_between_the_months()
    {
        var report = Report(start: "2026-01-15T00:00:00Z", end: "2026-02-15T00:00:00Z", metrics:
            [Metric("process-instances", 10, ("2026-01-31", "c", 4), ("2026-02-01", "c", 6))]);
        report["generatedAt"] = "2026-02-15T00:00:00Z";
        var result = await ReadAsync(Signed(report));

        var metric = Assert.Single(result.Report!.Metrics);
        Assert.Equal(new Dictionary<string, long> { ["202601"] = 4, ["202602"] = 6 }, metric.Months);
    }

    [Fact]
    public async Task A_metric_stated_as_0_over_two_months_needs_no_breakdown_and_every_month_the_period_touches_gets_its_share()
    {
        var report = Report(start: "2026-01-15T00:00:00Z", end: "2026-02-15T00:00:00Z", metrics:
        [
            Metric("process-instances", 10, ("2026-01-31", "c", 10)),
            Metric("decision-instances", 0),
            Metric("task-users", 0),
        ]);
        report["generatedAt"] = "2026-02-15T00:00:00Z";

        var result = await ReadAsync(Signed(report));

        Assert.Empty(result.Reasons);
        var months = result.Report!.Metrics.ToDictionary(m => m.Name, m => m.Months);
        Assert.Equal(new Dictionary<string, long> { ["202601"] = 10, ["202602"] = 0 }, months["process-instances"]);
        Assert.Equal(new Dictionary<string, long> { ["202601"] = 0, ["202602"] = 0 }, months["decision-instances"]);
        Assert.Equal(new Dictionary<string, long> { ["202601"] = 0, ["202602"] = 0 }, months["task-users"]);
    }

    [Fact]
    public async Task A_period_ending_in_the_future_or_generated_before_its_end_is_refused()
    {
        var future = Report(start: "2026-06-01T00:00:00Z", end: "2026-07-01T00:00:00Z", metrics: [Metric("process-instances", 1)]);
        future["generatedAt"] = "2026-07-01T00:00:00Z";
        var early = Report(metrics: [Metric("process-instances", 1)]);
        early["generatedAt"] = "2026-01-20T00:00:00Z";

        Assert.Contains("is in the future", await RefusedAsync(Signed(future)), StringComparison.Ordinal);
        Assert.Contains("the report was made before its period was over", await RefusedAsync(Signed(early)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z")]
    [InlineData("1970-01-01T00:00:00Z", "1970-02-01T00:00:00Z")]
    [InlineData("1999-12-01T00:00:00Z", "2000-01-01T00:00:00Z")]
    [InlineData("2000-01-01T00:30:00+01:00", "2000-02-01T00:00:00Z")]
    public async Task A_period_starting_before_the_year_2000_is_refused_even_when_generated_since(string start, string end)
    {
        var reasons = await RefusedAsync(Signed(Report(start: start, end: end, metrics: [Metric("process-instances", 1, (start[..10], "c", 1))])));

        Assert.Contains($"report.period.start ({DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture):O}) is before 2000-01-01 (UTC)", reasons, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("start", "2026-01-01T00:00:00.0000001Z", "2026-02-01T00:00:00Z")]
    [InlineData("end", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00.0000001Z")]
    [InlineData("end", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00.00000001Z")]
    [InlineData("end", "2026-01-01T00:00:00Z", "2026-01-31T23:59:59.9995+00:00")]
    public async Task A_period_start_or_end_finer_than_a_millisecond_is_refused_as_storage_compares_to_the_millisecond(string field, string start, string end)
    {
        var reasons = await RefusedAsync(Signed(Report(start: start, end: end, metrics: [Metric("process-instances", 1)])));

        Assert.Equal(
            $"report.period.{field} ({(field == "start" ? start : end)}) has a fraction of a second finer than a millisecond; period instants are kept to the millisecond, so give at most three decimals (a month ends at 00:00:00Z of the next).",
            reasons);
    }

    [Fact]
    public async Task Period_instants_to_the_millisecond_and_a_generation_time_finer_than_that_are_read()
    {
        var report = Report(start: "2026-01-01T00:00:00.000Z", end: "2026-01-31T23:59:59.9990000Z", metrics: [Metric("process-instances", 1)]);
        report["generatedAt"] = "2026-02-01T00:05:00.1234567Z";

        var result = await ReadAsync(Signed(report));

        Assert.Empty(result.Reasons);
        Assert.Equal(new DateTimeOffset(2026, 1, 31, 23, 59, 59, 999, TimeSpan.Zero), result.Report!.PeriodEnd);
    }

    [Fact]
    public async Task A_period_starting_at_the_first_instant_of_2000_is_read()
    {
        var report = Report(start: "2000-01-01T00:00:00Z", end: "2000-02-01T00:00:00Z", metrics: [Metric("process-instances", 5, ("2000-01-01", "c", 5))]);
        report["generatedAt"] = "2000-02-01T00:00:00Z";

        var result = await ReadAsync(Signed(report));

        Assert.Empty(result.Reasons);
        Assert.Equal(UsageReport.EarliestPeriodStart, result.Report!.PeriodStart);
        Assert.Equal(new Dictionary<string, long> { ["200001"] = 5 }, Assert.Single(result.Report.Metrics).Months);
    }

    [Fact]
    public async Task A_period_end_or_generation_time_may_be_ahead_of_the_server_clock_by_the_allowed_skew_and_no_more()
    {
        // The server clock reads Now (2026-06-01T12:00:00Z); MaxClockSkew is one day.
        static JsonObject Ending(string end, string generatedAt)
        {
            var report = Report(start: "2026-06-01T00:00:00Z", end: end, metrics: [Metric("process-instances", 1)]);
            report["generatedAt"] = generatedAt;
            return report;
        }

        var atTheLimit = await ReadAsync(Signed(Ending("2026-06-02T12:00:00Z", "2026-06-02T12:00:00Z")));
        var endPastIt = await RefusedAsync(Signed(Ending("2026-06-02T12:00:01Z", "2026-06-02T12:00:01Z")));
        var generatedPastIt = await RefusedAsync(Signed(Ending("2026-06-01T12:00:00Z", "2026-06-02T12:00:01Z")));

        Assert.Empty(atTheLimit.Reasons);
        Assert.Contains("report.period.end (2026-06-02T12:00:01.0000000+00:00) is in the future", endPastIt, StringComparison.Ordinal);
        Assert.Equal("report.generatedAt (2026-06-02T12:00:01.0000000+00:00) is in the future.", generatedPastIt);
    }

    [Fact]
    public async Task A_period_of_the_longest_allowed_length_is_read_and_one_second_longer_is_refused()
    {
        // MaxPeriodDays is 370: 2025-01-01 plus 370 days is 2026-01-06.
        static JsonObject Lasting(string end)
        {
            var report = Report(start: "2025-01-01T00:00:00Z", end: end, metrics: [Metric("process-instances", 3, ("2025-01-01", "c", 1), ("2026-01-05", "c", 2))]);
            report["generatedAt"] = "2026-01-07T00:00:00Z";
            return report;
        }

        var longest = await ReadAsync(Signed(Lasting("2026-01-06T00:00:00Z")));
        var longer = await RefusedAsync(Signed(Lasting("2026-01-06T00:00:01Z")));

        Assert.Empty(longest.Reasons);
        Assert.Equal("The report's period is longer than 370 days; send one report per month or per year.", longer);
    }

    [Fact]
    public async Task A_report_without_a_signature_is_refused()
    {
        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(Report().ToJsonString()), secret: null));

        Assert.Contains("The report is not signed", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_signed_with_another_secret_is_refused()
    {
        var reasons = await RefusedAsync(Signed(Report(), OtherSecret));

        Assert.Contains("The signature does not match", reasons, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not-hex")]
    [InlineData("00")]
    public async Task A_signature_that_is_not_64_hex_characters_is_refused(string signature)
    {
        var reasons = await RefusedAsync(Envelope(Encoding.UTF8.GetBytes(Report().ToJsonString()), signature: signature));

        Assert.Contains("signature.value must be the HMAC-SHA256 as 64 hexadecimal characters", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_changed_after_signing_is_refused_even_by_one_byte_of_whitespace()
    {
        var reportBytes = Encoding.UTF8.GetBytes(Report().ToJsonString());
        var signature = Hmac(reportBytes, Secret);
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(reportBytes).Replace("1200", "1100", StringComparison.Ordinal).Replace("500", "400", StringComparison.Ordinal));
        var reformatted = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(reportBytes).Replace(",\"installationId\"", ", \"installationId\"", StringComparison.Ordinal));

        Assert.Contains("The signature does not match", await RefusedAsync(Envelope(tampered, signature: signature)), StringComparison.Ordinal);
        Assert.Contains("The signature does not match", await RefusedAsync(Envelope(reformatted, signature: signature)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_naming_another_customer_is_refused_even_when_signed_with_that_customers_secret()
    {
        var reasons = await RefusedAsync(Signed(Report(customer: OtherCustomer), OtherSecret));

        Assert.Contains("report.customerId 'globex' is not the customer the report was uploaded for ('acme')", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_document_without_the_envelope_is_refused_with_a_hint()
    {
        var reasons = await RefusedAsync(Encoding.UTF8.GetBytes(Report().ToJsonString()));

        Assert.Contains("has no 'report' object; a usage report is {\"report\"", reasons, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_million_bad_entries_give_twenty_reasons_and_a_count_of_the_rest()
    {
        var entries = new JsonArray([.. Enumerable.Range(0, 2000).Select(i => (JsonNode)new JsonObject { ["day"] = "2026-01-01", ["value"] = -1 })]);
        var report = Report(metrics: [new JsonObject { ["name"] = "process-instances", ["value"] = 0, ["breakdown"] = entries }]);

        var result = await ReadAsync(Signed(report));

        Assert.Equal(UsageReportReader.MaxReasons + 1, result.Reasons.Count);
        Assert.StartsWith("... and 1980 more problems", result.Reasons[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_distinct_clusters_stop_the_reading_with_a_reason()
    {
        var options = Options();
        options.MaxScopes = 10;
        var breakdown = Enumerable.Range(0, 11).Select(i => ("2026-01-01", (string?)$"c{i}", 1L)).ToArray();

        var result = await ReadAsync(Signed(Report(metrics: [Metric("process-instances", 11, breakdown)])), options);

        Assert.True(result.Unreadable);
        Assert.Contains("more than 10 distinct cluster and tenant combinations", Assert.Single(result.Reasons), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_20_MB_report_is_read_with_a_buffer_that_never_grows_past_the_token_limit()
    {
        using var content = new MemoryStream();
        WriteLarge(content, "r-large", days: 365, clusters: 240);
        content.Position = 0;
        Assert.InRange(content.Length, 20_000_000, 40_000_000);

        var result = await ReadAsync(content);

        Assert.Empty(result.Reasons);
        Assert.Equal(content.Length, result.Bytes);
        Assert.InRange(result.PeakBufferBytes, 1, UsageReportReader.MaxTokenBytes);
        var metric = result.Report!.Metrics[0];
        Assert.Equal(LargeTotal(0, 365, 240), metric.Value);
        Assert.Equal(365, metric.Days.Count);
        Assert.Equal(240, metric.Scopes.Count);
        Assert.Equal(12, metric.Months.Count);
        Assert.Equal(metric.Value, metric.Months.Values.Sum());
    }

    /// <summary>Hands out 1 to 7 bytes per read, so tokens, escapes and UTF-8 sequences straddle every buffer boundary.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data)
    {
        private int _next;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, (_next++ % 7) + 1)], cancellationToken);
    }
}
