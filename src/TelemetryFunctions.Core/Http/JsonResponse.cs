using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Http;

/// <summary>A JSON body with a status code and, for 429 and 503, a Retry-After header.</summary>
public sealed class JsonResponse : IResult
{
    private readonly byte[] _body;

    private JsonResponse(int statusCode, byte[] body, TimeSpan? retryAfter)
    {
        StatusCode = statusCode;
        _body = body;
        RetryAfter = retryAfter;
    }

    public int StatusCode { get; }

    public TimeSpan? RetryAfter { get; }

    public static JsonResponse Ok(IngestResponse response) =>
        new(200, JsonSerializer.SerializeToUtf8Bytes(response, ResponseJsonContext.Default.IngestResponse), null);

    public static JsonResponse Ok<T>(T body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo) =>
        new(200, JsonSerializer.SerializeToUtf8Bytes(body, typeInfo), null);

    public static JsonResponse Ok(JsonNode body) => new(200, JsonSerializer.SerializeToUtf8Bytes(body, ResponseJsonContext.Default.JsonNode), null);

    /// <summary>
    /// A refusal: <c>{"success":false,"code":..,"message":..,"error":{"code":..,"message":..}}</c>. The code and message
    /// are also at the top level because Segment's Python library reads them there: without them it takes the answer for
    /// a network failure and retries a refused batch instead of dropping it.
    /// </summary>
    public static JsonResponse Error(IngestError error, IReadOnlyList<RejectedEvent>? rejected = null) =>
        new(
            error.StatusCode,
            JsonSerializer.SerializeToUtf8Bytes(
                new ErrorResponse(false, error.Code, error.Reason, new ErrorDetail(error.Code, error.Reason), rejected is { Count: > 0 } ? rejected : null),
                ResponseJsonContext.Default.ErrorResponse),
            error.RetryAfter);

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCode;
        response.ContentType = "application/json; charset=utf-8";
        if (RetryAfter is { } retryAfter)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            response.Headers.RetryAfter = seconds;
            if (StatusCode == StatusCodes.Status429TooManyRequests)
            {
                // Segment's browser library waits for this header's seconds after a 429, not for Retry-After.
                response.Headers["X-RateLimit-Reset"] = seconds;
            }
        }

        response.ContentLength = _body.Length;
        await response.Body.WriteAsync(_body, httpContext.RequestAborted);
    }
}

public sealed record RejectedEvent(int Index, string? MessageId, string Reason);

public sealed record DroppedCounts(int OptedOut, int SharingDisabled, int SharingBasic);

public sealed record IngestResponse(bool Success, int Accepted, IReadOnlyList<RejectedEvent> Rejected, int Duplicates, DroppedCounts Dropped, int Scrubbed);

public sealed record ErrorDetail(string Code, string Message);

public sealed record AdminRollupResponse(bool Success, DateOnly From, DateOnly To, IReadOnlyList<TelemetryFunctions.Activity.DayFigures> Days);

public sealed record AdminJobResponse<T>(bool Success, T Result);

public sealed record ErrorResponse(bool Success, string Code, string Message, ErrorDetail Error, IReadOnlyList<RejectedEvent>? Rejected);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IngestResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(IReadOnlyList<RejectedEvent>))]
[JsonSerializable(typeof(DroppedCounts))]
[JsonSerializable(typeof(AdminRollupResponse))]
[JsonSerializable(typeof(AdminJobResponse<TelemetryFunctions.Instances.SweepResult>))]
[JsonSerializable(typeof(AdminJobResponse<TelemetryFunctions.Retention.RetentionResult>))]
internal sealed partial class ResponseJsonContext : JsonSerializerContext;
