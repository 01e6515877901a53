using System.Globalization;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>The command line of <c>scripts/load-test.sh ramp|soak</c>.</summary>
internal sealed record LoadOptions
{
    public const string Usage = """
        Drives the local host, started as its own process against its own in-memory Azurite, with Segment SDK-like
        clients sending POST /v1/batch (each client one request at a time; 429, 503 and lost connections retried after
        Retry-After with the same messageIds, up to 10 attempts), then checks that every acknowledged event is stored
        exactly once.

        Usage: scripts/load-test.sh ramp [options]
               scripts/load-test.sh soak [options]

          ramp              raise the number of concurrent clients step by step; per step: acknowledged events/s,
                            p50/p95/p99 latency, 429, 503 and error rates, host and storage CPU; then the step where
                            the storage ceiling is reached (the raw ceiling of the storage is measured first)
          soak              a steady load for a long time; host memory sampled throughout and checked to be flat

        Options (both):
          --batch N         events per request (default 100)
          --setting K=V     a setting for the host, e.g. --setting Telemetry:Ingestion:ClientEventsPerSecond=50000;
                            repeatable
          --storage CS      a storage connection string instead of starting Azurite (tables get a unique prefix and
                            are deleted at the end)
          -h, --help        this text
        ramp:
          --steps LIST      concurrent clients per step (default 1,2,4,8,16,32,64)
          --step-seconds N  length of each step (default 20)
        soak:
          --duration D      how long, e.g. 600s, 10m, 1h (default 10m)
          --clients N       concurrent clients (default 4)
          --rate N          events per second offered by all clients together; 0 sends as fast as answers come
                            (default 1000)
          --sample-seconds N  host memory sampled and a progress line printed this often (default 10)

        Exit code: 0 when every acknowledged event is stored exactly once, no request got a 500, and (soak) host
        memory stayed flat; 1 otherwise; 2 for a bad command line.
        """;

    public required string Mode { get; init; }

    public int Batch { get; init; } = 100;

    public IReadOnlyList<KeyValuePair<string, string>> Settings { get; init; } = [];

    public string? Storage { get; init; }

    public bool Help { get; init; }

    public IReadOnlyList<int> Steps { get; init; } = [1, 2, 4, 8, 16, 32, 64];

    public TimeSpan StepLength { get; init; } = TimeSpan.FromSeconds(20);

    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);

    public int Clients { get; init; } = 4;

    public int Rate { get; init; } = 1000;

    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(10);

    public static LoadOptions Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("ramp" or "soak"))
        {
            throw new ArgumentException("The first argument must be 'ramp' or 'soak'.");
        }

        var options = new LoadOptions { Mode = args[0] };
        for (var i = 1; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            int Number(string text, int min, int max) =>
                int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                    ? n
                    : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{text}'.");

            options = (name, options.Mode) switch
            {
                ("--batch", _) => options with { Batch = Number(Value(), 1, 2500) },
                ("--setting", _) => options with { Settings = [.. options.Settings, Setting(Value())] },
                ("--storage", _) => options with { Storage = Value() },
                ("-h" or "--help", _) => options with { Help = true },
                ("--steps", "ramp") => options with { Steps = Value().Split(',').Select(s => Number(s.Trim(), 1, 1024)).ToList() },
                ("--step-seconds", "ramp") => options with { StepLength = TimeSpan.FromSeconds(Number(Value(), 1, 3600)) },
                ("--duration", "soak") => options with { Duration = ParseDuration(name, Value()) },
                ("--clients", "soak") => options with { Clients = Number(Value(), 1, 1024) },
                ("--rate", "soak") => options with { Rate = Number(Value(), 0, 1_000_000) },
                ("--sample-seconds", "soak") => options with { SampleEvery = TimeSpan.FromSeconds(Number(Value(), 1, 600)) },
                _ => throw new ArgumentException($"Unknown option '{name}' for {options.Mode}."),
            };
        }

        if (options.Mode == "ramp" && options.Steps.Zip(options.Steps.Skip(1)).Any(p => p.Second <= p.First))
        {
            throw new ArgumentException("--steps must increase, e.g. 1,2,4,8.");
        }

        if (options.Mode == "soak" && options.Duration < TimeSpan.FromSeconds(20))
        {
            throw new ArgumentException("--duration must be at least 20s: the start is warm-up and memory is compared over the rest.");
        }

        return options;
    }

    private static KeyValuePair<string, string> Setting(string text)
    {
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        return equals > 0
            ? new(text[..equals], text[(equals + 1)..])
            : throw new ArgumentException($"--setting needs KEY=VALUE, not '{text}'.");
    }

    private static TimeSpan ParseDuration(string name, string text)
    {
        var unit = text.Length > 0 ? text[^1] : ' ';
        var seconds = unit switch { 's' => 1, 'm' => 60, 'h' => 3600, _ => 0 };
        return seconds > 0 && int.TryParse(text[..^1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 && n <= 24 * 3600 / seconds
            ? TimeSpan.FromSeconds(n * seconds)
            : throw new ArgumentException($"{name} must be a number followed by s, m or h (up to 24h), not '{text}'.");
    }
}
