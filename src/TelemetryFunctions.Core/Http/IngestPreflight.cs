using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace TelemetryFunctions.Http;

/// <summary>
/// The answer to an <c>OPTIONS</c> request on an ingest route, the CORS preflight a browser sends before a
/// cross-origin <c>POST</c> that is not a simple request: one with an <c>Authorization</c> header (a write key sent as
/// HTTP Basic), <c>Content-Type: application/json</c> or <c>Content-Encoding: gzip</c>. It is <c>204</c> with no body,
/// allowing any origin to post with the request headers ingestion reads. Nothing is read, authenticated, counted
/// against a rate limit or written, and the answer is the same for every <c>OPTIONS</c> request whatever its origin or
/// the method and headers it asks for: the browser compares them with what is allowed and refuses to send anything
/// else (a preflight asking for <c>PUT</c> gets this answer, and the browser does not send the <c>PUT</c>).
/// </summary>
/// <remarks>
/// Only the ingest routes answer preflights: the admin, read API and usage-report routes have no <c>OPTIONS</c>
/// method, so a browser never lets another origin call them. No cookie or other ambient credential is honoured on
/// the ingest routes (the write key is in the request itself), which is why any origin may be allowed, as the
/// answers to their <c>POST</c> requests allow it (<see cref="IngestEndpoints.AllowBrowserCallers"/>).
/// </remarks>
public sealed class IngestPreflight : IResult
{
    /// <summary>What the ingest routes allow: <c>POST</c>, and <c>OPTIONS</c> itself.</summary>
    public const string AllowedMethods = "POST, OPTIONS";

    /// <summary>
    /// Every request header ingestion reads that a page may set: the write key (<c>Authorization</c>), the body's
    /// type and its encoding (<c>Content-Type</c>, <c>Content-Encoding</c>), and the header Segment's browser library
    /// adds to each retry (<c>X-Retry-Count</c>, which ingestion ignores: without it allowed, the browser would not send
    /// the retry). <c>Authorization</c> must be named: a wildcard does not cover it.
    /// </summary>
    public const string AllowedHeaders = "Authorization, Content-Type, Content-Encoding, X-Retry-Count";

    /// <summary>How long a browser may reuse the answer, in seconds: a day (browsers cap it lower, Chromium at two hours).</summary>
    public const int MaxAgeSeconds = 86_400;

    private static readonly string MaxAge = MaxAgeSeconds.ToString(CultureInfo.InvariantCulture);

    private IngestPreflight()
    {
    }

    /// <summary>The answer, the same for every preflight.</summary>
    public static IngestPreflight Answer { get; } = new();

    /// <summary>Whether <paramref name="request"/> is one this answers: any <c>OPTIONS</c> request on an ingest route.</summary>
    public static bool Applies(HttpRequest request) => HttpMethods.IsOptions(request.Method);

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status204NoContent;
        var headers = response.Headers;
        headers.AccessControlAllowOrigin = "*";
        headers.AccessControlAllowMethods = AllowedMethods;
        headers.AccessControlAllowHeaders = AllowedHeaders;
        headers.AccessControlMaxAge = MaxAge;
        headers.Allow = AllowedMethods;
        return Task.CompletedTask;
    }
}
