using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Net.Http.Headers;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.LocalHost;

/// <summary>
/// The answers to requests no route takes, in the JSON error shape of every other refusal instead of routing's empty
/// body: 404 for a path no route serves, and 405 for a method its route does not take, with the methods it does
/// take in the reason and in the <c>Allow</c> header routing sets. In Azure the Functions host answers these itself.
/// </summary>
internal static class UnmatchedRequests
{
    /// <summary>Runs for an error status whose response has no body yet; writes one for 404 and 405 only.</summary>
    public static Task AnswerAsync(StatusCodeContext context)
    {
        var http = context.HttpContext;
        var error = http.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => IngestError.NotFound("No route serves this path. The OpenAPI document at /api/openapi.json lists every route."),
            StatusCodes.Status405MethodNotAllowed => IngestError.MethodNotAllowed(MethodNotAllowedReason(http)),
            _ => null,
        };
        return error is null ? Task.CompletedTask : JsonResponse.Error(error).ExecuteAsync(http);
    }

    private static string MethodNotAllowedReason(HttpContext http)
    {
        var allowed = http.Response.Headers[HeaderNames.Allow].ToString();
        return allowed.Length == 0
            ? $"This route does not take {http.Request.Method}."
            : $"This route does not take {http.Request.Method}; it takes {allowed}.";
    }
}
