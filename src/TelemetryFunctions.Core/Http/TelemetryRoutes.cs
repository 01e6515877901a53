using Microsoft.AspNetCore.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Http;

/// <summary>
/// Every HTTP route, shared by the Azure Functions app (with an empty route prefix in host.json) and the local
/// host, so both serve exactly the same paths. No leading slash, as the Functions <c>Route</c> expects.
/// </summary>
public static class TelemetryRoutes
{
    public const string Batch = "v1/batch";
    public const string Track = "v1/track";
    public const string Identify = "v1/identify";
    public const string Page = "v1/page";
    public const string Screen = "v1/screen";
    public const string Group = "v1/group";
    public const string Alias = "v1/alias";

    /// <summary>
    /// The paths Segment's browser library (analytics.js / analytics-next) posts to: each call to
    /// <c>v1/{first letter of its type}</c>, a batch to <c>v1/b</c>, with <c>Content-Type: text/plain</c> and the write
    /// key in the body. Same handling as the long paths.
    /// </summary>
    public const string BatchShort = "v1/b";
    public const string TrackShort = "v1/t";
    public const string IdentifyShort = "v1/i";
    public const string PageShort = "v1/p";
    public const string ScreenShort = "v1/s";
    public const string GroupShort = "v1/g";
    public const string AliasShort = "v1/a";

    public const string OptOut = "v1/opt-out";
    public const string Preview = "v1/preview";

    /// <summary>The Segment routes, long and short, and the call each one takes.</summary>
    public static IReadOnlyList<(string Route, SegmentCall Call)> SegmentCalls { get; } =
    [
        (Batch, SegmentCall.Batch),
        (Track, SegmentCall.Track),
        (Identify, SegmentCall.Identify),
        (Page, SegmentCall.Page),
        (Screen, SegmentCall.Screen),
        (Group, SegmentCall.Group),
        (Alias, SegmentCall.Alias),
        (BatchShort, SegmentCall.Batch),
        (TrackShort, SegmentCall.Track),
        (IdentifyShort, SegmentCall.Identify),
        (PageShort, SegmentCall.Page),
        (ScreenShort, SegmentCall.Screen),
        (GroupShort, SegmentCall.Group),
        (AliasShort, SegmentCall.Alias),
    ];

    /// <summary>Every ingest route: the Segment calls, their short paths, opt-out and preview (what browsers may call).</summary>
    public static IReadOnlyList<string> Ingest { get; } = [.. SegmentCalls.Select(r => r.Route), OptOut, Preview];

    /// <summary>
    /// The methods of every ingest route: POST, and OPTIONS, the CORS preflight a browser sends before a cross-origin
    /// POST with an Authorization header or a JSON content type (answered by <see cref="IngestPreflight"/>). The
    /// Functions app lists the same two in each of these routes' HttpTrigger.
    /// </summary>
    public static IReadOnlyList<string> IngestMethods { get; } = [HttpMethods.Post, HttpMethods.Options];

    /// <summary>Whether <paramref name="path"/> (with its leading slash, as a request has it) is an ingest route.</summary>
    public static bool IsIngest(PathString path) =>
        path.HasValue && Ingest.Contains(path.Value!.TrimStart('/').TrimEnd('/'), StringComparer.OrdinalIgnoreCase);

    /// <summary>Admin routes: the admin key (<c>x-functions-key</c> header or <c>code</c> query parameter) is required.</summary>
    public const string AdminRollup = "api/admin/rollup";
    public const string AdminSweep = "api/admin/sweep";
    public const string AdminRetention = "api/admin/retention";

    /// <summary>Usage reports of Self-Managed customers: upload and status (customer report key).</summary>
    public const string UsageReports = "v1/usage-reports";
    public const string UsageReportStatus = "v1/usage-reports/{id}";

    /// <summary>Reported usage per customer, metric and month, with entitlement and overage (admin key).</summary>
    public const string AdminUsage = "api/usage";

    /// <summary>Read API: the admin key is required, as for the admin routes.</summary>
    public const string StatsActiveUsers = "api/stats/active-users";
    public const string StatsInstallations = "api/stats/installations";
    public const string StatsInstances = "api/stats/instances";
    public const string Instance = "api/instances/{instanceId}";

    /// <summary>Anonymous: the API's OpenAPI document, and the dashboard page with its files (the page asks for the admin key itself).</summary>
    public const string OpenApi = "api/openapi.json";
    public const string Dashboard = "dashboard";
    public const string DashboardFile = "dashboard/{file}";

    /// <summary>
    /// The methods of every route that is read (the read API, the usage-report status, the OpenAPI document, the
    /// dashboard): GET, and HEAD, which the same handler answers and the server sends without the body, as HTTP
    /// asks of every GET resource. The Functions app lists the same two in each of these routes' HttpTrigger.
    /// </summary>
    public static IReadOnlyList<string> ReadMethods { get; } = [HttpMethods.Get, HttpMethods.Head];
}
