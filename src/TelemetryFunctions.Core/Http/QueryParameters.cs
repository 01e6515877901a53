using Microsoft.AspNetCore.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Http;

/// <summary>The query-string rules the read and admin endpoints share.</summary>
public static class QueryParameters
{
    /// <summary>
    /// A 400 naming the first of <paramref name="names"/> given more than once (<c>from=...&amp;from=...</c>): which of
    /// the values was meant cannot be known, and a reason about the value's form would mislead when each is valid.
    /// </summary>
    public static IngestError? FindRepeated(HttpRequest request, params ReadOnlySpan<string> names)
    {
        foreach (var name in names)
        {
            if (request.Query[name].Count > 1)
            {
                return IngestError.BadRequest("repeated_parameter", $"{name} is given {request.Query[name].Count} times; give it once.");
            }
        }

        return null;
    }
}
