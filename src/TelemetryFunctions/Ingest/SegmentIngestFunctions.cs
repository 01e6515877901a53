using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Functions.Ingest;

/// <summary>
/// The Segment-compatible HTTP API. Each function binds one route and hands the request to
/// <see cref="IngestEndpoints"/>; all behaviour, including write-key authentication, lives in the library.
/// </summary>
/// <remarks>
/// The functions are anonymous at the Functions level because Segment SDKs cannot send
/// <c>x-functions-key</c>. Each also takes <c>OPTIONS</c>, a browser's CORS preflight, which the same library method
/// answers (<see cref="IngestPreflight"/>). The cancellation token is the invocation's <c>FunctionContext.CancellationToken</c>.
/// </remarks>
public sealed class SegmentIngestFunctions(IngestEndpoints endpoints)
{
    [Function("IngestBatch")]
    public Task<IResult> IngestBatchAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Batch)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Batch, cancellationToken);

    [Function("IngestTrack")]
    public Task<IResult> IngestTrackAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Track)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Track, cancellationToken);

    [Function("IngestIdentify")]
    public Task<IResult> IngestIdentifyAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Identify)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Identify, cancellationToken);

    [Function("IngestPage")]
    public Task<IResult> IngestPageAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Page)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Page, cancellationToken);

    [Function("IngestScreen")]
    public Task<IResult> IngestScreenAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Screen)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Screen, cancellationToken);

    [Function("IngestGroup")]
    public Task<IResult> IngestGroupAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Group)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Group, cancellationToken);

    [Function("IngestAlias")]
    public Task<IResult> IngestAliasAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Alias)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Alias, cancellationToken);

    // The browser library's short paths (see TelemetryRoutes.BatchShort): the same calls.

    [Function("IngestBatchShort")]
    public Task<IResult> IngestBatchShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.BatchShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Batch, cancellationToken);

    [Function("IngestTrackShort")]
    public Task<IResult> IngestTrackShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.TrackShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Track, cancellationToken);

    [Function("IngestIdentifyShort")]
    public Task<IResult> IngestIdentifyShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.IdentifyShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Identify, cancellationToken);

    [Function("IngestPageShort")]
    public Task<IResult> IngestPageShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.PageShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Page, cancellationToken);

    [Function("IngestScreenShort")]
    public Task<IResult> IngestScreenShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.ScreenShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Screen, cancellationToken);

    [Function("IngestGroupShort")]
    public Task<IResult> IngestGroupShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.GroupShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Group, cancellationToken);

    [Function("IngestAliasShort")]
    public Task<IResult> IngestAliasShortAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.AliasShort)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.IngestAsync(request, SegmentCall.Alias, cancellationToken);

    /// <summary><c>POST /v1/preview</c>, answered by the library's preview endpoint.</summary>
    [Function("PreviewTelemetry")]
    public Task<IResult> PreviewTelemetryAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.Preview)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.PreviewAsync(request, cancellationToken);

    /// <summary><c>POST /v1/opt-out</c>: an explicit, permanent opt-out of the caller's telemetry.</summary>
    [Function("OptOutOfTelemetry")]
    public Task<IResult> OptOutOfTelemetryAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = TelemetryRoutes.OptOut)] HttpRequest request,
        CancellationToken cancellationToken) =>
        endpoints.OptOutAsync(request, cancellationToken);
}
