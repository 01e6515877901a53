using System.Linq;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.ApplicationInsights;

var builder = FunctionsApplication.CreateBuilder(args);

builder.ConfigureFunctionsWebApplication();

builder.Services
    .AddApplicationInsightsTelemetryWorkerService()
    .ConfigureFunctionsApplicationInsights();

// The Application Insights SDK adds a rule that keeps only Warning and above for its logger;
// remove it so the Logging:LogLevel configuration decides what reaches Application Insights.
builder.Services.Configure<LoggerFilterOptions>(options =>
{
    var applicationInsightsDefault = options.Rules.FirstOrDefault(
        rule => rule.ProviderName == typeof(ApplicationInsightsLoggerProvider).FullName);
    if (applicationInsightsDefault is not null)
    {
        options.Rules.Remove(applicationInsightsDefault);
    }
});

builder.Services.AddTelemetryFunctions(builder.Configuration);

builder.Build().Run();
