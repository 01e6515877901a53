using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Reporting;

/// <summary>The representation a list endpoint answers with.</summary>
public enum TableFormat
{
    Json,
    Csv,
}

public static partial class TableFormats
{
    public const string CsvMediaType = "text/csv";

    /// <summary>
    /// <c>format=json|csv</c> decides when given; otherwise CSV when the Accept header prefers <c>text/csv</c> to JSON,
    /// else JSON (so browsers and clients that send <c>*/*</c> get JSON).
    /// </summary>
    public static (TableFormat Format, IngestError? Error) Negotiate(HttpRequest request)
    {
        var format = request.Query["format"].ToString();
        if (format.Length > 0)
        {
            return format.ToUpperInvariant() switch
            {
                "JSON" => (TableFormat.Json, null),
                "CSV" => (TableFormat.Csv, null),
                _ => (TableFormat.Json, IngestError.BadRequest("invalid_format", "format is json or csv.")),
            };
        }

        if (!MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepted))
        {
            return (TableFormat.Json, null);
        }

        double csv = 0, json = 0;
        foreach (var media in accepted)
        {
            var quality = Weight(media);
            if (media.MediaType.Equals(CsvMediaType, StringComparison.OrdinalIgnoreCase))
            {
                csv = Math.Max(csv, quality);
            }
            else if (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            {
                json = Math.Max(json, quality);
            }
        }

        return (csv > 0 && csv > json ? TableFormat.Csv : TableFormat.Json, null);
    }

    /// <summary>
    /// A media range's q, 1 when it has none. A q that is not a qvalue as HTTP spells it (0 to 1 with at most three
    /// decimals: not q=NaN, q=-1, q=2 or q=1e999) counts for nothing rather than as q=1, so it cannot make the answer CSV.
    /// </summary>
    private static double Weight(MediaTypeHeaderValue media)
    {
        var q = media.Parameters.FirstOrDefault(p => p.Name.Equals("q", StringComparison.OrdinalIgnoreCase));
        if (q is null)
        {
            return 1;
        }

        var value = q.Value.Value ?? "";
        return QValue().IsMatch(value) ? double.Parse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\z", RegexOptions.CultureInvariant)]
    private static partial Regex QValue();
}
