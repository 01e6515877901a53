using Microsoft.AspNetCore.Http;

namespace TelemetryFunctions.Http;

/// <summary>
/// An answer no cache may keep (<c>Cache-Control: no-store</c>): the read API's and the usage read's answers are
/// figures behind the admin key, which a shared proxy or the browser's disk cache must not hold. Set by the library, so
/// both hosts send it.
/// </summary>
public sealed class NoStoreResult(IResult inner) : IResult
{
    public IResult Inner { get; } = inner;

    /// <summary>The answer <paramref name="answer"/> gives, marked so.</summary>
    public static async Task<IResult> Of(Task<IResult> answer) => new NoStoreResult(await answer);

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.Headers.CacheControl = "no-store";
        return Inner.ExecuteAsync(httpContext);
    }
}
