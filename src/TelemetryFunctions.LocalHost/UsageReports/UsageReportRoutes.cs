using TelemetryFunctions.Http;
using TelemetryFunctions.LocalHost.Admin;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.LocalHost.UsageReports;

/// <summary>
/// The usage-report routes, bound as the Functions app binds them: upload and status authenticate the customer's
/// report key in the library; the usage read is behind the admin key.
/// </summary>
internal static class UsageReportRoutes
{
    public static void MapUsageReportRoutes(this IEndpointRouteBuilder app)
    {
        app.MapPost("/" + TelemetryRoutes.UsageReports, (HttpRequest request, UsageReportEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.UploadAsync(request, cancellationToken));
        app.MapMethods("/" + TelemetryRoutes.UsageReportStatus, TelemetryRoutes.ReadMethods, (HttpRequest request, string id, UsageReportEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.StatusAsync(request, id, cancellationToken));

        app.MapGroup("/").AddEndpointFilter<AdminKeyFilter>()
            .MapMethods("/" + TelemetryRoutes.AdminUsage, TelemetryRoutes.ReadMethods, (HttpRequest request, UsageReportEndpoints endpoints, CancellationToken cancellationToken) =>
                endpoints.UsageAsync(request, cancellationToken));
    }
}
