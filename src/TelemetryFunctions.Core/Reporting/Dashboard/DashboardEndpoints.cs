using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Reporting.Dashboard;

/// <summary>
/// The dashboard page, its scripts and styles, and the OpenAPI document, all embedded in this assembly so both hosts
/// serve the same files with no CDN and no internet. None of them needs a key: the page asks for the admin key and
/// sends it as the <c>x-functions-key</c> header on its API calls, never in a URL.
/// </summary>
public sealed class DashboardEndpoints
{
    private const string ResourcePrefix = "TelemetryFunctions.Reporting.Dashboard.assets.";
    private const string OpenApiResource = "TelemetryFunctions.Reporting.openapi.json";

    /// <summary>Scripts and styles only from this origin, no framing, and API calls only to this origin.</summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".json"] = "application/json; charset=utf-8",
        [".svg"] = "image/svg+xml",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private readonly FrozenDictionary<string, Asset> _assets = Load();
    private readonly Asset _openApi = Read(OpenApiResource, ".json");

    /// <summary>The files under <c>/dashboard/</c> (the page itself is <c>index.html</c>, served at <c>/dashboard</c>).</summary>
    public IReadOnlyCollection<string> Files => _assets.Keys;

    /// <summary><c>GET /dashboard</c>.</summary>
    public IResult Page() => new AssetResult(_assets["index.html"]);

    /// <summary><c>GET /dashboard/{file}</c>: one of the embedded files, else 404 with the JSON error body.</summary>
    public IResult File(string? file) =>
        file is not null && _assets.TryGetValue(file, out var asset)
            ? new AssetResult(asset)
            : JsonResponse.Error(IngestError.NotFound("The dashboard has no file of this name."));

    /// <summary><c>GET /api/openapi.json</c>: the OpenAPI 3 description of every route.</summary>
    public IResult OpenApi() => new AssetResult(_openApi);

    private static FrozenDictionary<string, Asset> Load()
    {
        var names = typeof(DashboardEndpoints).Assembly.GetManifestResourceNames();
        return names
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .ToFrozenDictionary(n => n[ResourcePrefix.Length..], n => Read(n, Path.GetExtension(n)), StringComparer.Ordinal);
    }

    private static Asset Read(string resource, string extension)
    {
        using var stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The embedded resource {resource} is missing from the build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        var type = ContentTypes.GetValueOrDefault(extension, "application/octet-stream");
        return new Asset(bytes, type, "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes)[..8]) + "\"");
    }

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);

    private sealed class AssetResult(Asset asset) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            var headers = response.Headers;
            headers.ETag = asset.ETag;
            headers.CacheControl = "no-cache";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            if (MatchesAny(httpContext.Request, asset.ETag))
            {
                response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }

            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = asset.ContentType;
            response.ContentLength = asset.Bytes.Length;
            await response.Body.WriteAsync(asset.Bytes, httpContext.RequestAborted);
        }

        /// <summary>
        /// Whether If-None-Match names the file as RFC 9110 compares it for a GET: <c>*</c>, or any tag of the list
        /// equal to the file's by the weak comparison (a proxy that compresses may weaken the tag it passes on).
        /// </summary>
        private static bool MatchesAny(HttpRequest request, string etag)
        {
            var current = new EntityTagHeaderValue(etag);
            return request.GetTypedHeaders().IfNoneMatch.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || tag.Compare(current, useStrongComparison: false));
        }
    }
}
