using Microsoft.Extensions.Logging;

namespace TelemetryFunctions.Http;

/// <summary>
/// Keeps request URLs out of the logs. A URL can hold a raw identifier (<c>/api/instances/{instanceId}</c>, which the
/// read API looks up as sent) and a key (<c>?code=</c>), and ASP.NET Core writes it in these categories: the request
/// start and finish lines (Information), the routing matcher's candidates for a path (Debug), Kestrel's rejected request
/// lines (Debug). Both hosts cap them at Warning in code, after the configuration's rules: a configured level for
/// <c>Default</c>, <c>Microsoft.AspNetCore</c> or one of these categories loses to the cap (of rules as specific, the
/// last added wins). Only a rule for a category below one of these (<c>Microsoft.AspNetCore.Routing.Matching</c>) or a
/// provider's own rule (<c>Logging:Console:LogLevel</c>) is more specific and can bring URLs back (README, Logs).
/// </summary>
public static class RequestUrlLogging
{
    /// <summary>The categories that log a request's URL or path below Warning.</summary>
    public static readonly IReadOnlyList<string> Categories =
    [
        "Microsoft.AspNetCore.Hosting.Diagnostics",
        "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Server.Kestrel",
    ];

    /// <summary>Caps <see cref="Categories"/> at Warning.</summary>
    public static ILoggingBuilder KeepRequestUrlsOutOfLogs(this ILoggingBuilder logging)
    {
        foreach (var category in Categories)
        {
            logging.AddFilter(category, LogLevel.Warning);
        }

        return logging;
    }
}
