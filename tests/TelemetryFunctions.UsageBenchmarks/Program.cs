using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.UsageReports;

// Two separate runs, so the peak memory of processing is not mixed with that of generating:
//   generate --size-mb 100 --connection <storage>   writes a signed report into the usage-reports container
//   process --connection <storage>                  processes it as the blob trigger would, and reports time and memory
const string Customer = "bench";
const string Secret = "benchmark-only-signing-secret-0123456789abcdef";
const string BlobName = Customer + "/benchmark.json";
const string Prefix = "bench";

var command = args.FirstOrDefault() ?? "";
var connection = Option("--connection") ?? Environment.GetEnvironmentVariable("TELEMETRY_TEST_STORAGE");
if (command is not ("generate" or "process") || string.IsNullOrEmpty(connection))
{
    Console.Error.WriteLine("usage: generate --size-mb <MB> --connection <storage connection string> | process --connection <storage connection string>");
    return 2;
}

var container = new BlobServiceClient(connection).GetBlobContainerClient(Prefix + "-usage-reports");
if (command == "generate")
{
    var sizeMb = int.Parse(Option("--size-mb") ?? "100", CultureInfo.InvariantCulture);
    await container.CreateIfNotExistsAsync();
    var watch = Stopwatch.StartNew();
    var blob = container.GetBlockBlobClient(BlobName);
    long written;
    int days = 365, clusters;
    await using (var output = await blob.OpenWriteAsync(overwrite: true, new BlockBlobOpenWriteOptions { BufferSize = 4 * 1024 * 1024 }))
    await using (var counting = new CountingStream(output))
    {
        // An entry is about 75 bytes; three metrics of 365 days each.
        clusters = Math.Max(1, (int)(sizeMb * 1_000_000L / (75L * 3 * days)));
        WriteReport(counting, days, clusters);
        written = counting.Written;
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generated {written / 1_000_000.0:F1} MB ({3L * days * clusters:N0} breakdown entries: 3 metrics x {days} days x {clusters} clusters) in {watch.Elapsed.TotalSeconds:F1} s"));
    return 0;
}

var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Telemetry:Storage:ConnectionString"] = connection,
    ["Telemetry:Storage:TablePrefix"] = Prefix,
    ["Telemetry:WriteKeys:0:Key"] = "benchmark-write-key",
    ["Telemetry:WriteKeys:0:Source"] = "server",
    ["Telemetry:Privacy:PseudonymizationKey"] = "benchmark-only-pseudonymization-key-0123456789",
    ["Telemetry:UsageReports:Customers:0:Id"] = Customer,
    ["Telemetry:UsageReports:Customers:0:SigningSecret"] = Secret,
    ["Telemetry:UsageReports:Customers:0:ReportKey"] = "benchmark-report-key",
    ["Telemetry:UsageReports:Customers:0:Entitlements:0:Metric"] = "process-instances",
    ["Telemetry:UsageReports:Customers:0:Entitlements:0:MonthlyQuantity"] = "1000000",
}).Build();
var services = new ServiceCollection().AddLogging().AddTelemetryFunctions(configuration).BuildServiceProvider();
var processor = services.GetRequiredService<UsageReportProcessor>();
var size = (await container.GetBlobClient(BlobName).GetPropertiesAsync()).Value.ContentLength;

var before = Process.GetCurrentProcess();
before.Refresh();
var startWorkingSet = before.WorkingSet64;
var gen0 = GC.CollectionCount(0);
var gen1 = GC.CollectionCount(1);
var gen2 = GC.CollectionCount(2);
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var stopwatch = Stopwatch.StartNew();
var outcome = await processor.ProcessAsync(BlobName, CancellationToken.None);
stopwatch.Stop();
var after = Process.GetCurrentProcess();
after.Refresh();
var rows = await services.GetRequiredService<UsageRowStore>().ReadAsync(Customer, outcome.ReportId ?? "", CancellationToken.None);
var gcInfo = GC.GetGCMemoryInfo(GCKind.Any);

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
    outcome:             {outcome.Status} ({string.Join("; ", outcome.Reasons)})
    report:              {size / 1_000_000.0:F1} MB of JSON
    rows written:        {rows.Count:N0}
    time:                {stopwatch.Elapsed.TotalSeconds:F1} s ({size / 1_000_000.0 / stopwatch.Elapsed.TotalSeconds:F1} MB/s)
    peak working set:    {after.PeakWorkingSet64 / 1_048_576.0:F0} MiB (process start to end; {startWorkingSet / 1_048_576.0:F0} MiB before processing)
    GC:                  {(GCSettings.IsServerGC ? "server" : "workstation")}, {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2} gen0/1/2 collections, {(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / 1_048_576.0:F0} MiB allocated, heap {gcInfo.HeapSizeBytes / 1_048_576.0:F0} MiB, committed {gcInfo.TotalCommittedBytes / 1_048_576.0:F0} MiB
    machine:             {Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1_073_741_824.0:F0} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}
    """));
return outcome.Status == BlobLedgerEntry.Processed ? 0 : 1;

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

static void WriteReport(Stream output, int days, int clusters)
{
    using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(Secret));
    var pending = new StringBuilder();

    // The report's bytes go through the HMAC exactly as they are written; the envelope around them does not.
    void Signed(string text)
    {
        pending.Append(text);
        if (pending.Length > 1 << 16)
        {
            Flush();
        }
    }

    void Flush()
    {
        var bytes = Encoding.UTF8.GetBytes(pending.ToString());
        hmac.AppendData(bytes);
        output.Write(bytes);
        pending.Clear();
    }

    output.Write("{\"report\":"u8);
    var start = new DateOnly(2025, 1, 1);
    var end = start.AddDays(days);
    Signed(string.Create(CultureInfo.InvariantCulture, $"{{\"schemaVersion\":1,\"reportId\":\"bench-{start:yyyy}\",\"customerId\":\"{Customer}\",\"installationId\":\"bench-installation\",\"product\":{{\"name\":\"camunda\",\"version\":\"8.6.2\"}},"));
    Signed(string.Create(CultureInfo.InvariantCulture, $"\"period\":{{\"start\":\"{start:yyyy-MM-dd}T00:00:00Z\",\"end\":\"{end:yyyy-MM-dd}T00:00:00Z\"}},\"generatedAt\":\"{end:yyyy-MM-dd}T00:00:00Z\",\"metrics\":["));
    string[] names = ["process-instances", "decision-instances", "flow-node-instances"];
    for (var m = 0; m < names.Length; m++)
    {
        long total = 0;
        Signed((m == 0 ? "" : ",") + $"{{\"name\":\"{names[m]}\",\"breakdown\":[");
        for (var d = 0; d < days; d++)
        {
            var day = start.AddDays(d).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            for (var c = 0; c < clusters; c++)
            {
                long value = (d * 7 + c * 13 + m) % 1000;
                total += value;
                Signed(string.Create(CultureInfo.InvariantCulture, $"{(d == 0 && c == 0 ? "" : ",")}{{\"day\":\"{day}\",\"cluster\":\"cluster-{c:D4}\",\"tenant\":\"tenant-{c % 7}\",\"value\":{value}}}"));
            }
        }

        // The total comes after the breakdown, as a generator that counts while it writes produces it.
        Signed(string.Create(CultureInfo.InvariantCulture, $"],\"value\":{total}}}"));
    }

    Signed("]}");
    Flush();
    output.Write(Encoding.UTF8.GetBytes($",\"signature\":{{\"algorithm\":\"HMAC-SHA256\",\"value\":\"{Convert.ToHexStringLower(hmac.GetHashAndReset())}\"}}}}"));
}

/// <summary>Counts the bytes written through it.</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count)
    {
        inner.Write(buffer, offset, count);
        Written += count;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Written += buffer.Length;
    }

    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
