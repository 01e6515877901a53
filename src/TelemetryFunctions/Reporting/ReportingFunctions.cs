using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using TelemetryFunctions.Http;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Reporting.Dashboard;

namespace TelemetryFunctions.Functions.Reporting;

/// <summary>
/// The read API, guarded by Functions keys (<c>x-functions-key</c> or <c>code</c>), and the dashboard page and
/// OpenAPI document, anonymous (the page asks for a key and sends it as <c>x-functions-key</c>).
/// </summary>
public sealed class ReportingFunctions(StatsEndpoints stats, DashboardEndpoints dashboard)
{
    [Function("StatsActiveUsers")]
    public Task<IResult> ActiveUsersAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", "head", Route = TelemetryRoutes.StatsActiveUsers)] HttpRequest request,
        CancellationToken cancellationToken) =>
        stats.ActiveUsersAsync(request, cancellationToken);

    [Function("StatsInstallations")]
    public Task<IResult> InstallationsAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", "head", Route = TelemetryRoutes.StatsInstallations)] HttpRequest request,
        CancellationToken cancellationToken) =>
        stats.InstallationsAsync(request, cancellationToken);

    [Function("StatsInstances")]
    public Task<IResult> InstancesAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", "head", Route = TelemetryRoutes.StatsInstances)] HttpRequest request,
        CancellationToken cancellationToken) =>
        stats.InstancesAsync(request, cancellationToken);

    [Function("Instance")]
    public Task<IResult> InstanceAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", "head", Route = TelemetryRoutes.Instance)] HttpRequest request,
        string instanceId,
        CancellationToken cancellationToken) =>
        stats.InstanceAsync(request, instanceId, RequestTarget.Forwarded, cancellationToken);

    [Function("OpenApi")]
    public IResult OpenApi(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = TelemetryRoutes.OpenApi)] HttpRequest request) =>
        dashboard.OpenApi();

    [Function("Dashboard")]
    public IResult Dashboard(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = TelemetryRoutes.Dashboard)] HttpRequest request) =>
        dashboard.Page();

    [Function("DashboardFile")]
    public IResult DashboardFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = TelemetryRoutes.DashboardFile)] HttpRequest request,
        string file) =>
        dashboard.File(file);
}
