using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.LocalHost.Admin;
using TelemetryFunctions.LocalHost.Reporting;
using TelemetryFunctions.LocalHost.Scheduling;
using TelemetryFunctions.LocalHost.UsageReports;

namespace TelemetryFunctions.LocalHost;

/// <summary>Builds the local host: the same routes, timers and services as the Functions app, on Kestrel.</summary>
public static class LocalHostApp
{
    /// <summary>
    /// The configured application, not yet started. <paramref name="configure"/> runs right after the builder is
    /// created, so it can add configuration (storage, table prefix, keys, URLs) and services before anything reads them.
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);

        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            // The port `func start` uses, so scripts and SDK settings work against either host unchanged.
            builder.WebHost.UseUrls("http://127.0.0.1:7071");
        }

        // After the configuration's logging rules, so they cannot bring request URLs (raw ids, ?code=) back into the logs.
        builder.Logging.KeepRequestUrlsOutOfLogs();
        builder.Services.AddTelemetryFunctions(builder.Configuration);
        builder.Services.AddProblemDetails();
        if (!builder.Configuration.GetValue("TelemetryDisableTimers", false))
        {
            builder.Services.AddHostedService<TimerScheduler>();
        }

        builder.AddUsageReportWatcher();
        builder.AddRequestConcurrencyLimit();

        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            // The ingest code caps the body itself (with a clear 413); Kestrel's own cap only stops what is far over it.
            kestrel.Limits.MaxRequestBodySize = 4 * 1024 * 1024;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(15);
            kestrel.Limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
        });

        var app = builder.Build();

        app.UseExceptionHandler(handler => handler.Run(async context =>
        {
            // Unexpected failures only (bad input and storage outages are answered by the endpoints): logged once, with the exception.
            // The route's pattern, not the request's path: a path can hold a raw identifier (/api/instances/{instanceId}).
            var feature = context.Features.Get<IExceptionHandlerFeature>();
            var route = (feature?.Endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "(no route)";
            LocalHostLog.UnhandledFailure(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("TelemetryFunctions.LocalHost"), feature?.Error, route);
            // The same body the Functions app's UnhandledHttpFailureMiddleware answers with.
            await JsonResponse.Error(IngestError.Unexpected()).ExecuteAsync(context);
        }));

        app.UseStatusCodePages(UnmatchedRequests.AnswerAsync);
        app.UseRateLimiter();
        app.MapIngestRoutes();
        app.MapAdminRoutes();
        app.MapReportingRoutes();
        app.MapUsageReportRoutes();
        app.MapMethods("/", TelemetryRoutes.ReadMethods, (IOptions<TelemetryOptions> options) => Results.Json(new
        {
            service = "TelemetryFunctions (local host)",
            ingest = new[] { TelemetryRoutes.Batch, TelemetryRoutes.Track, TelemetryRoutes.Identify, TelemetryRoutes.Page, TelemetryRoutes.Screen, TelemetryRoutes.Group, TelemetryRoutes.Alias }.Select(r => "/" + r),
            privacy = new[] { "/" + TelemetryRoutes.OptOut, "/" + TelemetryRoutes.Preview },
            sources = options.Value.WriteKeys.Where(k => !k.Revoked).Select(k => k.Source).Distinct(),
        }));
        app.MapMethods("/health", TelemetryRoutes.ReadMethods, () => Results.Json(new { status = "ok" }));
        return app;
    }
}

internal static partial class LocalHostLog
{
    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled failure serving {Route}")]
    public static partial void UnhandledFailure(ILogger logger, Exception? exception, string route);
}

internal static class IngestRouteMappings
{
    /// <summary>
    /// The Segment and privacy routes, bound exactly as the Functions app binds them: POST, and OPTIONS for the CORS
    /// preflight, which the same library methods answer.
    /// </summary>
    public static void MapIngestRoutes(this IEndpointRouteBuilder app)
    {
        foreach (var (route, call) in TelemetryRoutes.SegmentCalls)
        {
            app.MapMethods("/" + route, TelemetryRoutes.IngestMethods, (HttpRequest request, IngestEndpoints endpoints, CancellationToken cancellationToken) =>
                endpoints.IngestAsync(request, call, cancellationToken));
        }

        app.MapMethods("/" + TelemetryRoutes.Preview, TelemetryRoutes.IngestMethods, (HttpRequest request, IngestEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.PreviewAsync(request, cancellationToken));
        app.MapMethods("/" + TelemetryRoutes.OptOut, TelemetryRoutes.IngestMethods, (HttpRequest request, IngestEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.OptOutAsync(request, cancellationToken));
    }
}
