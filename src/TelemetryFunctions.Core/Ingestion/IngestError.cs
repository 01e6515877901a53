namespace TelemetryFunctions.Ingestion;

/// <summary>A request-level failure: the status to answer with, a stable code and a reason a sender can act on.</summary>
public sealed record IngestError(int StatusCode, string Code, string Reason, TimeSpan? RetryAfter = null)
{
    public static IngestError BadRequest(string code, string reason) => new(400, code, reason);

    public static IngestError TooLarge(string reason) => new(413, "payload_too_large", reason);

    public static IngestError UnsupportedMediaType(string reason) => new(415, "unsupported_media_type", reason);

    public static IngestError Unauthorized(string reason) => new(401, "unauthorized", reason);

    public static IngestError NotFound(string reason) => new(404, "not_found", reason);

    public static IngestError MethodNotAllowed(string reason) => new(405, "method_not_allowed", reason);

    public static IngestError RequestTimeout(string reason) => new(408, "request_timeout", reason);

    /// <summary>How long a client is asked to wait when storage is unavailable.</summary>
    public static TimeSpan StorageRetryAfter { get; } = TimeSpan.FromSeconds(10);

    public static IngestError StorageUnavailable() =>
        new(503, "storage_unavailable", "Storage is unavailable; nothing from this request is acknowledged. Retry later.", StorageRetryAfter);

    /// <summary>An unexpected failure, already logged by the host: the body names no cause, so nothing internal leaks.</summary>
    public static IngestError Unexpected() =>
        new(500, "internal_error", "An unexpected error occurred; it has been logged.");

    public static IngestError RateLimited(TimeSpan retryAfter, bool byClientAddress) => new(
        429,
        "rate_limited",
        byClientAddress
            ? "This client address is sending events faster than its limit. Retry after the indicated delay."
            : "This source (write key) is sending events faster than its limit, counting all its clients. Retry after the indicated delay.",
        retryAfter);
}
