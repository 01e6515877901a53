using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace TelemetryFunctions.UsageReports;

public static class UsageReportServiceCollectionExtensions
{
    /// <summary>Usage reports: options from <c>Telemetry:UsageReports</c> (validated at start-up), processing, reconciliation and HTTP endpoints.</summary>
    public static IServiceCollection AddUsageReports(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<UsageReportOptions>()
            .Bind(configuration.GetSection(UsageReportOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.AddSingleton(provider => new UsageReportReader(provider.GetRequiredService<IOptions<UsageReportOptions>>().Value, provider.GetRequiredService<TimeProvider>()));
        services.AddSingleton<UsageReportContainers>();
        services.AddSingleton<UsageBlobLedger>();
        services.AddSingleton<UsageReportStore>();
        services.AddSingleton<UsageRowStore>();
        services.AddSingleton<UsageMonthlyTotals>();
        services.AddSingleton<UsageReportProcessor>();
        services.AddSingleton<UsageReportReconciliation>();
        services.AddSingleton<UsageReportEndpoints>();
        return services;
    }
}
