using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Azure.Core;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.LocalHost;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Benchmarks;

/// <summary>One run: the local host started in process, warm-up, rounds of raw ceiling and host load, the stored-count check, the report.</summary>
internal sealed class Benchmark(BenchmarkOptions options)
{
    public const string WriteKey = "dev-write-key";
    private const double RatioTarget = 0.5;
    private const double TransactionsTarget = 30;
    private const double P99TargetMs = 250;
    private string _loadAtStart = "";

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Azurite? azurite = null;
        try
        {
            Console.WriteLine("TelemetryFunctions ingestion benchmark");
            Console.WriteLine($"  {options.Events:N0} events measured (+{options.WarmupEvents:N0} warm-up), {options.Clients} clients, batches of {options.Batch}, {options.Instances} instances, {options.Users:N0} users");
            _loadAtStart = LoadAverage();
            Console.WriteLine($"  {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, server GC {System.Runtime.GCSettings.IsServerGC}, load average {_loadAtStart}");

            string connectionString;
            string storageName;
            if (options.Storage is { } external)
            {
                connectionString = external;
                storageName = "the storage account given with --storage";
            }
            else
            {
                Console.WriteLine("==> Starting Azurite (in memory, free ports)");
                azurite = await Azurite.StartAsync(cancellationToken);
                connectionString = azurite.ConnectionString;
                storageName = $"Azurite {AzuriteVersion()} in memory, started by the benchmark";
            }

            Console.WriteLine(options.StorageDelayMs > 0
                ? $"  storage: {storageName}, with {options.StorageDelayMs} ms added before every request (--storage-delay)"
                : $"  storage: {storageName}");
            var prefix = "bench" + Guid.NewGuid().ToString("N")[..10];
            var service = new TableServiceClient(connectionString, StorageClientOptions(options.StorageDelayMs));
            try
            {
                return await RunPhasesAsync(service, connectionString, prefix, azurite?.Process, azurite, cancellationToken);
            }
            finally
            {
                if (azurite is null)
                {
                    await BenchmarkTables.DeleteAsync(service, prefix);
                }
            }
        }
        finally
        {
            if (azurite is not null)
            {
                await azurite.DisposeAsync();
            }
        }
    }

    private async Task<int> RunPhasesAsync(TableServiceClient service, string connectionString, string prefix, Process? emulator, Azurite? azurite, CancellationToken cancellationToken)
    {
        // The local host, in this process, on Kestrel, with a profile of its storage calls.
        Console.WriteLine();
        var port = Azurite.FreePort();
        var hostUri = new Uri($"http://127.0.0.1:{port}/");
        var profile = new StorageProfile(prefix);
        Console.WriteLine($"==> 1/4 Starting the local host on Kestrel at {hostUri}, table prefix {prefix}");
        await using var app = LocalHostApp.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["urls"] = hostUri.ToString().TrimEnd('/'),
                ["TelemetryDisableTimers"] = "true",
                ["Telemetry:Storage:ConnectionString"] = connectionString,
                ["Telemetry:Storage:TablePrefix"] = prefix,
                ["Telemetry:WriteKeys:0:Key"] = WriteKey,
                ["Telemetry:WriteKeys:0:Source"] = "server",
                ["Telemetry:AdminKey"] = "dev-admin-key",
                ["Telemetry:Privacy:PseudonymizationKey"] = "local-development-only-pseudonymization-key-not-secret",
                ["Logging:LogLevel:Default"] = "Warning",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
            });
            builder.Services.AddSingleton(new StoragePipelinePolicy(profile, HttpPipelinePosition.PerRetry));
            builder.Services.AddSingleton<IStartupFilter>(profile.Middleware());
            if (options.StorageDelayMs > 0)
            {
                builder.Services.AddSingleton(new StoragePipelinePolicy(new StorageDelay(TimeSpan.FromMilliseconds(options.StorageDelayMs)), HttpPipelinePosition.PerRetry));
            }
        });
        await app.StartAsync(cancellationToken);
        var counter = app.Services.GetRequiredService<StorageRequestCounter>();
        var fleet = new Fleet(options.Instances, options.Users, seed: 42);
        using var load = new HostLoad(hostUri, WriteKey, fleet, options);
        var ceilingTable = service.GetTableClient(prefix + "Ceiling");

        // Warm-up of both (connections, JIT in both processes, every instance's first batch), not measured.
        Console.WriteLine();
        Console.WriteLine($"==> 2/4 Warming up: {options.WarmupEvents:N0} entities written directly, then {options.WarmupEvents:N0} events through the host");
        await RawCeiling.WarmUpAsync(ceilingTable, options, emulator, cancellationToken);
        var warmupStorageBefore = counter.Count;
        var warmup = options.WarmupEvents > 0 ? await load.SendAsync(options.WarmupEvents, "warm-up", emulator, cancellationToken) : null;
        if (warmup is not null)
        {
            var perThousand = (counter.Count - warmupStorageBefore) * 1000.0 / Math.Max(1, warmup.Accepted);
            Console.WriteLine($"  host warm-up (includes every instance's first batch): {warmup.EventsPerSecond:N0} events/s, {perThousand:0.0} storage requests per 1,000 events, p99 {warmup.Latency.Percentile(99):0} ms");
        }

        // The measurement: ceiling and host alternate, so both see the same machine load and table sizes.
        Console.WriteLine();
        Console.WriteLine($"==> 3/4 Measuring in {options.Rounds} rounds: the raw ceiling (Azure.Data.Tables directly, {options.CeilingBatch}-entity upsert-replace transactions, {options.Clients} in flight, {RawCeiling.Partitions} partitions, {RawCeiling.PayloadBytes:N0}-byte payload), then the host ({options.Clients} clients, POST /v1/batch with {options.Batch} events)");
        profile.Reset();
        var ceilings = new List<CeilingResult>();
        var hosts = new List<LoadResult>();
        long storageRequests = 0;
        for (var round = 0; round < options.Rounds; round++)
        {
            var share = (options.Events / options.Rounds) + (round < options.Events % options.Rounds ? 1 : 0);
            var ceiling = await RawCeiling.MeasureAsync(ceilingTable, options, share, emulator, cancellationToken);
            var storageBefore = counter.Count;
            var host = await load.SendAsync(share, "host", emulator, cancellationToken);
            storageRequests += counter.Count - storageBefore;
            ceilings.Add(ceiling);
            hosts.Add(host);
            Console.WriteLine($"  round {round + 1}/{options.Rounds}: ceiling {ceiling.EntitiesPerSecond:N0} entities/s, host {host.EventsPerSecond:N0} events/s, ratio {host.EventsPerSecond / ceiling.EntitiesPerSecond:0.00}, host p99 {host.Latency.Percentile(99):0} ms");
        }

        var server = profile.Summarize();
        await app.StopAsync(CancellationToken.None);
        var ceilingTotal = CeilingResult.Combine(ceilings);
        var measured = LoadResult.Combine(hosts);

        // Everything sent is stored, once.
        Console.WriteLine();
        Console.WriteLine("==> 4/4 Checking what is stored");
        var sent = (warmup?.EventsSent ?? 0) + measured.EventsSent;
        var accepted = (warmup?.Accepted ?? 0) + measured.Accepted;
        var counting = Stopwatch.StartNew();
        var stored = await BenchmarkTables.CountRowsAsync(service.GetTableClient(prefix + TableNames.RawEvents), cancellationToken);
        var activityRows = await BenchmarkTables.CountRowsAsync(service.GetTableClient(prefix + TableNames.Activity), cancellationToken);
        var instanceRows = await BenchmarkTables.CountRowsAsync(service.GetTableClient(prefix + TableNames.Instances), cancellationToken);
        var payload = await MeanPayloadBytesAsync(service.GetTableClient(prefix + TableNames.RawEvents), cancellationToken);
        var storedOk = stored == sent;
        if (warmup?.FirstFailure is { } warmupFailure)
        {
            Console.WriteLine($"  warm-up: first failed, retried or partly accepted request: {Shorten(warmupFailure)}");
        }

        Console.WriteLine($"  RawEvents rows {stored:N0}, events sent {sent:N0} (warm-up {warmup?.EventsSent ?? 0:N0} + measured {measured.EventsSent:N0}), accepted in responses {accepted:N0}: {(storedOk ? "OK, nothing lost, nothing doubled" : "MISMATCH")}");
        Console.WriteLine($"  Activity rows {activityRows:N0}, Instances rows {instanceRows:N0}, stored raw-event payload {payload:N0} bytes on average (read back in {counting.Elapsed.TotalSeconds:0.0} s)");

        Report(ceilingTotal, measured, storageRequests, server, azurite, storedOk, stored, sent, payload);
        return storedOk ? 0 : 1;
    }

    private void Report(CeilingResult ceiling, LoadResult host, long storageRequests, ProfileSummary server, Azurite? azurite, bool storedOk, long stored, long sent, double payload)
    {
        var ratio = host.EventsPerSecond / ceiling.EntitiesPerSecond;
        var perThousand = storageRequests * 1000.0 / host.Accepted;
        var p99 = host.Latency.Percentile(99);
        using var self = Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo(GCKind.Any);
        const double MiB = 1024 * 1024;

        Console.WriteLine();
        Console.WriteLine("Results (measured phase only; Markdown)");
        Console.WriteLine();
        Console.WriteLine("| Measure | Value |");
        Console.WriteLine("| --- | --- |");
        Console.WriteLine($"| Raw ceiling (Azure.Data.Tables, {ceiling.EntitiesPerTransaction}-entity transactions, {options.Clients} in flight) | {ceiling.EntitiesPerSecond:N0} entities/s |");
        Console.WriteLine($"| Raw ceiling: transaction latency p50 / p99 | {ceiling.TransactionLatency.Percentile(50):0} / {ceiling.TransactionLatency.Percentile(99):0} ms |");
        Console.WriteLine($"| Host: events stored per second ({options.Clients} clients, batches of {options.Batch}) | {host.EventsPerSecond:N0} events/s |");
        Console.WriteLine($"| Ratio host / raw ceiling (same run, same storage) | {ratio:0.00} |");
        Console.WriteLine($"| Storage requests per 1,000 events | {perThousand:0.0} ({storageRequests:N0} for {host.Accepted:N0} events) |");
        Console.WriteLine($"| Request latency p50 / p95 / p99 / max | {host.Latency.Percentile(50):0} / {host.Latency.Percentile(95):0} / {p99:0} / {host.Latency.Max:0} ms |");
        Console.WriteLine($"| Requests (retries, failures) | {host.Requests:N0} ({host.Retries:N0}, {host.Failures:N0}) |");
        Console.WriteLine($"| Request body per event (JSON sent) / stored payload per event | {host.RequestBytes / (double)host.EventsSent:N0} / {payload:N0} bytes |");
        Console.WriteLine($"| CPU, benchmark process (clients + server) | {host.Resources.Cpu.TotalSeconds:0.0} s = {host.Resources.Cpu.TotalMilliseconds / host.Accepted * 1000:N0} ms per 1,000 events |");
        if (host.Resources.EmulatorCpu is { } emulatorCpu)
        {
            Console.WriteLine($"| CPU, Azurite (host phase / ceiling phase) | {emulatorCpu.TotalMilliseconds / host.Accepted * 1000:N0} / {ceiling.Resources.EmulatorCpu?.TotalMilliseconds / ceiling.Entities * 1000:N0} ms per 1,000 events |");
        }

        Console.WriteLine($"| CPUs busy with this benchmark and Azurite (share of all {Environment.ProcessorCount}; host phase / ceiling phase) | {host.Resources.OwnBusy:P0} / {ceiling.Resources.OwnBusy:P0} |");
        if (host.Resources.OthersBusy is { } othersHost && ceiling.Resources.OthersBusy is { } othersCeiling)
        {
            Console.WriteLine($"| CPUs busy with other processes on the machine (host phase / ceiling phase) | {othersHost:P0} / {othersCeiling:P0} |");
        }

        Console.WriteLine($"| Peak working set, benchmark process (clients + server + ceiling client), whole run | {self.PeakWorkingSet64 / MiB:N0} MiB |");
        Console.WriteLine($"| Peak working set / managed heap sampled during the host phase | {host.PeakWorkingSet / MiB:N0} / {host.PeakManagedHeap / MiB:N0} MiB |");
        Console.WriteLine($"| GC heap after the last collection / committed | {gc.HeapSizeBytes / MiB:N0} / {gc.TotalCommittedBytes / MiB:N0} MiB |");
        Console.WriteLine($"| Allocated during the host phase | {host.Resources.Allocated / MiB:N0} MiB = {host.Resources.Allocated / (double)host.Accepted / 1024:N1} KiB per event; GCs gen0/1/2 {host.Resources.Gen0}/{host.Resources.Gen1}/{host.Resources.Gen2} |");
        if (azurite?.PeakResidentBytes() is { } azuriteRss)
        {
            Console.WriteLine($"| Peak resident memory, Azurite (holds every row in memory) | {azuriteRss / MiB:N0} MiB |");
        }

        Console.WriteLine($"| Load average (1, 5, 15 min) at the start / end | {_loadAtStart} / {LoadAverage()} |");
        Console.WriteLine($"| Stored RawEvents rows = events sent | {stored:N0} = {sent:N0}: {(storedOk ? "yes" : "NO")} |");

        Console.WriteLine();
        Console.WriteLine("Where a request's time goes (server side, measured phase)");
        var requests = Math.Max(1, server.Requests);
        var serverMs = server.ServerTime.TotalMilliseconds / requests;
        var storageMs = server.StorageTime.TotalMilliseconds / requests;
        Console.WriteLine($"  {server.Requests:N0} requests: {serverMs:0.0} ms in the server on average, of which {storageMs:0.0} ms waiting for storage (with at least one call in flight; {server.StorageCalls / (double)requests:0.00} storage calls per request) and {Math.Max(0, serverMs - storageMs):0.0} ms in the host's own code (reading, parsing, pseudonymizing, scrubbing, serializing, queueing for a CPU)");
        Console.WriteLine($"  client-measured latency averages {host.Latency.Mean:0.0} ms: {Math.Max(0, host.Latency.Mean - serverMs):0.0} ms more than the server's own time (client, Kestrel, sockets, waiting for a CPU)");
        Console.WriteLine();
        Console.WriteLine("  | Storage operation | Calls | Per 1,000 events | Mean | Max | Time per request |");
        Console.WriteLine("  | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var op in server.Operations)
        {
            Console.WriteLine($"  | {op.Name} | {op.Count:N0} | {op.Count * 1000.0 / host.Accepted:0.0} | {op.Mean.TotalMilliseconds:0.0} ms | {op.Max.TotalMilliseconds:0} ms | {op.Total.TotalMilliseconds / requests:0.0} ms |");
        }

        if (host.FirstFailure is { } failure)
        {
            Console.WriteLine();
            Console.WriteLine($"  first failed, retried or partly accepted request: {Shorten(failure)}");
        }

        Console.WriteLine();
        Console.WriteLine("Targets");
        Target($"events/s stored / raw ceiling >= {RatioTarget:0.0}", ratio >= RatioTarget, $"{ratio:0.00}");
        Target($"storage transactions per 1,000 events <= {TransactionsTarget:0}", perThousand <= TransactionsTarget, $"{perThousand:0.0}");
        Target($"p99 request latency < {P99TargetMs:0} ms", p99 < P99TargetMs, $"{p99:0} ms");
        Target("every event sent is stored exactly once", storedOk, $"{stored:N0} of {sent:N0}");
        if (!storedOk)
        {
            Console.WriteLine("The stored-count check failed: exit code 1.");
        }
    }

    private static string Shorten(string text) => text.Length > 600 ? text[..600] + "..." : text;

    private static void Target(string name, bool met, string value) =>
        Console.WriteLine($"  {(met ? "PASS" : "FAIL")}  {name,-48} {value}");

    private static TableClientOptions StorageClientOptions(int delayMs)
    {
        // As the host configures its own clients.
        var options = new TableClientOptions();
        options.Retry.MaxRetries = 3;
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        if (delayMs > 0)
        {
            options.AddPolicy(new StorageDelay(TimeSpan.FromMilliseconds(delayMs)), HttpPipelinePosition.PerRetry);
        }

        return options;
    }

    private static async Task<double> MeanPayloadBytesAsync(TableClient table, CancellationToken cancellationToken)
    {
        long bytes = 0, rows = 0;
        await foreach (var row in table.QueryAsync<TableEntity>(maxPerPage: 200, select: ["Payload"], cancellationToken: cancellationToken))
        {
            bytes += row.GetBinary("Payload")?.Length ?? 0;
            if (++rows == 200)
            {
                break;
            }
        }

        return rows == 0 ? 0 : bytes / (double)rows;
    }

    internal static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    internal static string AzuriteVersion()
    {
        try
        {
            using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot.Path, "node_modules", "azurite", "package.json")));
            return package.RootElement.GetProperty("version").GetString() ?? "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
