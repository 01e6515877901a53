using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Reporting.Dashboard;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>What README.md, docs/api.md and scripts/run-local.sh name is what the code serves and configures.</summary>
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
}
