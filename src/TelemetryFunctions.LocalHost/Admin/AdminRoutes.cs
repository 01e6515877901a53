using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.LocalHost.Admin;

/// <summary>
/// The admin routes, with the key check Azure Functions does for function keys: the admin key in the
/// <c>x-functions-key</c> header or the <c>code</c> query parameter, else 401. The key is taken once: a repeated header,
/// a repeated <c>code</c>, or both, is a 401 too (see <see cref="AdminKeyFilter"/>).
/// </summary>
internal static class AdminRoutes
{
    public static void MapAdminRoutes(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/").AddEndpointFilter<AdminKeyFilter>();
        admin.MapPost("/" + TelemetryRoutes.AdminRollup, (HttpRequest request, AdminEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.RollupAsync(request, cancellationToken));
        admin.MapPost("/" + TelemetryRoutes.AdminSweep, (AdminEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.SweepAsync(cancellationToken));
        admin.MapPost("/" + TelemetryRoutes.AdminRetention, (AdminEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.RetentionAsync(cancellationToken));
    }
}

internal sealed class AdminKeyFilter(IOptions<TelemetryOptions> options) : IEndpointFilter
{
    public const string RequiredReason = "The admin key is required: x-functions-key header or code query parameter.";
    public const string AmbiguousReason = "Send the admin key once: one x-functions-key header or one code query parameter, not both.";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var (presented, ambiguous) = PresentedKey(context.HttpContext.Request);
        if (ambiguous)
        {
            return JsonResponse.Error(IngestError.Unauthorized(AmbiguousReason));
        }

        var expected = options.Value.AdminKey;
        if (string.IsNullOrEmpty(expected) || presented.Length == 0
            || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected))))
        {
            return JsonResponse.Error(IngestError.Unauthorized(RequiredReason));
        }

        return await next(context);
    }

    /// <summary>
    /// The presented key: the <c>x-functions-key</c> header when it is there (an empty one is an empty key), else the
    /// <c>code</c> query value. Given more than once (two headers, two <c>code</c> values, or a header and a
    /// <c>code</c>), which one is meant cannot be known, even when they are equal, as for ingest's Authorization header:
    /// the request is refused rather than one of them chosen. (Azure Functions reads the first value instead; see docs/api.md.)
    /// </summary>
    internal static (string Key, bool Ambiguous) PresentedKey(HttpRequest request)
    {
        var hasHeader = request.Headers.TryGetValue("x-functions-key", out var header);
        var hasCode = request.Query.TryGetValue("code", out var code);
        if (header.Count > 1 || code.Count > 1 || (hasHeader && hasCode))
        {
            return ("", true);
        }

        return (hasHeader ? header.ToString() : hasCode ? code.ToString() : "", false);
    }
}
