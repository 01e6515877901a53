using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Http;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// The Azure Functions app cannot be compiled here, so its function attributes are read from its source and compared
/// with what the local host actually serves and schedules: the two hosts must expose the same routes and timers.
/// </summary>
public sealed partial class HostParityTests(AzuriteFixture azurite)
{
    /// <summary>Routes only the local host serves (a landing page and a health probe Azure provides itself).</summary>
    private static readonly HashSet<string> LocalHostOnly = ["GET /", "GET /health"];

    private static string FunctionsSource() =>
        string.Join('\n', Directory.EnumerateFiles(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText));

    [Fact]
    public async Task The_functions_app_and_the_local_host_serve_the_same_routes_with_the_same_methods()
    {
        var constants = typeof(TelemetryRoutes).GetFields().ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);
        var functionRoutes = HttpTrigger().Matches(FunctionsSource())
            .Select(m => $"{m.Groups["method"].Value.ToUpperInvariant()} /{constants[m.Groups["route"].Value]}")
            .ToHashSet();

        await using var host = new LocalHostFactory(azurite);
        var localRoutes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["ANY"]).Select(method => $"{method} /{e.RoutePattern.RawText!.TrimStart('/')}"))
            .Where(r => !LocalHostOnly.Contains(r))
            .ToHashSet();

        Assert.NotEmpty(functionRoutes);
        Assert.Equal(localRoutes.Order(StringComparer.Ordinal), functionRoutes.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_functions_app_has_a_timer_for_every_schedule_the_local_host_runs_with_monitoring_and_no_start_up_run()
    {
        var timers = TimerTrigger().Matches(FunctionsSource()).ToList();

        Assert.Equal(
            TelemetrySchedules.All.Select(s => s.SettingName).Order(StringComparer.Ordinal),
            timers.Select(t => t.Groups["setting"].Value).Order(StringComparer.Ordinal));
        Assert.All(timers, t =>
        {
            Assert.Contains("RunOnStartup = false", t.Value, StringComparison.Ordinal);
            Assert.Contains("UseMonitor = true", t.Value, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Every_schedule_setting_is_in_the_sample_settings_and_the_local_host_defaults()
    {
        var sample = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "local.settings.sample.json"));
        var local = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.LocalHost", "appsettings.json"));
        var bicep = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra-bicep", "modules", "functionApp.bicep"));

        foreach (var schedule in TelemetrySchedules.All)
        {
            Assert.Contains($"\"{schedule.SettingName}\": \"{schedule.DefaultExpression}\"", sample, StringComparison.Ordinal);
            Assert.Contains($"\"{schedule.SettingName}\": \"{schedule.DefaultExpression}\"", local, StringComparison.Ordinal);
            Assert.Contains(schedule.SettingName, bicep, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_local_host_caps_requests_in_progress_as_host_json_does_in_azure()
    {
        using var hostJson = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")));
        var http = hostJson.RootElement.GetProperty("extensions").GetProperty("http");
        var local = new TelemetryFunctions.LocalHost.RequestConcurrencyOptions();

        Assert.Equal(http.GetProperty("maxConcurrentRequests").GetInt32(), local.MaxConcurrentRequests);
        Assert.Equal(http.GetProperty("maxOutstandingRequests").GetInt32(), local.MaxOutstandingRequests);
    }

    [GeneratedRegex(@"HttpTrigger\(\s*AuthorizationLevel\.\w+\s*,\s*""(?<method>\w+)""\s*,\s*Route\s*=\s*TelemetryRoutes\.(?<route>\w+)\s*\)")]
    private static partial Regex HttpTrigger();

    [GeneratedRegex(@"TimerTrigger\(""%(?<setting>\w+)%""[^)]*\)")]
    private static partial Regex TimerTrigger();
}
