using System.Threading;
using System.Threading.Tasks;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using TelemetryFunctions.Http;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Functions.UsageReports;

/// <summary>
/// Usage reports of Self-Managed customers. The blob trigger uses the Event Grid source (the only one the Flex
/// Consumption plan supports) on the <c>usage-reports</c> container of the <c>UsageReportsStorage</c> connection; it binds
/// a <see cref="BlobClient"/>, so the host never loads a report into memory, and hands the name to the library's
/// processor, which streams it. A failure propagates: the host retries (host.json <c>poisonBlobThreshold</c>), and the
/// processor itself quarantines a report after <c>Telemetry:UsageReports:MaxAttempts</c> attempts. The reconciliation
/// timer processes blobs whose event was missed. Upload and status authenticate the customer's report key in the
/// library (anonymous here, like the Segment routes); the usage read needs a function key.
/// </summary>
public sealed class UsageReportFunctions(UsageReportProcessor processor, UsageReportEndpoints endpoints, TelemetryJobs jobs)
{
    /// <summary>
    /// The container the blob trigger watches. It is fixed when the app is built (an attribute), as the Event Grid
    /// subscription's filter is in infra-bicep, so Program.cs refuses to start with another <c>Telemetry:UsageReports:Container</c>.
    /// </summary>
    public const string WatchedContainer = "usage-reports";

    [Function("ProcessUsageReport")]
    public async Task ProcessUsageReportAsync(
        [BlobTrigger(WatchedContainer + "/{name}", Source = BlobTriggerSource.EventGrid, Connection = "UsageReportsStorage")] BlobClient blob,
        string name,
        CancellationToken cancellationToken)
    {
        await processor.ProcessAsync(name, cancellationToken);
    }

    [Function("UploadUsageReport")]
    public Task<IResult> UploadUsageReportAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = TelemetryRoutes.UsageReports)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.UploadAsync(request, cancellationToken);

    [Function("UsageReportStatus")]
    public Task<IResult> UsageReportStatusAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = TelemetryRoutes.UsageReportStatus)] HttpRequest request,
        string id,
        CancellationToken cancellationToken) =>
        endpoints.StatusAsync(request, id, cancellationToken);

    [Function("AdminUsage")]
    public Task<IResult> AdminUsageAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", "head", Route = TelemetryRoutes.AdminUsage)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.UsageAsync(request, cancellationToken);

    [Function("UsageReportReconciliation")]
    public async Task UsageReportReconciliationAsync(
        [TimerTrigger("%TelemetryReconcileSchedule%", RunOnStartup = false, UseMonitor = true)] TimerInfo timer,
        CancellationToken cancellationToken)
    {
        await jobs.ReconcileAsync(cancellationToken);
    }
}
