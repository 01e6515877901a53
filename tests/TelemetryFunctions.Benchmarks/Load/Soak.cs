using System.Diagnostics;
using System.Globalization;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>One look at the host during the soak.</summary>
internal sealed record SoakSample(TimeSpan At, long ResidentBytes, LoadFigures Interval, double? HostCores);

/// <summary>
/// A steady load for a long time against one local host with its timers running, as in production: the host's
/// resident memory is sampled throughout and must stay flat after the warm-up, and every acknowledged event must be
/// stored exactly once at the end.
/// </summary>
internal static class Soak
{
    /// <summary>
    /// The first fifth of the run, and at least 30 s (at most half a short run), is warm-up: the JIT's tiers, caches,
    /// connection pools and the GC's budgets settle.
    /// </summary>
    private static TimeSpan Warmup(TimeSpan duration) =>
        TimeSpan.FromTicks(Math.Max((long)(duration.Ticks * 0.2), Math.Min(TimeSpan.FromSeconds(30).Ticks, duration.Ticks / 2)));

    /// <summary>Growth allowed between the first and the last quarter of the measured part, whichever is larger.</summary>
    private const double AllowedGrowthShare = 0.10;

    private const long AllowedGrowthBytes = 32L * 1024 * 1024;

    public static async Task<int> RunAsync(LoadOptions options, CancellationToken cancellationToken)
    {
        var rate = options.Rate > 0 ? $"{options.Rate:N0} events/s offered" : "as fast as answers come";
        Console.WriteLine("TelemetryFunctions soak");
        Console.WriteLine($"  {options.Duration.TotalMinutes:0.#} minutes, {options.Clients} clients, batches of {options.Batch}, {rate}; host memory sampled every {options.SampleEvery.TotalSeconds:0} s");
        await using var run = await LoadRun.StartAsync(options, options.Clients, timers: true, cancellationToken);
        Console.WriteLine();
        Console.WriteLine($"==> Running ({Warmup(options.Duration).TotalSeconds:0} s warm-up, then measured)");
        Console.WriteLine($"  {"time",6} {"events/s",9} {"p50 ms",7} {"p99 ms",7} {"429",6} {"503",6} {"errors",7} {"host CPU",9} {"host RSS MiB",13}");

        var clients = Enumerable.Range(0, options.Clients).Select(i => run.CreateClient(i, options.Clients)).ToList();
        double? perClient = options.Rate > 0 ? options.Rate / (double)options.Clients : null;
        var samples = new List<SoakSample>();
        var started = Stopwatch.GetTimestamp();
        using var stop = new CancellationTokenSource();
        var running = clients.Select(c => Task.Run(() => c.RunAsync(perClient, stop.Token), CancellationToken.None)).ToList();
        ClientTotals[] totals;
        try
        {
            using var timer = new PeriodicTimer(options.SampleEvery);
            var cpu = CpuMeter.Begin(run.Host.Process);
            run.Recorder.TakeInterval();
            while (Stopwatch.GetElapsedTime(started) < options.Duration && await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (run.Host.HasExited)
                {
                    break;
                }

                var sample = new SoakSample(Stopwatch.GetElapsedTime(started), run.Host.ResidentBytes(), run.Recorder.TakeInterval(), cpu.Cores());
                cpu = CpuMeter.Begin(run.Host.Process);
                samples.Add(sample);
                var f = sample.Interval;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {sample.At.TotalSeconds,5:0}s {f.EventsPerSecond,9:N0} {f.Latency.Percentile(50),7:0} {f.Latency.Percentile(99),7:0} {f.Rate(Outcome.TooManyRequests),6:P1} {f.Rate(Outcome.Unavailable),6:P1} {f.ErrorRate,7:P1} {sample.HostCores,9:0.00} {sample.ResidentBytes / 1048576.0,13:N0}"));
            }
        }
        finally
        {
            await stop.CancelAsync();
            totals = await Task.WhenAll(running);
            clients.ForEach(c => c.Dispose());
        }

        // The load's figures end when the clients stop, before the stored rows are counted.
        var load = run.Recorder.Total();
        var sum = new ClientTotals(totals.Sum(t => t.EventsSent), totals.Sum(t => t.EventsAcknowledged), totals.Sum(t => t.BatchesGivenUp));
        var storedOk = await run.CheckStoredAsync(sum, cancellationToken);
        var memoryOk = ReportMemory(samples, options.Duration);
        ReportLoad(load, sum);
        return storedOk && memoryOk ? 0 : 1;
    }

    private static bool ReportMemory(List<SoakSample> samples, TimeSpan duration)
    {
        const double MiB = 1048576.0;
        var measured = samples.Where(s => s.At >= Warmup(duration)).ToList();
        Console.WriteLine();
        if (measured.Count < 4)
        {
            Console.WriteLine($"  FAIL: only {measured.Count} memory samples after the warm-up; a longer --duration or a shorter --sample-seconds is needed.");
            return false;
        }

        var quarter = measured.Count / 4;
        var first = measured.Take(quarter).Average(s => (double)s.ResidentBytes);
        var last = measured.TakeLast(quarter).Average(s => (double)s.ResidentBytes);
        var allowed = Math.Max(AllowedGrowthBytes, first * AllowedGrowthShare);
        var growth = last - first;
        var flat = growth <= allowed;

        // Least-squares slope over the measured samples, for the report.
        var meanT = measured.Average(s => s.At.TotalMinutes);
        var meanM = measured.Average(s => s.ResidentBytes / MiB);
        var slope = measured.Sum(s => (s.At.TotalMinutes - meanT) * ((s.ResidentBytes / MiB) - meanM)) / Math.Max(1e-9, measured.Sum(s => Math.Pow(s.At.TotalMinutes - meanT, 2)));
        Console.WriteLine($"  host resident memory after warm-up: min {measured.Min(s => s.ResidentBytes) / MiB:N0}, max {measured.Max(s => s.ResidentBytes) / MiB:N0} MiB; first quarter {first / MiB:N0} MiB, last quarter {last / MiB:N0} MiB (growth {growth / MiB:+0;-0} MiB, allowed {allowed / MiB:N0}); trend {slope:+0.0;-0.0} MiB/min");
        Console.WriteLine($"  {(flat ? "PASS" : "FAIL")}  memory flat");
        return flat;
    }

    private static void ReportLoad(LoadFigures total, ClientTotals sums)
    {
        Console.WriteLine();
        Console.WriteLine("Results (Markdown)");
        Console.WriteLine();
        Console.WriteLine("| Measure | Value |");
        Console.WriteLine("| --- | --- |");
        Console.WriteLine($"| Events acknowledged (sent) | {sums.EventsAcknowledged:N0} ({sums.EventsSent:N0}) in {total.Elapsed.TotalMinutes:0.0} min, {total.EventsPerSecond:N0} events/s |");
        Console.WriteLine($"| Latency of acknowledged requests p50 / p95 / p99 / max | {total.Latency.Percentile(50):0} / {total.Latency.Percentile(95):0} / {total.Latency.Percentile(99):0} / {total.Latency.Max:0} ms |");
        Console.WriteLine($"| Requests: 429 / 503 / no response / other errors | {total.Count(Outcome.TooManyRequests):N0} / {total.Count(Outcome.Unavailable):N0} / {total.Count(Outcome.NoResponse):N0} / {total.Count(Outcome.ServerError) + total.Count(Outcome.ClientError) + total.Count(Outcome.PartlyRejected):N0} of {total.AllAttempts:N0} |");
        Console.WriteLine($"| Batches given up after {SegmentClient.MaxAttempts} attempts | {sums.BatchesGivenUp:N0} |");
    }
}
