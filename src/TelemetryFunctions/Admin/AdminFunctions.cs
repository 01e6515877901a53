using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using TelemetryFunctions.Http;

namespace TelemetryFunctions.Functions.Admin;

/// <summary>
/// Operator endpoints, guarded by Functions keys (<c>x-functions-key</c> or <c>code</c>): the local host checks the
/// configured admin key the same way.
/// </summary>
public sealed class AdminFunctions(AdminEndpoints endpoints)
{
    [Function("AdminRollup")]
    public Task<IResult> RollupAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = TelemetryRoutes.AdminRollup)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.RollupAsync(request, cancellationToken);

    [Function("AdminSweep")]
    public Task<IResult> SweepAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = TelemetryRoutes.AdminSweep)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.SweepAsync(cancellationToken);

    [Function("AdminRetention")]
    public Task<IResult> RetentionAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = TelemetryRoutes.AdminRetention)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.RetentionAsync(cancellationToken);
}
