using System.Globalization;
using TelemetryFunctions.Benchmarks;
using TelemetryFunctions.Benchmarks.Load;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

// scripts/load-test.sh ramp|soak, or else scripts/benchmark.sh (the ingestion benchmark).
Func<Task<int>> run;
try
{
    if (args.Length > 0 && args[0] is "ramp" or "soak")
    {
        var options = LoadOptions.Parse(args);
        run = options.Help ? () => Help(LoadOptions.Usage)
            : options.Mode == "ramp" ? () => Ramp.RunAsync(options, cancel.Token)
            : () => Soak.RunAsync(options, cancel.Token);
    }
    else
    {
        var options = BenchmarkOptions.Parse(args);
        run = options.Help ? () => Help(BenchmarkOptions.Usage) : () => new Benchmark(options).RunAsync(cancel.Token);
    }
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message} (see --help)");
    return 2;
}

return await run();

static Task<int> Help(string usage)
{
    Console.WriteLine(usage);
    return Task.FromResult(0);
}
