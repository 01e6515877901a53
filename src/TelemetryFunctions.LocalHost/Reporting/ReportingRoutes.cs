using TelemetryFunctions.Http;
using TelemetryFunctions.LocalHost.Admin;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Reporting.Dashboard;

namespace TelemetryFunctions.LocalHost.Reporting;

/// <summary>
/// The read API behind the admin key (the same filter as the admin routes), and the dashboard and OpenAPI document
/// without one, bound as the Functions app binds them.
/// </summary>
internal static class ReportingRoutes
{
    public static void MapReportingRoutes(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/").AddEndpointFilter<AdminKeyFilter>();
        read.MapGet("/" + TelemetryRoutes.StatsActiveUsers, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.ActiveUsersAsync(request, cancellationToken));
        read.MapGet("/" + TelemetryRoutes.StatsInstallations, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstallationsAsync(request, cancellationToken));
        read.MapGet("/" + TelemetryRoutes.StatsInstances, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstancesAsync(request, cancellationToken));
        read.MapGet("/" + TelemetryRoutes.Instance, (HttpRequest request, string instanceId, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstanceAsync(request, instanceId, cancellationToken));

        app.MapGet("/" + TelemetryRoutes.OpenApi, (DashboardEndpoints endpoints) => endpoints.OpenApi());
        app.MapGet("/" + TelemetryRoutes.Dashboard, (DashboardEndpoints endpoints) => endpoints.Page());
        app.MapGet("/" + TelemetryRoutes.DashboardFile, (string file, DashboardEndpoints endpoints) => endpoints.File(file));
    }
}
