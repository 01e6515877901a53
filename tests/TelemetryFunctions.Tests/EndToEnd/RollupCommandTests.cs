using System.Globalization;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// <c>dotnet TelemetryFunctions.LocalHost.dll rollup --from --to</c> as docs/timers.md runs it: from the build output,
/// with its appsettings.json, against real storage.
/// </summary>
public sealed class RollupCommandTests(AzuriteFixture azurite)
{
    private Task<CommandResult> RollupAsync(DateOnly from, DateOnly to) =>
        ExternalCommand.RunAsync(
            LocalHostProcess.DotnetHost(),
            [Path.Combine(LocalHostProcess.OutputDirectory, "TelemetryFunctions.LocalHost.dll"), "rollup", "--from", Day(from), "--to", Day(to)],
            LocalHostProcess.OutputDirectory,
            new Dictionary<string, string?>
            {
                ["Telemetry__Storage__ConnectionString"] = azurite.ConnectionString,
                ["Telemetry__Storage__TablePrefix"] = AzuriteFixture.UniquePrefix(),
            },
            TimeSpan.FromSeconds(60),
            TestContext.Current.CancellationToken);

    private static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    [Fact]
    public async Task The_command_prints_one_progress_line_per_day_and_no_log_lines()
    {
        var today = DateOnly.FromDateTime(DateTime.UtcNow);

        var result = await RollupAsync(today.AddDays(-3), today.AddDays(-1));

        Assert.True(result.ExitCode == 0, result.Describe());
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(
            [
                $"[1/3] {Day(today.AddDays(-3))}  DAU 0  WAU 0  MAU 0  instances 0  installs 0/0",
                $"[2/3] {Day(today.AddDays(-2))}  DAU 0  WAU 0  MAU 0  instances 0  installs 0/0",
                $"[3/3] {Day(today.AddDays(-1))}  DAU 0  WAU 0  MAU 0  instances 0  installs 0/0",
                "Computed 3 days.",
            ],
            lines);
        Assert.True(result.StandardError.Length == 0, result.Describe());
    }

    [Fact]
    public async Task A_range_reaching_past_the_activity_retention_exits_2_naming_the_first_day_it_may_start()
    {
        var today = DateOnly.FromDateTime(DateTime.UtcNow);

        var result = await RollupAsync(today.AddDays(-61), today.AddDays(-1));

        Assert.True(result.ExitCode == 2, result.Describe());
        Assert.StartsWith($"error: from must be {Day(today.AddDays(-60))} or later", result.StandardError, StringComparison.Ordinal);
        Assert.Empty(result.StandardOutput);
    }
}
