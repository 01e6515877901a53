using System.Diagnostics;
using System.Globalization;

namespace TelemetryFunctions.Benchmarks;

/// <summary>CPU, allocation and garbage-collection counters at one moment, for this process and the emulator.</summary>
internal sealed record ResourceSnapshot(long Timestamp, TimeSpan Cpu, TimeSpan? EmulatorCpu, long Allocated, int Gen0, int Gen1, int Gen2, (long Busy, long Total)? Machine)
{
    public static ResourceSnapshot Take(Process? emulator)
    {
        using var self = Process.GetCurrentProcess();
        TimeSpan? emulatorCpu = null;
        if (emulator is { HasExited: false })
        {
            emulator.Refresh();
            emulatorCpu = emulator.TotalProcessorTime;
        }

        return new ResourceSnapshot(
            Stopwatch.GetTimestamp(),
            self.TotalProcessorTime,
            emulatorCpu,
            GC.GetTotalAllocatedBytes(precise: true),
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            MachineTicks());
    }

    /// <summary>Busy and total CPU ticks of the whole machine, every process included (Linux /proc/stat).</summary>
    private static (long Busy, long Total)? MachineTicks()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            var total = fields.Take(8).Sum();
            var idle = fields[3] + fields[4];
            return (total - idle, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    public ResourceUse Since(ResourceSnapshot start) => new(
        Stopwatch.GetElapsedTime(start.Timestamp, Timestamp),
        Cpu - start.Cpu,
        EmulatorCpu - start.EmulatorCpu,
        Allocated - start.Allocated,
        Gen0 - start.Gen0,
        Gen1 - start.Gen1,
        Gen2 - start.Gen2,
        Machine is { } end && start.Machine is { } begin && end.Total > begin.Total ? (end.Busy - begin.Busy) / (double)(end.Total - begin.Total) : null);
}

/// <summary>What a phase used: wall time, CPU time of this process and of the emulator, bytes allocated, collections.</summary>
internal sealed record ResourceUse(TimeSpan Wall, TimeSpan Cpu, TimeSpan? EmulatorCpu, long Allocated, int Gen0, int Gen1, int Gen2, double? MachineBusy)
{
    /// <summary>Share of all the machine's CPUs that this process and the emulator kept busy.</summary>
    public double OwnBusy => (Cpu + (EmulatorCpu ?? TimeSpan.Zero)) / (Wall * Environment.ProcessorCount);

    /// <summary>Share of all the machine's CPUs that other processes kept busy (they compete with the measurement).</summary>
    public double? OthersBusy => MachineBusy is { } all ? Math.Max(0, all - OwnBusy) : null;

    /// <summary>Two phases together (machine shares weighted by wall time).</summary>
    public ResourceUse Plus(ResourceUse other) => new(
        Wall + other.Wall,
        Cpu + other.Cpu,
        EmulatorCpu + other.EmulatorCpu,
        Allocated + other.Allocated,
        Gen0 + other.Gen0,
        Gen1 + other.Gen1,
        Gen2 + other.Gen2,
        ((MachineBusy * Wall.TotalSeconds) + (other.MachineBusy * other.Wall.TotalSeconds)) / (Wall + other.Wall).TotalSeconds);
}

/// <summary>Percentiles of a set of durations, by the nearest-rank method.</summary>
internal sealed class Latencies
{
    private readonly double[] _sortedMs;

    public Latencies(IEnumerable<long> ticks)
        : this(ticks.Select(t => Stopwatch.GetElapsedTime(0, t).TotalMilliseconds))
    {
    }

    private Latencies(IEnumerable<double> milliseconds)
    {
        _sortedMs = milliseconds.Order().ToArray();
    }

    public static Latencies Merge(IEnumerable<Latencies> parts) => new(parts.SelectMany(p => p._sortedMs));

    public int Count => _sortedMs.Length;

    public double Mean => _sortedMs.Length == 0 ? 0 : _sortedMs.Average();

    public double Max => _sortedMs.Length == 0 ? 0 : _sortedMs[^1];

    public double Percentile(double p)
    {
        if (_sortedMs.Length == 0)
        {
            return 0;
        }

        var rank = (int)Math.Ceiling(p / 100 * _sortedMs.Length);
        return _sortedMs[Math.Clamp(rank - 1, 0, _sortedMs.Length - 1)];
    }
}

/// <summary>
/// Counts progress of a phase and prints a line every few seconds; meanwhile samples this process's working set and
/// managed heap, whose highest values it keeps.
/// </summary>
internal sealed class ProgressMeter
{
    private static readonly TimeSpan Sample = TimeSpan.FromMilliseconds(250);
    private const int SamplesPerLine = 12;

    private readonly string _label;
    private readonly string _unit;
    private readonly long _total;
    private long _done;
    private long _calls;
    private long _callTicks;

    public ProgressMeter(string label, string unit, long total)
    {
        _label = label;
        _unit = unit;
        _total = total;
    }

    public long PeakWorkingSet { get; private set; }

    public long PeakManagedHeap { get; private set; }

    public void Add(long units, long callTicks)
    {
        Interlocked.Add(ref _done, units);
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _callTicks, callTicks);
    }

    /// <summary>Prints progress until <paramref name="stop"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var start = Stopwatch.GetTimestamp();
        var lastStamp = start;
        long lastDone = 0, lastCalls = 0, lastTicks = 0;
        using var timer = new PeriodicTimer(Sample);
        var tick = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                PeakWorkingSet = Math.Max(PeakWorkingSet, Environment.WorkingSet);
                PeakManagedHeap = Math.Max(PeakManagedHeap, GC.GetTotalMemory(forceFullCollection: false));
                if (++tick % SamplesPerLine != 0)
                {
                    continue;
                }

                var now = Stopwatch.GetTimestamp();
                var done = Interlocked.Read(ref _done);
                var calls = Interlocked.Read(ref _calls);
                var ticks = Interlocked.Read(ref _callTicks);
                var interval = Stopwatch.GetElapsedTime(lastStamp, now).TotalSeconds;
                var meanMs = calls > lastCalls ? Stopwatch.GetElapsedTime(0, (ticks - lastTicks) / (calls - lastCalls)).TotalMilliseconds : 0;
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"  [{_label}] {Stopwatch.GetElapsedTime(start, now).TotalSeconds,5:0}s  {done,11:N0} / {_total:N0} {_unit}  {(done - lastDone) / interval,8:N0} {_unit}/s now  mean call {meanMs,6:0.0} ms  working set {Environment.WorkingSet / 1048576.0,6:N0} MiB"));
                (lastStamp, lastDone, lastCalls, lastTicks) = (now, done, calls, ticks);
            }
        }
        catch (OperationCanceledException)
        {
            // The phase is over.
        }
    }
}
