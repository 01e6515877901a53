using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.LocalHost.Admin;

/// <summary>
/// The admin routes, with the key check Azure Functions does for function keys: the admin key in the
/// <c>x-functions-key</c> header or, without that header, the <c>code</c> query parameter, else 401.
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
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var presented = PresentedKey(context.HttpContext.Request);
        var expected = options.Value.AdminKey;
        if (string.IsNullOrEmpty(expected) || presented.Length == 0
            || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected))))
        {
            return JsonResponse.Error(IngestError.Unauthorized("The admin key is required: x-functions-key header or code query parameter."));
        }

        return await next(context);
    }

    /// <summary>
    /// The key as Azure Functions reads a function key: the first value of the <c>x-functions-key</c> header when the
    /// header is there, even an empty one; else the first <c>code</c> query value. Other values are not looked at.
    /// </summary>
    internal static string PresentedKey(HttpRequest request) =>
        request.Headers.TryGetValue("x-functions-key", out var header) ? header.FirstOrDefault() ?? ""
        : request.Query.TryGetValue("code", out var code) ? code.FirstOrDefault() ?? ""
        : "";
}
