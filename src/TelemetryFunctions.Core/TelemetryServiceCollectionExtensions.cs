using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Reporting.Dashboard;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.UsageReports;

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

        var section = configuration.GetSection(TelemetryOptions.SectionName);
        services.AddOptions<TelemetryOptions>()
            .Bind(section)
            .PostConfigure(options => ConfiguredLists.ReplaceDefaults(options, section))
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();

        services.AddSingleton<StorageRequestCounter>();
        services.AddSingleton<TelemetryStorage>();
        services.AddSingleton<TableBatchWriter>();

        services.AddSingleton<ReportingCalendar>();
        services.AddSingleton<Pseudonymizer>();
        services.AddSingleton<PersonalDataScrubber>();
        services.AddSingleton<SuppressionList>();
        services.AddSingleton<SupportRequestStore>();
        services.AddSingleton<ErasureService>();
        services.AddSingleton<OptOutService>();

        services.AddSingleton<RawEventStore>();
        services.AddSingleton<DirtyDays>();
        services.AddSingleton<ActivityStore>();
        services.AddSingleton<InactivityIndex>();
        services.AddSingleton<InstanceStatusLog>();
        services.AddSingleton<InstanceRegistry>();
        services.AddSingleton<InactivitySweep>();
        services.AddSingleton<ActivityDigests>();
        services.AddSingleton<DailyRollup>();
        services.AddSingleton<RetentionJob>();
        services.AddSingleton<ScheduleMonitor>();
        services.AddSingleton<TelemetryJobs>();
        services.AddSingleton<InstallationRecorder>();

        services.AddSingleton<EventPreparer>();
        services.AddSingleton<IngestionMetrics>();
        services.AddSingleton<EventIngestor>();

        services.AddSingleton<WriteKeyAuthenticator>();
        services.AddSingleton<IngestRateLimiter>();
        services.AddSingleton<IngestEndpoints>();
        services.AddSingleton<AdminEndpoints>();
        services.AddUsageReports(configuration);
        services.AddOptions<ReportingOptions>().Bind(configuration.GetSection(ReportingOptions.SectionName)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<InstanceCensus>();
        services.AddSingleton<StatsEndpoints>();
        services.AddSingleton<DashboardEndpoints>();
        return services;
    }
}
