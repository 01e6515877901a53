using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>
/// Builds usage reports the way a customer's product does (docs/usage-reports.md, "Signing"): serialize the report,
/// HMAC-SHA256 its exact bytes with the customer's secret, wrap both in the envelope. Independent of the library's reader.
/// </summary>
internal static class UsageReportSamples
{
    public const string Customer = "acme";
    public const string Secret = "acme-signing-secret-for-tests-only-0123456789";
    public const string ReportKey = "acme-report-key-0123456789";
    public const string OtherCustomer = "globex";
    public const string OtherSecret = "globex-signing-secret-for-tests-only-987654321";
    public const string OtherReportKey = "globex-report-key-9876543210";
    public const string AdminKey = "dev-admin-key";

    /// <summary>
    /// How long a local host process may take to process an uploaded report. Generous: on a loaded 2-core machine a
    /// restarted host takes a while to pick an interrupted report up again.
    /// </summary>
    public static readonly TimeSpan ProcessingTimeout = TimeSpan.FromSeconds(120);

    /// <summary>A clock well after every sample period, so no sample lies in the future.</summary>
    public static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Two customers (at list positions the local host's own settings do not use) with entitlements.</summary>
    public static Dictionary<string, string?> Settings(Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Telemetry:UsageReports:Customers:10:Id"] = Customer,
            ["Telemetry:UsageReports:Customers:10:SigningSecret"] = Secret,
            ["Telemetry:UsageReports:Customers:10:ReportKey"] = ReportKey,
            ["Telemetry:UsageReports:Customers:10:Entitlements:0:Metric"] = "process-instances",
            ["Telemetry:UsageReports:Customers:10:Entitlements:0:MonthlyQuantity"] = "1000",
            ["Telemetry:UsageReports:Customers:10:Entitlements:1:Metric"] = "task-users",
            ["Telemetry:UsageReports:Customers:10:Entitlements:1:MonthlyQuantity"] = "10",
            ["Telemetry:UsageReports:Customers:11:Id"] = OtherCustomer,
            ["Telemetry:UsageReports:Customers:11:SigningSecret"] = OtherSecret,
            ["Telemetry:UsageReports:Customers:11:ReportKey"] = OtherReportKey,
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        return settings;
    }

    public static JsonObject Metric(string name, long value, params (string Day, string? Cluster, long Value)[] breakdown)
    {
        var metric = new JsonObject { ["name"] = name, ["value"] = value };
        if (breakdown.Length > 0)
        {
            metric["breakdown"] = new JsonArray([.. breakdown.Select(b =>
            {
                var entry = new JsonObject { ["day"] = b.Day, ["value"] = b.Value };
                if (b.Cluster is not null)
                {
                    entry["cluster"] = b.Cluster;
                }

                return (JsonNode)entry;
            })]);
        }

        return metric;
    }

    /// <summary>A January 2026 report of installation <paramref name="installation"/>: 1,200 process instances over two clusters, 7 task users.</summary>
    public static JsonObject Report(
        string reportId = "r-2026-01",
        string customer = Customer,
        string installation = "inst-1",
        string start = "2026-01-01T00:00:00Z",
        string end = "2026-02-01T00:00:00Z",
        params JsonObject[] metrics) => new()
        {
            ["schemaVersion"] = 1,
            ["reportId"] = reportId,
            ["customerId"] = customer,
            ["installationId"] = installation,
            ["product"] = new JsonObject { ["name"] = "camunda", ["version"] = "8.6.2" },
            ["period"] = new JsonObject { ["start"] = start, ["end"] = end },
            ["generatedAt"] = "2026-02-01T00:05:00Z",
            ["metrics"] = metrics.Length > 0
                ? new JsonArray([.. metrics])
                : new JsonArray(
                    Metric("process-instances", 1200, ("2026-01-01", "prod-eu", 500), ("2026-01-02", "prod-eu", 300), ("2026-01-02", "prod-us", 400)),
                    Metric("task-users", 7)),
        };

    public static string Hmac(ReadOnlySpan<byte> reportBytes, string secret) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), reportBytes));

    /// <summary>The envelope around the exact report bytes; <paramref name="signature"/> overrides the computed one.</summary>
    public static byte[] Envelope(byte[] reportBytes, string? secret = Secret, string? signature = null)
    {
        using var output = new MemoryStream();
        output.Write("{\"report\":"u8);
        output.Write(reportBytes);
        if (secret is not null || signature is not null)
        {
            output.Write(Encoding.UTF8.GetBytes($",\"signature\":{{\"algorithm\":\"HMAC-SHA256\",\"value\":\"{signature ?? Hmac(reportBytes, secret!)}\"}}"));
        }

        output.Write("}"u8);
        return output.ToArray();
    }

    public static byte[] Signed(JsonObject report, string? secret = Secret) => Envelope(Encoding.UTF8.GetBytes(report.ToJsonString()), secret);

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static string ContainerName(string tablePrefix, string container = "usage-reports") => (tablePrefix + "-" + container).ToLowerInvariant();

    public static BlobContainerClient Container(AzuriteFixture azurite, string tablePrefix, string container = "usage-reports")
    {
        var client = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(ContainerName(tablePrefix, container));
        client.CreateIfNotExists();
        return client;
    }

    /// <summary>Uploads straight into the report container with the Azure Storage SDK, as a customer admin with a SAS would.</summary>
    public static async Task UploadAsync(AzuriteFixture azurite, string tablePrefix, string blobName, byte[] content)
    {
        var container = Container(azurite, tablePrefix);
        await container.GetBlobClient(blobName).UploadAsync(new BinaryData(content), overwrite: true, TestContext.Current.CancellationToken);
    }

    public static AuthenticationHeaderValue Basic(string key) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key + ":")));

    /// <summary>
    /// Asks <c>GET /v1/usage-reports/{id}</c> (with <paramref name="client"/>'s report key) until the report has
    /// <paramref name="status"/> and its monthly totals are not pending, or <see cref="ProcessingTimeout"/> passed;
    /// answers the last status body either way, so the caller asserts what it expects.
    /// </summary>
    public static async Task<JsonElement> WaitForStatusAsync(HttpClient client, string reportId, string status, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + ProcessingTimeout;
        while (true)
        {
            using var response = await client.GetAsync($"/v1/usage-reports/{reportId}", cancellationToken);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).RootElement.Clone();
                // "processed" counts once the whole run is over: a committed report whose monthly totals are still
                // being recomputed says so with monthlyTotals "pending".
                var reached = body.GetProperty("status").GetString() == status && !body.TryGetProperty("monthlyTotals", out _);
                if (reached || DateTime.UtcNow > deadline)
                {
                    return body;
                }
            }
            else if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Report {reportId} answered {(int)response.StatusCode} until the deadline.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>A report of <paramref name="days"/> days × <paramref name="clusters"/> clusters × 3 metrics, written as it is generated.</summary>
    public static void WriteLarge(Stream output, string reportId, int days, int clusters, string secret = Secret)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret));
        void Write(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            hmac.AppendData(bytes);
            output.Write(bytes);
        }

        output.Write("{\"report\":"u8);
        var start = new DateOnly(2025, 1, 1);
        var end = start.AddDays(days);
        Write($"{{\"schemaVersion\":1,\"reportId\":\"{reportId}\",\"customerId\":\"{Customer}\",\"installationId\":\"inst-large\",\"product\":{{\"name\":\"camunda\",\"version\":\"8.6.2\"}},");
        Write(string.Create(CultureInfo.InvariantCulture, $"\"period\":{{\"start\":\"{start:yyyy-MM-dd}T00:00:00Z\",\"end\":\"{end:yyyy-MM-dd}T00:00:00Z\"}},\"generatedAt\":\"{end:yyyy-MM-dd}T00:00:00Z\",\"metrics\":["));
        var names = new[] { "process-instances", "decision-instances", "flow-node-instances" };
        for (var m = 0; m < names.Length; m++)
        {
            long total = 0;
            Write(m == 0 ? "" : ",");
            Write($"{{\"name\":\"{names[m]}\",\"breakdown\":[");
            for (var d = 0; d < days; d++)
            {
                var day = start.AddDays(d).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
                for (var c = 0; c < clusters; c++)
                {
                    long value = (d * 7 + c * 13 + m) % 1000;
                    total += value;
                    Write($"{(d == 0 && c == 0 ? "" : ",")}{{\"day\":\"{day}\",\"cluster\":\"cluster-{c:D4}\",\"tenant\":\"tenant-{c % 7}\",\"value\":{value}}}");
                }
            }

            Write($"],\"value\":{total}}}");
        }

        Write("]}");
        output.Write(Encoding.UTF8.GetBytes($",\"signature\":{{\"algorithm\":\"HMAC-SHA256\",\"value\":\"{Convert.ToHexStringLower(hmac.GetHashAndReset())}\"}}}}"));
    }

    /// <summary>The expected total of a metric of <see cref="WriteLarge"/>.</summary>
    public static long LargeTotal(int metricIndex, int days, int clusters)
    {
        long total = 0;
        for (var d = 0; d < days; d++)
        {
            for (var c = 0; c < clusters; c++)
            {
                total += (d * 7 + c * 13 + metricIndex) % 1000;
            }
        }

        return total;
    }
}
