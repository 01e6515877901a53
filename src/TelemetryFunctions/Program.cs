using System.Linq;
using Microsoft.ApplicationInsights.Extensibility;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.ApplicationInsights;
using TelemetryFunctions.Functions.Middleware;
using TelemetryFunctions.Functions.UsageReports;
using TelemetryFunctions.Http;
using TelemetryFunctions.UsageReports;

var builder = FunctionsApplication.CreateBuilder(args);

builder.ConfigureFunctionsWebApplication();

// After ConfigureFunctionsWebApplication, so it runs inside the ASP.NET Core integration's middleware (see the class).
builder.UseMiddleware<UnhandledHttpFailureMiddleware>();

// The worker's own telemetry. Its default adaptive sampling may drop exceptions; replace it with the sampling host.json
// gives the host (samplingSettings: 20 items per second, Exception and Request never sampled). HostParityTests checks
// that the two agree.
// Application Insights has local authentication disabled (infra-bicep): ConfigureFunctionsApplicationInsights registers
// the worker package's TelemetryConfiguration setup, which reads APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// (Authorization=AAD;ClientId=<the app's user-assigned identity>) and gives the worker's channel that managed identity
// as its token credential, as the host does for its own telemetry. No credential is set here.
builder.Services
    .AddApplicationInsightsTelemetryWorkerService(options => options.EnableAdaptiveSampling = false)
    .ConfigureFunctionsApplicationInsights();
builder.Services.Configure<TelemetryConfiguration>(configuration =>
{
    var processors = configuration.DefaultTelemetrySink.TelemetryProcessorChainBuilder;
    processors.UseAdaptiveSampling(maxTelemetryItemsPerSecond: 20, excludedTypes: "Exception;Request");
    processors.Build();
});

// host.json's logging categories apply to the host only. In the worker, ASP.NET Core logs every request URL at
// Information (with ?code=<key> when a caller passes its key in the query), and the Azure SDK and HttpClient log every
// storage call: keep them at Warning, as the local host's appsettings.json does (HostParityTests checks the list).
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.Logging.AddFilter("Azure", LogLevel.Warning);
builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);

// The categories that log request URLs (a raw instance id in /api/instances/{instanceId}, a key in ?code=) stay at
// Warning even when the configuration raises Microsoft.AspNetCore or Default (RequestUrlLogging; the local host does the same).
builder.Logging.KeepRequestUrlsOutOfLogs();

// The Application Insights SDK adds a provider rule (no category) that keeps only Warning and above for its logger, and
// a provider rule wins over the category rules above for that provider. Remove that one rule so the category rules
// and the Logging:LogLevel configuration decide what reaches Application Insights; the category rules stay in place.
builder.Services.Configure<LoggerFilterOptions>(options =>
{
    var applicationInsightsDefault = options.Rules.FirstOrDefault(
        rule => rule.ProviderName == typeof(ApplicationInsightsLoggerProvider).FullName && string.IsNullOrEmpty(rule.CategoryName));
    if (applicationInsightsDefault is not null)
    {
        options.Rules.Remove(applicationInsightsDefault);
    }
});

builder.Services.AddTelemetryFunctions(builder.Configuration);

// The blob trigger's container is fixed at build time: a configured other container would have the processor and the
// reconciliation read one container while the trigger watches another.
builder.Services.AddOptions<UsageReportOptions>()
    .Validate(
        options => options.Container == UsageReportFunctions.WatchedContainer,
        $"Telemetry:UsageReports:Container cannot be changed in the Functions app: its blob trigger and the Event Grid subscription watch '{UsageReportFunctions.WatchedContainer}'.")
    .ValidateOnStart();

builder.Build().Run();
