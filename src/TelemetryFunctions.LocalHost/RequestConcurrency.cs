using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.LocalHost;

/// <summary>
/// The local host's equivalent of <c>host.json</c>'s <c>extensions.http.maxConcurrentRequests</c> and
/// <c>maxOutstandingRequests</c> in Azure: at most that many requests run at once, the next ones wait in a queue, and
/// beyond the outstanding limit a request is answered 429 with Retry-After at once, before its body is read. This keeps
/// the host's memory bounded under a flood of slow requests. The health probe and the CORS preflights of the ingest
/// routes are not limited. The defaults are host.json's values.
/// </summary>
public sealed class RequestConcurrencyOptions
{
    public const string Section = "LocalHost:Http";

    /// <summary>Requests executing at once (host.json <c>maxConcurrentRequests</c>).</summary>
    public int MaxConcurrentRequests { get; set; } = 100;

    /// <summary>Requests executing or waiting (host.json <c>maxOutstandingRequests</c>); beyond it, 429.</summary>
    public int MaxOutstandingRequests { get; set; } = 200;
}

internal static class RequestConcurrency
{
    /// <summary>How long a refused client is asked to wait.</summary>
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    public static WebApplicationBuilder AddRequestConcurrencyLimit(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RequestConcurrencyOptions>()
            .Bind(builder.Configuration.GetSection(RequestConcurrencyOptions.Section))
            .Validate(o => o.MaxConcurrentRequests >= 1, $"{RequestConcurrencyOptions.Section}:MaxConcurrentRequests must be at least 1.")
            .Validate(o => o.MaxOutstandingRequests >= o.MaxConcurrentRequests, $"{RequestConcurrencyOptions.Section}:MaxOutstandingRequests must be at least MaxConcurrentRequests.")
            .ValidateOnStart();
        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<IOptions<RequestConcurrencyOptions>>((limiter, concurrency) =>
        {
            var limits = concurrency.Value;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                context.Request.Path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase)
                    ? RateLimitPartition.GetNoLimiter("health")
                    : IsIngestPreflight(context.Request)
                    ? RateLimitPartition.GetNoLimiter("ingest-preflight")
                    : RateLimitPartition.GetConcurrencyLimiter("requests", _ => new ConcurrencyLimiterOptions
                    {
                        PermitLimit = limits.MaxConcurrentRequests,
                        QueueLimit = limits.MaxOutstandingRequests - limits.MaxConcurrentRequests,
                        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                    }));
            limiter.OnRejected = (rejected, cancellationToken) =>
            {
                if (TelemetryRoutes.IsIngest(rejected.HttpContext.Request.Path))
                {
                    // A browser sender must be able to read the 429 and its Retry-After, as it can every other answer.
                    IngestEndpoints.AllowBrowserCallers(rejected.HttpContext.Response);
                }

                return new ValueTask(JsonResponse.Error(new IngestError(429, "too_many_requests", "The host has too many requests in progress. Retry after the indicated delay.", RetryAfter))
                    .ExecuteAsync(rejected.HttpContext));
            };
        });
        return builder;
    }

    /// <summary>
    /// A CORS preflight on an ingest route is never queued or refused: its answer is constant and reads nothing, not
    /// even the body, and a browser whose preflight gets 429 reports a network error without showing the page the
    /// Retry-After, whereas the POST that follows an allowed preflight gets a 429 the sender can read and honour.
    /// (In Azure the Functions host's own limits count every request, preflights included.)
    /// </summary>
    private static bool IsIngestPreflight(HttpRequest request) =>
        IngestPreflight.Applies(request) && TelemetryRoutes.IsIngest(request.Path);
}
