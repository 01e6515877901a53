using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Reporting.Dashboard;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.Http;

/// <summary>What README.md, docs/api.md, docs/usage-reports.md and scripts/run-local.sh name is what the code serves and configures.</summary>
public sealed class DocsTests(AzuriteFixture azurite)
{
    private static string Read(params string[] path) => File.ReadAllText(Path.Combine([RepositoryPaths.Root, .. path]));

    /// <summary>docs/api.md up to its first section: the intro and the table of every route.</summary>
    private static string ApiRouteTable()
    {
        var api = Read("docs", "api.md");
        return api[..api.IndexOf("\n## ", StringComparison.Ordinal)];
    }

    [Fact]
    public async Task Every_route_the_local_host_serves_is_in_the_route_table_of_the_api_docs()
    {
        await using var host = new LocalHostFactory(azurite);
        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/'))
            .Distinct()
            .ToList();
        var table = ApiRouteTable();

        Assert.Contains("/health", routes);
        var missing = routes.Where(r => !table.Contains($"`{r}`", StringComparison.Ordinal) && !table.Contains($"`{r}?", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "Routes missing from the table at the top of docs/api.md: " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_security_scheme_of_the_openapi_document_is_named_in_the_api_docs()
    {
        var document = JsonNode.Parse(Read("src", "TelemetryFunctions.Core", "Reporting", "openapi.json"))!;
        var schemes = document["components"]!["securitySchemes"]!.AsObject().Select(s => s.Key).ToList();
        var api = Read("docs", "api.md");

        Assert.NotEmpty(schemes);
        Assert.All(schemes, s => Assert.True(api.Contains($"`{s}`", StringComparison.Ordinal), $"docs/api.md does not name the security scheme {s}."));
    }

    [Fact]
    public async Task The_openapi_document_declares_the_content_type_of_every_dashboard_file()
    {
        var document = JsonNode.Parse(Read("src", "TelemetryFunctions.Core", "Reporting", "openapi.json"))!;
        var declared = (document["paths"]!["/dashboard/{file}"]!["get"]!["responses"]!["200"]!["content"] as JsonObject)?.Select(c => c.Key).ToHashSet() ?? [];
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateClient();

        foreach (var file in host.Services.GetRequiredService<DashboardEndpoints>().Files)
        {
            using var response = await client.GetAsync("/dashboard/" + file, TestContext.Current.CancellationToken);
            var type = response.Content.Headers.ContentType?.MediaType;
            Assert.True(type is not null && declared.Contains(type), $"/dashboard/{file} is served as {type}, which openapi.json does not declare.");
        }
    }

    [Fact]
    public void Every_local_key_is_in_the_readme_key_table_and_the_banner_of_run_local()
    {
        using var settings = JsonDocument.Parse(Read("src", "TelemetryFunctions.LocalHost", "appsettings.json"));
        var telemetry = settings.RootElement.GetProperty("Telemetry");
        var keys = telemetry.GetProperty("WriteKeys").EnumerateArray().Select(k => k.GetProperty("Key").GetString()!)
            .Append(telemetry.GetProperty("AdminKey").GetString()!)
            .Concat(telemetry.GetProperty("UsageReports").GetProperty("Customers").EnumerateArray().Select(c => c.GetProperty("ReportKey").GetString()!))
            .ToList();
        var readme = Read("README.md");
        var keyTable = readme[readme.IndexOf("| Key | Value | Use |", StringComparison.Ordinal)..readme.IndexOf("Send an event", StringComparison.Ordinal)];
        var banner = Read("scripts", "run-local.sh");
        banner = banner[banner.IndexOf("cat <<INFO", StringComparison.Ordinal)..];

        Assert.Equal(5, keys.Count);
        Assert.All(keys, key =>
        {
            Assert.True(keyTable.Contains($"`{key}`", StringComparison.Ordinal), $"The key table of README.md does not list {key}.");
            Assert.True(banner.Contains(key, StringComparison.Ordinal), $"The banner of scripts/run-local.sh does not print {key}.");
        });
    }

    [Fact]
    public void Every_table_and_container_of_the_library_is_named_in_the_storage_docs_and_the_deploy_guide()
    {
        var storageDocs = Read("docs", "storage.md");
        var deploy = Read("docs", "deploy.md");
        var storageRow = deploy.Split('\n').Single(line => line.StartsWith("| Storage account", StringComparison.Ordinal));
        var options = new TelemetryFunctions.UsageReports.UsageReportOptions();
        var containers = new[] { options.Container, options.QuarantineContainer, TelemetryFunctions.Storage.TableNames.ActivityDigestsContainer };

        Assert.All(TelemetryFunctions.Storage.TableNames.All, table =>
        {
            Assert.True(storageDocs.Contains($"`{table}`", StringComparison.Ordinal), $"docs/storage.md does not describe the table {table}.");
            Assert.True(storageRow.Contains($"`{table}`", StringComparison.Ordinal), $"The storage account row of docs/deploy.md does not list the table {table}.");
        });
        Assert.All(containers, container =>
            Assert.True(storageRow.Contains($"`{container}`", StringComparison.Ordinal), $"The storage account row of docs/deploy.md does not list the container {container}."));
    }

    [Fact]
    public void Every_option_is_in_the_configuration_tables_of_the_readme_with_its_default()
    {
        var readme = Read("README.md");
        var start = readme.IndexOf("\n## Configuration", StringComparison.Ordinal);
        var rows = ConfigurationRows(readme[start..readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal)], "");
        var options = new TelemetryOptions();
        var sections = new (string Prefix, object Section)[]
        {
            ("Telemetry__", options), ("Telemetry__Storage__", options.Storage), ("Telemetry__Ingestion__", options.Ingestion),
            ("Telemetry__Privacy__", options.Privacy), ("Telemetry__Events__", options.Events), ("Telemetry__Activity__", options.Activity),
            ("Telemetry__Reporting__", new ReportingOptions()),
        };

        var problems = sections.SelectMany(s => ProblemsOf(s.Section, s.Prefix, rows, "README.md")).ToList();

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Every_usage_report_option_is_in_the_configuration_table_of_the_usage_report_docs_with_its_default()
    {
        var docs = Read("docs", "usage-reports.md");
        var start = docs.IndexOf("\n## Configuration", StringComparison.Ordinal);
        var rows = ConfigurationRows(docs[start..docs.IndexOf("\n## ", start + 1, StringComparison.Ordinal)], "Telemetry__UsageReports__");

        var problems = ProblemsOf(new UsageReportOptions(), "Telemetry__UsageReports__", rows, "docs/usage-reports.md").ToList();

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    /// <summary>Each table row: the setting names of its first cell (with <paramref name="prefix"/> before the names given without it, and a
    /// name that starts with <c>__</c> completing the first one's section), and the text of its default cell.</summary>
    private static List<(List<string> Names, string Default)> ConfigurationRows(string section, string prefix) =>
        section.Split('\n')
            .Where(line => line.StartsWith("| `", StringComparison.Ordinal))
            .Select(line =>
            {
                var cells = line.Split('|');
                var names = cells[1].Split('`').Where((_, i) => i % 2 == 1).ToList();
                var first = names[0].StartsWith("Telemetry__", StringComparison.Ordinal) ? names[0] : prefix + names[0];
                var sectionOfFirst = first[..(first.IndexOf("__", "Telemetry__".Length, StringComparison.Ordinal) is var end and > 0 ? end : first.Length)];
                var full = names.Select((n, i) => i == 0 ? first : n.StartsWith("__", StringComparison.Ordinal) ? sectionOfFirst + n : n.StartsWith("Telemetry__", StringComparison.Ordinal) ? n : prefix + n).ToList();
                return (full, cells[2].Trim());
            })
            .ToList();

    /// <summary>
    /// What the docs get wrong about the options of <paramref name="section"/>: a setting no row names, or a scalar
    /// default that is not the one given in its row (rows that name several settings give their defaults in the same
    /// order, separated by <c>, </c> or <c> / </c>).
    /// </summary>
    private static IEnumerable<string> ProblemsOf(object section, string prefix, List<(List<string> Names, string Default)> rows, string document)
    {
        var nested = new[] { typeof(StorageOptions), typeof(IngestionOptions), typeof(PrivacyOptions), typeof(EventNamesOptions), typeof(ActivityOptions) };
        foreach (var property in section.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && !nested.Contains(p.PropertyType)))
        {
            var name = prefix + property.Name;
            var row = rows.FirstOrDefault(r => r.Names.Any(n => n == name || n.StartsWith(name + "__", StringComparison.Ordinal)));
            if (row.Names is null)
            {
                yield return $"{document} does not name the setting {name}.";
                continue;
            }

            var value = property.GetValue(section);
            if (value is null || value is string { Length: 0 } || (value is IEnumerable && value is not string))
            {
                continue;
            }

            var defaults = row.Default.Split([", ", " / "], StringSplitOptions.None);
            var index = row.Names.FindIndex(n => n == name || n.StartsWith(name + "__", StringComparison.Ordinal));
            var given = defaults.Length == row.Names.Count ? defaults[index].Trim('`', ' ') : row.Default;
            var expected = WaysToWrite(value);
            if (defaults.Length == row.Names.Count ? !expected.Contains(given) : !expected.Any(e => MentionsAsWhole(given, e)))
            {
                yield return $"{document} gives the default of {name} as '{given}'; it is {expected[0]}.";
            }
        }
    }

    /// <summary>
    /// True when <paramref name="text"/> holds <paramref name="value"/> as a whole: not inside a longer number or word
    /// (a default of 5 is not found in "50", nor 1.5 in "11.5", nor true in "untrue").
    /// </summary>
    private static bool MentionsAsWhole(string text, string value) =>
        Regex.IsMatch(text, $@"(?<![\w.]){Regex.Escape(value)}(?![\w]|\.\d)", RegexOptions.CultureInvariant);

    /// <summary>How the docs may write a default: numbers with or without thousands separators, sizes in MB, spans in words.</summary>
    private static List<string> WaysToWrite(object value) => value switch
    {
        int or long => [.. new[] { Convert.ToInt64(value, CultureInfo.InvariantCulture) }.SelectMany(n => new[] { n.ToString(CultureInfo.InvariantCulture), n.ToString("N0", CultureInfo.InvariantCulture) }.Concat(n % (1024 * 1024) == 0 ? [$"{n / (1024 * 1024)} MB"] : []))],
        TimeSpan span => Words(span),
        bool flag => [flag ? "true" : "false"],
        _ => [Convert.ToString(value, CultureInfo.InvariantCulture)!],
    };

    /// <summary>The span in whole days, hours, minutes or seconds, whichever are whole: 24 hours is also 1 day.</summary>
    private static List<string> Words(TimeSpan span) =>
        new (double Count, string Unit)[] { (span.TotalDays, "day"), (span.TotalHours, "hour"), (span.TotalMinutes, "minute"), (span.TotalSeconds, "second") }
            .Where(w => w.Count >= 1 && w.Count % 1 == 0)
            .Select(w => string.Create(CultureInfo.InvariantCulture, $"{w.Count} {w.Unit}{(w.Count == 1 ? "" : "s")}"))
            .ToList();
}
