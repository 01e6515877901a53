using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Azure.Data.Tables;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Benchmarks;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Storage;

// Measures how the inactivity sweep and the daily rollup scale, against a real Azurite:
//   sweep:  fleets of N instances of which the same 1,000 went silent; time and storage requests per sweep.
//   rollup: a day with N active users; time and peak managed memory of computing it (DAU + day digest),
//           and the cost of MAU as a 30-day digest merge.
const string Usage = """
    Usage: scripts/benchmark-timers.sh [--sizes 10000,100000,1000000] [--only sweep|rollup|mau] [--storage <connection string>]
      --sizes LIST    fleet sizes and daily active users to measure (default 10000,100000,1000000; the largest
                      takes the longest: seeding writes two rows per instance)
      --only PART     measure one part: sweep, rollup or mau (default all three)
      --storage CS    a storage connection string instead of starting an in-memory Azurite
      -h, --help      this text
    """;
if (args.Any(a => a is "-h" or "--help"))
{
    Console.WriteLine(Usage);
    return 0;
}

int[] sizes;
try
{
    for (var i = 0; i < args.Length; i += 2)
    {
        if (args[i] is not ("--sizes" or "--storage" or "--only") || i + 1 >= args.Length)
        {
            throw new FormatException($"'{args[i]}' is not an option, or lacks its value");
        }
    }

    if (Option("--only") is { } part && part is not ("sweep" or "rollup" or "mau"))
    {
        throw new FormatException($"--only takes sweep, rollup or mau, not '{part}'");
    }

    sizes = Option("--sizes")?.Split(',').Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1_000 ? n : throw new FormatException($"'{s}' is not a size of at least 1000")).ToArray() ?? [10_000, 100_000, 1_000_000];
}
catch (FormatException e)
{
    Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
    return 2;
}

const int Silent = 1_000;
var now = new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

await using var azurite = Option("--storage") is { } external ? null : await Azurite.StartAsync(CancellationToken.None);
var connection = Option("--storage") ?? azurite!.ConnectionString;
Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; storage: {(azurite is null ? "given" : "Azurite (in memory), started by this run")}");

if (Measures("sweep"))
{
    Console.WriteLine();
    Console.WriteLine("Inactivity sweep: the same 1,000 instances went silent in fleets of different sizes");
    Console.WriteLine($"{"instances",10} {"seed s",8} {"examined",9} {"marked",7} {"sweep ms",9} {"storage requests",17}");
    foreach (var n in sizes)
    {
        var (services, counter, storage) = Build(connection, now);
        var seed = Stopwatch.StartNew();
        await SeedFleetAsync(storage, services.GetRequiredService<InactivityIndex>(), n, now);
        seed.Stop();
        var before = counter.Count;
        var clock = Stopwatch.StartNew();
        var result = await services.GetRequiredService<InactivitySweep>().RunAsync(CancellationToken.None);
        clock.Stop();
        Console.WriteLine($"{n,10:N0} {seed.Elapsed.TotalSeconds,8:F0} {result.Examined,9:N0} {result.MarkedInactive,7:N0} {clock.ElapsedMilliseconds,9:N0} {counter.Count - before,17:N0}");
    }
}

if (Measures("rollup"))
{
    Console.WriteLine();
    Console.WriteLine("Daily rollup of one day with N active users (the day's activity partition read once)");
    Console.WriteLine($"{"users",10} {"seed s",8} {"DAU",10} {"rollup s",9} {"peak MB",8} {"storage requests",17}");
    foreach (var n in sizes)
    {
        var (services, counter, storage) = Build(connection, now);
        var day = DateOnly.FromDateTime(now.UtcDateTime).AddDays(-1);
        var seed = Stopwatch.StartNew();
        await SeedActivityAsync(storage, day, n);
        seed.Stop();
        GC.Collect();
        var baseline = GC.GetTotalMemory(true);
        using var sampler = new PeakSampler();
        var before = counter.Count;
        var clock = Stopwatch.StartNew();
        var figures = await services.GetRequiredService<DailyRollup>().RunDayAsync(day, CancellationToken.None);
        clock.Stop();
        Console.WriteLine($"{n,10:N0} {seed.Elapsed.TotalSeconds,8:F0} {figures.Dau,10:N0} {clock.Elapsed.TotalSeconds,9:F1} {(sampler.Peak - baseline) / 1e6,8:F0} {counter.Count - before,17:N0}");
        if (figures.Dau != n)
        {
            Console.WriteLine($"  CHECK FAILED: DAU {figures.Dau}, expected {n}");
            return 1;
        }
    }
}

if (Measures("mau"))
{
    Console.WriteLine();
    Console.WriteLine("MAU by merging 30 day digests (each day: N users, 1/30 of them new every day)");
    Console.WriteLine($"{"users/day",10} {"MAU",10} {"merge s",8} {"peak MB",8} {"digest bytes read",18}");
    foreach (var n in sizes)
    {
        var (services, _, storage) = Build(connection, now);
        var last = DateOnly.FromDateTime(now.UtcDateTime).AddDays(-1);
        var digests = services.GetRequiredService<ActivityDigests>();
        var step = Math.Max(1, n / 30);
        for (var d = 0; d < 30; d++)
        {
            // Day d has users [d*step, d*step + n): consecutive days overlap, so MAU = n + 29*step exactly.
            await digests.BuildAsync(last.AddDays(d - 29), Enumerable.Range(d * step, n).Select(Key), CancellationToken.None);
        }

        GC.Collect();
        var baseline = GC.GetTotalMemory(true);
        using var sampler = new PeakSampler();
        var clock = Stopwatch.StartNew();
        var mau = await digests.CountDistinctAsync(Enumerable.Range(0, 30).Select(o => last.AddDays(-o)), CancellationToken.None);
        clock.Stop();
        var expected = n + (29 * step);
        Console.WriteLine($"{n,10:N0} {mau,10:N0} {clock.Elapsed.TotalSeconds,8:F1} {(sampler.Peak - baseline) / 1e6,8:F0} {30L * n * 16,18:N0}");
        if (mau != expected)
        {
            Console.WriteLine($"  CHECK FAILED: MAU {mau}, expected {expected}");
            return 1;
        }
    }
}

return 0;

static string Key(int i)
{
    Span<byte> bytes = stackalloc byte[16];
    BinaryPrimitives.WriteUInt128BigEndian(bytes, (UInt128)(uint)i * 0x9E3779B97F4A7C15UL);
    return Convert.ToHexStringLower(bytes);
}

static (ServiceProvider Services, StorageRequestCounter Counter, TelemetryStorage Storage) Build(string connection, DateTimeOffset now)
{
    var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Telemetry:Storage:ConnectionString"] = connection,
        ["Telemetry:Storage:TablePrefix"] = "b" + Guid.NewGuid().ToString("N")[..10],
        ["Telemetry:WriteKeys:0:Key"] = "benchmark-key",
        ["Telemetry:WriteKeys:0:Source"] = "server",
        ["Telemetry:Privacy:PseudonymizationKey"] = "benchmark-pseudonymization-key-not-a-secret",
    }).Build();
    var services = new ServiceCollection()
        .AddLogging(l => l.SetMinimumLevel(LogLevel.Warning))
        .AddSingleton<TimeProvider>(new FakeTimeProvider(now))
        .AddTelemetryFunctions(configuration)
        .BuildServiceProvider();
    return (services, services.GetRequiredService<StorageRequestCounter>(), services.GetRequiredService<TelemetryStorage>());
}

// N instances: the first 1,000 last seen 8 hours ago (silent), the rest within the last 6 hours, each with its deadline row.
static async Task SeedFleetAsync(TelemetryStorage storage, InactivityIndex index, int n, DateTimeOffset now)
{
    var instances = await storage.GetTableAsync(TableNames.Instances, CancellationToken.None);
    var deadlines = await storage.GetTableAsync(TableNames.InstanceDeadlines, CancellationToken.None);
    var rows = Enumerable.Range(0, n).Select(i =>
    {
        var key = Key(i);
        var lastSeen = i < Silent ? now.AddHours(-8).AddSeconds(-i) : now.AddHours(-6).AddSeconds((i % 21_000) + 60);
        return (key, lastSeen);
    }).ToList();
    await WriteAsync(instances, rows.Select(r => InstanceRegistry.ToEntity(new InstanceRecord(r.key, r.lastSeen, r.lastSeen, "1.0.0", "linux", null, null, r.lastSeen, InstanceRegistry.Active, r.lastSeen, "server", default))));
    await WriteAsync(deadlines, rows.Select(r => new TableEntity(InactivityIndex.Slot(index.DeadlineOf(r.lastSeen)), r.key) { ["Deadline"] = index.DeadlineOf(r.lastSeen), ["LastSeen"] = r.lastSeen }));
}

static async Task SeedActivityAsync(TelemetryStorage storage, DateOnly day, int n)
{
    var activity = await storage.GetTableAsync(TableNames.Activity, CancellationToken.None);
    await WriteAsync(activity, Enumerable.Range(0, n).Select(i => new TableEntity(TableKeys.Day(day), ActivityStore.UserPrefix + Key(i))
    {
        ["Source"] = "server",
        ["Version"] = "1." + (i % 5).ToString(CultureInfo.InvariantCulture),
        ["Os"] = (i % 3) switch { 0 => "linux", 1 => "windows", _ => "macos" },
    }));
}

// Seeding only: 100-entity transactions, 8 in flight.
static async Task WriteAsync(TableClient table, IEnumerable<TableEntity> entities)
{
    var chunks = entities.GroupBy(e => e.PartitionKey).SelectMany(g => g.Chunk(100)).ToList();
    await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (chunk, token) =>
        await table.SubmitTransactionAsync(chunk.Select(e => new TableTransactionAction(TableTransactionActionType.UpsertReplace, e)), token));
}

bool Measures(string part) => Option("--only") is not { } only || only == part;

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

/// <summary>Samples the managed heap every 5 ms and keeps the highest value seen.</summary>
internal sealed class PeakSampler : IDisposable
{
    private readonly Timer _timer;
    private long _peak;

    public PeakSampler()
    {
        _peak = GC.GetTotalMemory(false);
        _timer = new Timer(_ => Interlocked.Exchange(ref _peak, Math.Max(Interlocked.Read(ref _peak), GC.GetTotalMemory(false))), null, 0, 5);
    }

    public long Peak => Math.Max(Interlocked.Read(ref _peak), GC.GetTotalMemory(false));

    public void Dispose() => _timer.Dispose();
}
