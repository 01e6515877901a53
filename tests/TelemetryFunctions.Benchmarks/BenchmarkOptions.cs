using System.Globalization;

namespace TelemetryFunctions.Benchmarks;

/// <summary>The command line of the benchmark.</summary>
internal sealed record BenchmarkOptions
{
    public const string Usage = """
        Measures ingestion in one run against one storage: the storage's own ceiling (Azure.Data.Tables batch
        transactions, no host) and the local host on Kestrel driven with POST /v1/batch, alternating in rounds.

        Usage: scripts/benchmark.sh [options]

          --events N      events sent to the host while measuring, and entities written for the ceiling (default 100000)
          --clients N     concurrent HTTP clients; also the transactions in flight for the ceiling (default 8)
          --batch N       events per POST /v1/batch; the ceiling writes min(N, 100) entities per transaction (default 100)
          --rounds N      the measurement alternates ceiling and host in N rounds, so both see the same machine
                          load and table sizes (default 4)
          --warmup N      events sent to the host, and entities written for the ceiling, before measuring; not
                          counted (default 10000, more if needed for every instance to send a batch first)
          --instances N   product-server instances the events come from (default 50)
          --users N       user ids the events are drawn from (default 20000)
          --storage-delay MS
                          wait MS milliseconds before every storage request, of the ceiling and of the host alike,
                          to model a storage service that is not on this machine (default 0)
          --storage CS    a storage connection string to use instead of starting Azurite (tables get a unique prefix
                          and are deleted at the end)
          -h, --help      this text

        Exit code: 0 when every event sent is stored exactly once (a missed performance target is reported, not
        failed); 1 when the stored-count check fails; 2 for a bad command line.
        """;

    public int Events { get; init; } = 100_000;

    public int Clients { get; init; } = 8;

    public int Batch { get; init; } = 100;

    public int? Warmup { get; init; }

    public int Rounds { get; init; } = 4;

    public int Instances { get; init; } = 50;

    public int Users { get; init; } = 20_000;

    public string? Storage { get; init; }

    public int StorageDelayMs { get; init; }

    public bool Help { get; init; }

    /// <summary>By default enough for JIT in both processes to settle, and for every instance to have sent a batch.</summary>
    public int WarmupEvents => Warmup ?? Math.Max(10_000, Clients * Batch * ((Instances + Clients - 1) / Clients));

    public int CeilingBatch => Math.Min(Batch, 100);

    public static BenchmarkOptions Parse(string[] args)
    {
        var options = new BenchmarkOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            int Number(int min, int max)
            {
                var text = Value();
                return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                    ? n
                    : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{text}'.");
            }

            options = name switch
            {
                "--events" => options with { Events = Number(1, 100_000_000) },
                "--clients" => options with { Clients = Number(1, 1024) },
                "--batch" => options with { Batch = Number(1, 2500) },
                "--rounds" => options with { Rounds = Number(1, 1000) },
                "--warmup" => options with { Warmup = Number(0, 100_000_000) },
                "--instances" => options with { Instances = Number(1, 1_000_000) },
                "--users" => options with { Users = Number(1, 100_000_000) },
                "--storage" => options with { Storage = Value() },
                "--storage-delay" => options with { StorageDelayMs = Number(0, 1000) },
                "-h" or "--help" => options with { Help = true },
                _ => throw new ArgumentException($"Unknown option '{name}'."),
            };
        }

        if (options.Rounds > options.Events)
        {
            throw new ArgumentException("--rounds must not exceed --events.");
        }

        if (options.Instances < options.Clients)
        {
            throw new ArgumentException("--instances must be at least --clients: each client poses as instances of its own.");
        }

        if (options.Users < options.Instances)
        {
            throw new ArgumentException("--users must be at least --instances: every instance has users of its own.");
        }

        return options;
    }
}
