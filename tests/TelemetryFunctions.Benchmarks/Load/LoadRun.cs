using System.Diagnostics;
using System.Runtime.InteropServices;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>
/// What a ramp or a soak runs against: the storage (its own in-memory Azurite unless given), the local host as its
/// own process with a unique table prefix, the fleet the clients pose as; and the final check that every
/// acknowledged event is stored exactly once.
/// </summary>
internal sealed class LoadRun : IAsyncDisposable
{
    public const string WriteKey = "dev-write-key";
    private const int Users = 20_000;

    private readonly Azurite? _azurite;
    private int _clientsCreated;

    private LoadRun(Azurite? azurite, TableServiceClient service, string prefix, HostProcess host, Fleet fleet, LoadOptions options)
    {
        _azurite = azurite;
        Service = service;
        Prefix = prefix;
        Host = host;
        Fleet = fleet;
        Options = options;
    }

    public TableServiceClient Service { get; }

    public string Prefix { get; }

    public HostProcess Host { get; }

    public Fleet Fleet { get; }

    public LoadOptions Options { get; }

    public LoadRecorder Recorder { get; } = new();

    /// <summary>The storage emulator's process when this run started it (its CPU shows when storage is the ceiling).</summary>
    public Process? Emulator => _azurite?.Process;

    public static async Task<LoadRun> StartAsync(LoadOptions options, int maxClients, bool timers, CancellationToken cancellationToken)
    {
        Console.WriteLine($"  {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, load average {Benchmark.LoadAverage()}");
        Azurite? azurite = null;
        string connectionString;
        if (options.Storage is { } external)
        {
            connectionString = external;
            Console.WriteLine("  storage: the storage account given with --storage");
        }
        else
        {
            azurite = await Azurite.StartAsync(cancellationToken);
            connectionString = azurite.ConnectionString;
            Console.WriteLine($"  storage: Azurite {Benchmark.AzuriteVersion()} in memory, started by this run");
        }

        var prefix = "load" + Guid.NewGuid().ToString("N")[..10];
        try
        {
            var host = await HostProcess.StartAsync(connectionString, prefix, timers, options.Settings, cancellationToken);
            Console.WriteLine($"  local host: its own process (pid {host.Process.Id}) at {host.Address}, table prefix {prefix}, timers {(timers ? "running" : "off")}{(options.Settings.Count > 0 ? ", settings " + string.Join(", ", options.Settings.Select(s => $"{s.Key}={s.Value}")) : "")}");
            var service = new TableServiceClient(connectionString);
            var fleet = new Fleet(Math.Max(50, maxClients), Users, seed: 42);
            return new LoadRun(azurite, service, prefix, host, fleet, options);
        }
        catch
        {
            if (azurite is not null)
            {
                await azurite.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// Client <paramref name="index"/> of a group of <paramref name="count"/>: it poses as its share of the fleet's
    /// instances, with messageIds that no other client of the run produces.
    /// </summary>
    public SegmentClient CreateClient(int index, int count)
    {
        var seed = 1000 + Interlocked.Increment(ref _clientsCreated);
        var writer = new BatchWriter(Fleet, Fleet.ForClient(index, count), seed);
        return new SegmentClient(Host.Address, WriteKey, writer, Options.Batch, Recorder);
    }

    /// <summary>
    /// Counts the RawEvents rows and compares them with what the clients sent and saw acknowledged; prints the
    /// verdict. A raw row's key is the event's messageId, so equal counts mean nothing lost and nothing doubled.
    /// </summary>
    public async Task<bool> CheckStoredAsync(ClientTotals totals, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine("==> Checking what is stored");
        var clock = Stopwatch.StartNew();
        var stored = await BenchmarkTables.CountRowsAsync(Service.GetTableClient(Prefix + TableNames.RawEvents), cancellationToken);
        var total = Recorder.Total();
        var problems = total.Count(Outcome.ServerError) + total.Count(Outcome.PartlyRejected) + total.Count(Outcome.ClientError);
        bool ok;
        string verdict;
        if (totals.BatchesGivenUp == 0)
        {
            ok = stored == totals.EventsAcknowledged;
            verdict = ok ? "every acknowledged event stored, none twice: lost 0, duplicates 0" : $"MISMATCH: {totals.EventsAcknowledged - stored:N0} events lost (negative: doubled)";
        }
        else
        {
            // A given-up batch may have been stored before its answer was lost; only acknowledged events must be there.
            ok = stored >= totals.EventsAcknowledged && stored <= totals.EventsSent;
            verdict = ok
                ? $"every acknowledged event stored; {totals.BatchesGivenUp:N0} batches given up after {SegmentClient.MaxAttempts} attempts, {stored - totals.EventsAcknowledged:N0} of their events stored"
                : "MISMATCH: stored rows outside [acknowledged, sent]";
        }

        Console.WriteLine($"  events sent {totals.EventsSent:N0}, acknowledged {totals.EventsAcknowledged:N0}, RawEvents rows {stored:N0} (counted in {clock.Elapsed.TotalSeconds:0.0} s): {verdict}");
        if (problems > 0)
        {
            Console.WriteLine($"  FAIL: {total.Count(Outcome.ServerError):N0} server errors (5xx other than 503), {total.Count(Outcome.ClientError):N0} client errors, {total.Count(Outcome.PartlyRejected):N0} partly rejected batches for valid events");
        }

        foreach (var (outcome, problem) in Recorder.FirstProblems())
        {
            Console.WriteLine($"  first {outcome}: {problem}");
        }

        if (Host.HasExited)
        {
            Console.WriteLine($"  FAIL: the local host exited. Its last output:\n{Host.LastLines()}");
            return false;
        }

        return ok && problems == 0;
    }

    public async ValueTask DisposeAsync()
    {
        Host.Dispose();
        if (_azurite is not null)
        {
            await _azurite.DisposeAsync();
        }
        else
        {
            await BenchmarkTables.DeleteAsync(Service, Prefix);
        }
    }
}

/// <summary>CPU used by a process between two moments, as a number of cores kept busy.</summary>
internal readonly record struct CpuMeter(Process? Process, TimeSpan Start, long Stamp)
{
    public static CpuMeter Begin(Process? process)
    {
        if (process is null || process.HasExited)
        {
            return new CpuMeter(null, TimeSpan.Zero, Stopwatch.GetTimestamp());
        }

        process.Refresh();
        return new CpuMeter(process, process.TotalProcessorTime, Stopwatch.GetTimestamp());
    }

    /// <summary>Cores busy on average since <see cref="Begin"/>; null when there is no process to measure.</summary>
    public double? Cores()
    {
        if (Process is null || Process.HasExited)
        {
            return null;
        }

        Process.Refresh();
        var wall = Stopwatch.GetElapsedTime(Stamp);
        return wall > TimeSpan.Zero ? (Process.TotalProcessorTime - Start) / wall : null;
    }
}
