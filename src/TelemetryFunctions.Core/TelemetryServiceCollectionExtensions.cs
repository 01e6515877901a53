using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace Microsoft.Extensions.DependencyInjection;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Registers everything TelemetryFunctions does, for either host. Options come from the <c>Telemetry</c> section
    /// (app settings / environment variables <c>Telemetry__...</c>) and are validated at start-up.
    /// </summary>
    public static IServiceCollection AddTelemetryFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<TelemetryOptions>()
            .Bind(configuration.GetSection(TelemetryOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();

        services.AddSingleton<StorageRequestCounter>();
        services.AddSingleton<TelemetryStorage>();

        services.AddSingleton<Pseudonymizer>();
        services.AddSingleton<PersonalDataScrubber>();
        services.AddSingleton<SuppressionList>();
        services.AddSingleton<SupportRequestStore>();
        services.AddSingleton<ErasureService>();

        services.AddSingleton<RawEventStore>();
        services.AddSingleton<ActivityStore>();
        services.AddSingleton<InstanceRegistry>();
        services.AddSingleton<InstallationRecorder>();

        services.AddSingleton<EventPreparer>();
        services.AddSingleton<IngestionMetrics>();
        services.AddSingleton<EventIngestor>();

        services.AddSingleton<WriteKeyAuthenticator>();
        services.AddSingleton<SourceRateLimiter>();
        services.AddSingleton<IngestEndpoints>();
        return services;
    }
}
