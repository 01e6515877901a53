using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Http;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// The Azure Functions app cannot be run here (no Functions host), so its function attributes are read from its source and compared
/// with what the local host actually serves and schedules: the two hosts must expose the same routes and timers.
/// </summary>
public sealed partial class HostParityTests(AzuriteFixture azurite)
{
    /// <summary>Routes only the local host serves (a landing page and a health probe Azure provides itself).</summary>
    private static readonly HashSet<string> LocalHostOnly = ["GET /", "HEAD /", "GET /health", "HEAD /health"];

    private static string FunctionsSource() =>
        string.Join('\n', Directory.EnumerateFiles(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText));

    [Fact]
    public async Task The_functions_app_and_the_local_host_serve_the_same_routes_with_the_same_methods()
    {
        var constants = typeof(TelemetryRoutes).GetFields().ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);
        var functionRoutes = HttpTrigger().Matches(FunctionsSource())
            .SelectMany(m => Methods(m).Select(method => $"{method.ToUpperInvariant()} /{constants[m.Groups["route"].Value]}"))
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
    public void The_sample_settings_of_the_functions_app_hold_every_telemetry_setting_of_the_local_host()
    {
        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "local.settings.sample.json")));
        using var local = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.LocalHost", "appsettings.json")));
        var values = sample.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        var settings = new Dictionary<string, string>();
        Flatten(local.RootElement.GetProperty("Telemetry"), "Telemetry", settings);

        var missing = settings.Where(s => values.GetValueOrDefault(s.Key) != s.Value).Select(s => $"{s.Key}={s.Value}").ToList();

        Assert.True(missing.Count == 0, "local.settings.sample.json lacks these settings of the local host's appsettings.json: " + string.Join(", ", missing));
    }

    /// <summary>A configuration section as app settings: <c>Section__Key</c>, list entries by index.</summary>
    private static void Flatten(JsonElement element, string path, Dictionary<string, string> settings)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Flatten(property.Value, path + "__" + property.Name, settings);
                }

                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Flatten(item, path + "__" + index++.ToString(System.Globalization.CultureInfo.InvariantCulture), settings);
                }

                break;
            default:
                settings[path] = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
                break;
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

    [Fact]
    public void The_platforms_http_concurrency_per_instance_in_the_bicep_template_equals_host_json_maxConcurrentRequests()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")));
        var hostLimit = hostJson.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("maxConcurrentRequests").GetInt32();
        var infra = Path.Combine(RepositoryPaths.Root, "infra-bicep");
        var module = File.ReadAllText(Path.Combine(infra, "modules", "functionApp.bicep"));
        var main = File.ReadAllText(Path.Combine(infra, "main.bicep"));
        var parameters = File.ReadAllText(Path.Combine(infra, "main.bicepparam"));

        // Both templates declare the parameter with the host's limit as default and as the highest value they accept:
        // a higher platform concurrency would hand an instance requests its host only queues (and refuses with 429).
        foreach (var (file, text) in new[] { ("modules/functionApp.bicep", module), ("main.bicep", main) })
        {
            var declaration = BicepHttpConcurrencyParameter().Match(text);
            Assert.True(declaration.Success, $"{file} declares httpPerInstanceConcurrency with @minValue, @maxValue and a default.");
            Assert.Equal(1, int.Parse(declaration.Groups["min"].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(hostLimit, int.Parse(declaration.Groups["max"].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(hostLimit, int.Parse(declaration.Groups["default"].Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        var value = BicepParamHttpConcurrency().Match(parameters);
        Assert.True(value.Success, "main.bicepparam sets httpPerInstanceConcurrency.");
        Assert.Equal(hostLimit, int.Parse(value.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture));

        // The parameter reaches the site as functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency.
        Assert.Matches(@"scaleAndConcurrency:\s*\{[^}]*triggers:\s*\{\s*http:\s*\{\s*perInstanceConcurrency:\s*httpPerInstanceConcurrency\s*\}", module);
        Assert.Matches(@"httpPerInstanceConcurrency:\s*httpPerInstanceConcurrency\b", main);
    }

    [Fact]
    public async Task Each_route_needs_a_functions_key_in_azure_exactly_where_the_local_host_requires_the_admin_key()
    {
        var constants = typeof(TelemetryRoutes).GetFields().ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);
        var triggers = HttpTrigger().Matches(FunctionsSource()).ToList();
        await using var host = new LocalHostFactory(azurite);
        using var client = host.CreateClient();

        Assert.NotEmpty(triggers);
        foreach (var trigger in triggers)
        {
            // Route parameters get a harmless value; no key is sent, so the admin-key filter answers before any handler.
            // The key is required per function, whatever its method: the first one listed is sent (HEAD would carry no body).
            var path = "/" + RouteParameter().Replace(constants[trigger.Groups["route"].Value], "x");
            var method = Methods(trigger)[0];
            using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), path)
            {
                Content = method == "post" ? new StringContent("{}", System.Text.Encoding.UTF8, "application/json") : null,
            };
            using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            var localNeedsAdminKey = response.StatusCode == HttpStatusCode.Unauthorized && body.Contains("The admin key is required", StringComparison.Ordinal);
            var level = trigger.Groups["level"].Value;

            Assert.True(
                localNeedsAdminKey == level is "Function" or "Admin",
                $"{path}: AuthorizationLevel.{level} in the Functions app, but the local host {(localNeedsAdminKey ? "requires" : "does not require")} the admin key.");
        }
    }

    [Fact]
    public void The_blob_trigger_watches_the_usage_report_container_of_the_library_and_of_the_bicep_template()
    {
        var trigger = Assert.Single(BlobTrigger().Matches(FunctionsSource()));
        var container = trigger.Groups["container"].Value;
        var main = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra-bicep", "main.bicep"));

        Assert.Equal(new UsageReportOptions().Container, container);
        Assert.Equal(container, BicepUsageReportContainer().Match(main).Groups["container"].Value);
        Assert.Matches(@"containerNames:\s*\[[^\]]*\bcontainers\.usageReports\s", main);
    }

    [Fact]
    public void The_bicep_template_creates_every_table_and_container_the_library_uses()
    {
        var main = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra-bicep", "main.bicep"));
        var tables = BicepTables().Match(main);
        var containers = BicepContainers().Match(main);

        Assert.True(tables.Success, "main.bicep declares var tables = [ ... ].");
        Assert.True(containers.Success, "main.bicep declares var containers = { ... }.");
        Assert.Equal(
            TelemetryFunctions.Storage.TableNames.All.Order(StringComparer.Ordinal),
            BicepQuoted().Matches(tables.Groups["body"].Value).Select(m => m.Groups["value"].Value).Order(StringComparer.Ordinal));
        var containerNames = BicepQuoted().Matches(containers.Groups["body"].Value).Select(m => m.Groups["value"].Value).ToHashSet(StringComparer.Ordinal);
        var options = new UsageReportOptions();
        Assert.Contains(options.Container, containerNames);
        Assert.Contains(options.QuarantineContainer, containerNames);
        Assert.Contains(TelemetryFunctions.Storage.TableNames.ActivityDigestsContainer, containerNames);
    }

    [Fact]
    public void The_functions_worker_keeps_the_noisy_log_categories_at_warning_as_the_local_host_does()
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.LocalHost", "appsettings.json")));
        var program = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions", "Program.cs"));
        var warningCategories = settings.RootElement.GetProperty("Logging").GetProperty("LogLevel").EnumerateObject()
            .Where(c => c.Name != "Default" && c.Value.GetString() == "Warning")
            .Select(c => c.Name)
            .ToList();

        Assert.NotEmpty(warningCategories);
        Assert.All(warningCategories, category =>
            Assert.Contains($"builder.Logging.AddFilter(\"{category}\", LogLevel.Warning);", program, StringComparison.Ordinal));
        Assert.Contains("builder.Logging.KeepRequestUrlsOutOfLogs();", program, StringComparison.Ordinal);
    }

    [Fact]
    public void The_functions_worker_samples_its_telemetry_as_host_json_samples_the_hosts_and_never_exceptions()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")));
        var sampling = hostJson.RootElement.GetProperty("logging").GetProperty("applicationInsights").GetProperty("samplingSettings");
        var program = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions", "Program.cs"));
        var worker = WorkerSampling().Match(program);

        Assert.True(worker.Success, "Program.cs configures the worker's adaptive sampling.");
        Assert.Contains("options.EnableAdaptiveSampling = false", program, StringComparison.Ordinal);
        Assert.Equal(sampling.GetProperty("maxTelemetryItemsPerSecond").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), worker.Groups["max"].Value);
        Assert.Equal(sampling.GetProperty("excludedTypes").GetString(), worker.Groups["excluded"].Value);
        Assert.Contains("Exception", worker.Groups["excluded"].Value.Split(';'));
    }

    [Fact]
    public void The_functions_app_answers_unhandled_http_failures_from_inside_the_aspnet_core_integration()
    {
        var program = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions", "Program.cs"));
        var integration = program.IndexOf("builder.ConfigureFunctionsWebApplication();", StringComparison.Ordinal);
        var middleware = program.IndexOf("builder.UseMiddleware<UnhandledHttpFailureMiddleware>();", StringComparison.Ordinal);

        Assert.True(integration >= 0 && middleware > integration, "UseMiddleware<UnhandledHttpFailureMiddleware>() comes after ConfigureFunctionsWebApplication().");
    }

    /// <summary>The methods an HttpTrigger lists, in its order, as written (lower case).</summary>
    private static List<string> Methods(Match trigger) =>
        [.. Quoted().Matches(trigger.Groups["methods"].Value).Select(m => m.Groups["value"].Value)];

    [GeneratedRegex(@"HttpTrigger\(\s*AuthorizationLevel\.(?<level>\w+)\s*,\s*(?<methods>""\w+""(?:\s*,\s*""\w+"")*)\s*,\s*Route\s*=\s*TelemetryRoutes\.(?<route>\w+)\s*\)")]
    private static partial Regex HttpTrigger();

    [GeneratedRegex(@"""(?<value>\w+)""")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"WatchedContainer = ""(?<container>[a-z0-9-]+)"";[\s\S]*BlobTrigger\(WatchedContainer \+ ""/\{name\}""")]
    private static partial Regex BlobTrigger();

    [GeneratedRegex(@"^\s*usageReports:\s*'(?<container>[a-z0-9-]+)'", RegexOptions.Multiline)]
    private static partial Regex BicepUsageReportContainer();

    [GeneratedRegex(@"^var tables = \[(?<body>[^\]]*)\]", RegexOptions.Multiline)]
    private static partial Regex BicepTables();

    [GeneratedRegex(@"^var containers = \{(?<body>[^}]*)\}", RegexOptions.Multiline)]
    private static partial Regex BicepContainers();

    [GeneratedRegex(@"'(?<value>[^']+)'")]
    private static partial Regex BicepQuoted();

    [GeneratedRegex(@"@minValue\((?<min>\d+)\)\s*@maxValue\((?<max>\d+)\)\s*param httpPerInstanceConcurrency int = (?<default>\d+)")]
    private static partial Regex BicepHttpConcurrencyParameter();

    [GeneratedRegex(@"^param httpPerInstanceConcurrency = (?<value>\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex BicepParamHttpConcurrency();

    [GeneratedRegex(@"UseAdaptiveSampling\(maxTelemetryItemsPerSecond:\s*(?<max>\d+),\s*excludedTypes:\s*""(?<excluded>[^""]+)""\)")]
    private static partial Regex WorkerSampling();

    [GeneratedRegex(@"\{\w+\}")]
    private static partial Regex RouteParameter();

    [GeneratedRegex(@"TimerTrigger\(""%(?<setting>\w+)%""[^)]*\)")]
    private static partial Regex TimerTrigger();
}
