using System.Net.Http.Headers;
using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// The local host's real ASP.NET Core pipeline, in process, against the shared Azurite with a table prefix of its own.
/// Optionally with a fake clock, extra settings, a storage pipeline policy that injects faults, or a capture of its logs
/// (Warning and above, as the host is configured).
/// </summary>
public sealed class LocalHostFactory : WebApplicationFactory<Program>
{
    public const string WriteKey = "dev-write-key";
    public const string InstallerKey = "dev-installer-key";

    private readonly AzuriteFixture _azurite;
    private readonly Dictionary<string, string?> _settings;
    private readonly HttpPipelinePolicy? _storagePolicy;
    private readonly CapturedLogs? _logs;

    public LocalHostFactory(AzuriteFixture azurite, FakeTimeProvider? time = null, Dictionary<string, string?>? settings = null, HttpPipelinePolicy? storagePolicy = null, CapturedLogs? logs = null)
    {
        _azurite = azurite;
        Time = time;
        _settings = settings ?? [];
        _storagePolicy = storagePolicy;
        _logs = logs;
        Tables = new StorageProbe(azurite.ConnectionString, TablePrefix);
    }

    public string TablePrefix { get; } = AzuriteFixture.UniquePrefix();

    public FakeTimeProvider? Time { get; }

    public StorageProbe Tables { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Telemetry:Storage:ConnectionString", _azurite.ConnectionString);
        builder.UseSetting("Telemetry:Storage:TablePrefix", TablePrefix);
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.UseSetting("TelemetryDisableTimers", "true");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        if (_logs is not null)
        {
            builder.ConfigureLogging(logging => logging.AddProvider(_logs));
        }

        builder.ConfigureServices(services =>
        {
            if (Time is not null)
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(Time);
            }

            if (_storagePolicy is not null)
            {
                services.AddSingleton(new StoragePipelinePolicy(_storagePolicy, HttpPipelinePosition.PerRetry));
            }
        });
    }

    /// <summary>A client that authenticates like a Segment SDK: HTTP Basic, write key as user name, empty password.</summary>
    public HttpClient CreateSegmentClient(string writeKey = WriteKey)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        return client;
    }
}
