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
        read.MapMethods("/" + TelemetryRoutes.StatsActiveUsers, TelemetryRoutes.ReadMethods, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.ActiveUsersAsync(request, cancellationToken));
        read.MapMethods("/" + TelemetryRoutes.StatsInstallations, TelemetryRoutes.ReadMethods, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstallationsAsync(request, cancellationToken));
        read.MapMethods("/" + TelemetryRoutes.StatsInstances, TelemetryRoutes.ReadMethods, (HttpRequest request, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstancesAsync(request, cancellationToken));
        read.MapMethods("/" + TelemetryRoutes.Instance, TelemetryRoutes.ReadMethods, (HttpRequest request, string instanceId, StatsEndpoints endpoints, CancellationToken cancellationToken) =>
            endpoints.InstanceAsync(request, instanceId, RequestTarget.AsSent, cancellationToken));

        app.MapMethods("/" + TelemetryRoutes.OpenApi, TelemetryRoutes.ReadMethods, (DashboardEndpoints endpoints) => endpoints.OpenApi());
        app.MapMethods("/" + TelemetryRoutes.Dashboard, TelemetryRoutes.ReadMethods, (DashboardEndpoints endpoints) => endpoints.Page());
        app.MapMethods("/" + TelemetryRoutes.DashboardFile, TelemetryRoutes.ReadMethods, (string file, DashboardEndpoints endpoints) => endpoints.File(file));
    }
}
