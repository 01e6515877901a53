using System.Diagnostics;
using System.Globalization;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>One step of the ramp: its clients, what they saw, and what the processes and the machine used.</summary>
internal sealed record RampStep(int Clients, LoadFigures Figures, double? HostCores, double? StorageCores, double? GeneratorCores, double? MachineBusy, long HostResidentBytes);

/// <summary>
/// Raises the number of concurrent clients step by step against one local host, measures each step after a short
/// settling time, and finds the step where throughput stops growing: the storage ceiling on this machine. The
/// storage's raw ceiling (rows written directly with Azure.Data.Tables) is measured before and after, for scale.
/// </summary>
internal static class Ramp
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);

    public static async Task<int> RunAsync(LoadOptions options, CancellationToken cancellationToken)
    {
        Console.WriteLine("TelemetryFunctions load ramp");
        Console.WriteLine($"  steps of {string.Join(", ", options.Steps)} concurrent clients, {options.StepLength.TotalSeconds:0} s each (+{Settle.TotalSeconds:0} s settling, not measured), batches of {options.Batch}");
        await using var run = await LoadRun.StartAsync(options, options.Steps.Max(), timers: false, cancellationToken);
        var ceilingOptions = new BenchmarkOptions { Clients = 8, Batch = 100, Warmup = 5_000 };
        var ceilingTable = run.Service.GetTableClient(run.Prefix + "Ceiling");

        Console.WriteLine();
        Console.WriteLine($"==> Raw storage ceiling before the ramp (Azure.Data.Tables directly, 100-entity transactions, 8 in flight)");
        await RawCeiling.WarmUpAsync(ceilingTable, ceilingOptions, run.Emulator, cancellationToken);
        var before = await RawCeiling.MeasureAsync(ceilingTable, ceilingOptions, 20_000, run.Emulator, cancellationToken);
        Console.WriteLine($"  {before.EntitiesPerSecond:N0} entities/s");

        var steps = new List<RampStep>();
        long sent = 0, acknowledged = 0, givenUp = 0;
        foreach (var count in options.Steps)
        {
            Console.WriteLine();
            Console.WriteLine($"==> {count} concurrent clients");
            var clients = Enumerable.Range(0, count).Select(i => run.CreateClient(i, count)).ToList();
            using var stop = new CancellationTokenSource();
            var running = clients.Select(c => Task.Run(() => c.RunAsync(eventsPerSecond: null, stop.Token), CancellationToken.None)).ToList();
            try
            {
                await Task.Delay(Settle, cancellationToken);
                run.Recorder.TakeInterval();
                var host = CpuMeter.Begin(run.Host.Process);
                var storage = CpuMeter.Begin(run.Emulator);
                using var self = Process.GetCurrentProcess();
                var generator = CpuMeter.Begin(self);
                var machine = ResourceSnapshot.Take(null);
                await Task.Delay(options.StepLength, cancellationToken);
                var figures = run.Recorder.TakeInterval();
                var step = new RampStep(count, figures, host.Cores(), storage.Cores(), generator.Cores(), ResourceSnapshot.Take(null).Since(machine).MachineBusy, run.Host.ResidentBytes());
                steps.Add(step);
                Console.WriteLine($"  {figures.EventsPerSecond:N0} events/s acknowledged, p50/p95/p99 {figures.Latency.Percentile(50):0}/{figures.Latency.Percentile(95):0}/{figures.Latency.Percentile(99):0} ms, 429 {figures.Rate(Outcome.TooManyRequests):P1}, 503 {figures.Rate(Outcome.Unavailable):P1}, errors {figures.ErrorRate:P1}, host {Cores(step.HostCores)} cores, storage {Cores(step.StorageCores)} cores");
            }
            finally
            {
                // Clients stop between batches: every batch sent gets its answer before the next step starts.
                await stop.CancelAsync();
                foreach (var totals in await Task.WhenAll(running))
                {
                    sent += totals.EventsSent;
                    acknowledged += totals.EventsAcknowledged;
                    givenUp += totals.BatchesGivenUp;
                }

                clients.ForEach(c => c.Dispose());
                run.Recorder.TakeInterval();
            }

            if (run.Host.HasExited)
            {
                break;
            }
        }

        Console.WriteLine();
        Console.WriteLine("==> Raw storage ceiling after the ramp (the tables are larger now)");
        var after = await RawCeiling.MeasureAsync(ceilingTable, ceilingOptions, 20_000, run.Emulator, cancellationToken);
        Console.WriteLine($"  {after.EntitiesPerSecond:N0} entities/s");

        var storedOk = await run.CheckStoredAsync(new ClientTotals(sent, acknowledged, givenUp), cancellationToken);
        Report(steps, before.EntitiesPerSecond, after.EntitiesPerSecond, options);
        return storedOk ? 0 : 1;
    }

    private static void Report(List<RampStep> steps, double ceilingBefore, double ceilingAfter, LoadOptions options)
    {
        if (steps.Count == 0)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"Results (Markdown; batches of {options.Batch} events, {options.StepLength.TotalSeconds:0} s per step)");
        Console.WriteLine();
        Console.WriteLine("| Clients | Events/s acknowledged | Requests/s | p50 / p95 / p99 ms | 429 | 503 | Errors | CPU cores: host / storage / load generator | Storage CPU per 1,000 events | Machine busy | Host RSS MiB |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var s in steps)
        {
            var f = s.Figures;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {s.Clients} | {f.EventsPerSecond:N0} | {f.RequestsPerSecond:N1} | {f.Latency.Percentile(50):0} / {f.Latency.Percentile(95):0} / {f.Latency.Percentile(99):0} | {f.Rate(Outcome.TooManyRequests):P1} | {f.Rate(Outcome.Unavailable):P1} | {f.ErrorRate:P1} | {Cores(s.HostCores)} / {Cores(s.StorageCores)} / {Cores(s.GeneratorCores)} | {StorageMsPerThousand(s)} | {(s.MachineBusy is { } m ? m.ToString("P0", CultureInfo.InvariantCulture) : "n/a")} | {s.HostResidentBytes / 1048576.0:N0} |"));
        }

        var peak = steps.MaxBy(s => s.Figures.EventsPerSecond)!;
        var knee = steps.First(s => s.Figures.EventsPerSecond >= 0.9 * peak.Figures.EventsPerSecond);
        var ceiling = (ceilingBefore + ceilingAfter) / 2;
        Console.WriteLine();
        Console.WriteLine($"Raw storage ceiling: {ceilingBefore:N0} entities/s before the ramp, {ceilingAfter:N0} after.");
        Console.WriteLine($"Throughput peaks at {peak.Figures.EventsPerSecond:N0} events/s ({Clients(peak.Clients)}), {peak.Figures.EventsPerSecond / ceiling:0.00} of the raw ceiling; it reaches 90% of that peak at {Clients(knee.Clients)} (p99 {knee.Figures.Latency.Percentile(99):0} ms).");
        var later = steps.Where(s => s.Clients > knee.Clients).ToList();
        if (later.Count > 0)
        {
            var last = later[^1];
            Console.WriteLine($"Beyond {Clients(knee.Clients)} more clients add latency, not throughput: at {Clients(last.Clients)} {last.Figures.EventsPerSecond:N0} events/s with p99 {last.Figures.Latency.Percentile(99):0} ms.");
        }

        var bound = knee.Figures.Rate(Outcome.TooManyRequests) > 0
            ? $"the host's rate limits: {knee.Figures.Rate(Outcome.TooManyRequests):P1} of requests got 429"
            : knee.StorageCores switch
            {
                >= 0.85 => $"the storage: Azurite, which runs on one thread, keeps {knee.StorageCores:0.00} cores busy at that step",
                { } c when knee.MachineBusy >= 0.9 => $"the machine: all {Environment.ProcessorCount} CPUs are busy (storage {c:0.00} cores, host {Cores(knee.HostCores)} cores)",
                { } c => $"not the storage's CPU (Azurite {c:0.00} cores, host {Cores(knee.HostCores)} cores): look at the host",
                null => "unknown (the storage was given with --storage, its CPU cannot be seen from here)",
            };
        Console.WriteLine($"What limits it at the knee: {bound}.");
        var limited = steps.FirstOrDefault(s => s.Figures.Rate(Outcome.TooManyRequests) > 0);
        Console.WriteLine(limited is null
            ? "No request was rate limited (429)."
            : $"Rate limiting (429) starts at {Clients(limited.Clients)} ({limited.Figures.Rate(Outcome.TooManyRequests):P1} of requests).");
    }

    /// <summary>The storage's CPU time per 1,000 acknowledged events: whether storage work per event grows with load.</summary>
    private static string StorageMsPerThousand(RampStep step) =>
        step.StorageCores is { } cores && step.Figures.EventsPerSecond > 0
            ? (cores / step.Figures.EventsPerSecond * 1_000_000).ToString("N0", CultureInfo.InvariantCulture) + " ms"
            : "n/a";

    private static string Clients(int count) => count == 1 ? "1 client" : $"{count} clients";

    private static string Cores(double? cores) => cores is { } c ? c.ToString("0.00", CultureInfo.InvariantCulture) : "n/a";
}
