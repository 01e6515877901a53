using System.Globalization;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Http;

namespace TelemetryFunctions.LocalHost.Admin;

/// <summary>
/// <c>dotnet TelemetryFunctions.LocalHost.dll rollup --from YYYY-MM-DD --to YYYY-MM-DD</c>: the backfill endpoint
/// as a command, printing each day as it is computed (for long ranges).
/// </summary>
internal static class RollupCommand
{
    public static bool Matches(string[] args) => args.Length > 0 && args[0] == "rollup";

    public static async Task<int> RunAsync(string[] args)
    {
        string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

        var builder = WebApplication.CreateBuilder();
        builder.Services.AddTelemetryFunctions(builder.Configuration);
        // The progress lines are the output; the rollup's own Information lines would repeat each day among them. A
        // filter rule, not SetMinimumLevel: the Logging:LogLevel:Default of appsettings.json is a rule too, and a rule
        // wins over the minimum level; of two rules for every category, the one added last applies.
        builder.Logging.AddFilter(level => level >= LogLevel.Warning);
        await using var app = builder.Build();

        var admin = app.Services.GetRequiredService<AdminEndpoints>();
        var (from, to, error) = admin.ParseRange(Option("--from"), Option("--to"));
        if (error is not null)
        {
            await Console.Error.WriteLineAsync($"error: {error.Reason}  (usage: rollup --from YYYY-MM-DD --to YYYY-MM-DD)");
            return 2;
        }

        var total = to.DayNumber - from.DayNumber + 1;
        var done = 0;
        var progress = new PrintedAsReported(day =>
        {
            done++;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{done}/{total}] {day.Day:yyyy-MM-dd}  DAU {day.Dau}  WAU {day.Wau}  MAU {day.Mau}  instances {day.ActiveInstances}  installs {day.InstallationsSucceeded}/{day.InstallationsStarted}"));
        });
        await app.Services.GetRequiredService<DailyRollup>().RunRangeAsync(from, to, progress, CancellationToken.None);
        Console.WriteLine($"Computed {total} days.");
        return 0;
    }

    /// <summary>
    /// Prints each day on the reporting thread, before the rollup moves on. <see cref="Progress{T}"/> would post each
    /// report to the thread pool (a console app has no synchronization context), so lines could come out of order.
    /// </summary>
    private sealed class PrintedAsReported(Action<DayFigures> print) : IProgress<DayFigures>
    {
        public void Report(DayFigures value) => print(value);
    }
}
