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
    /// <c>format=json|csv</c> decides when given; otherwise CSV when the Accept header weighs <c>text/csv</c> above
    /// JSON, else JSON. Each is weighed as RFC 9110 (section 12.5.1) says: by the q of the most specific media range
    /// that matches it (<c>text/csv</c>, then <c>text/*</c>, then <c>*/*</c> for CSV; <c>application/json</c>, then
    /// <c>application/*</c>, then <c>*/*</c> for JSON), nothing when none does. A tie is JSON, so browsers and clients
    /// that send <c>*/*</c> get JSON, and so does <c>text/csv;q=0.5, */*</c>.
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

        var csv = new Preference();
        var json = new Preference();
        foreach (var media in accepted)
        {
            var quality = Weight(media);
            csv = csv.With(Specificity(media, "text", "csv"), quality);
            json = json.With(Specificity(media, "application", "json"), quality);
        }

        return (csv.Quality > json.Quality ? TableFormat.Csv : TableFormat.Json, null);
    }

    /// <summary>How specifically a media range names <paramref name="type"/>/<paramref name="subtype"/>: 3 exactly, 2 by <c>type/*</c>, 1 by <c>*/*</c>, 0 not at all.</summary>
    private static int Specificity(MediaTypeHeaderValue media, string type, string subtype)
    {
        var mediaType = media.MediaType.Value ?? "";
        return mediaType.Equals($"{type}/{subtype}", StringComparison.OrdinalIgnoreCase) ? 3
            : mediaType.Equals($"{type}/*", StringComparison.OrdinalIgnoreCase) ? 2
            : mediaType == "*/*" ? 1
            : 0;
    }

    /// <summary>
    /// The q of the most specific range seen so far that matches a representation (none: 0). Ranges equally specific
    /// (the same type given twice, or with different parameters) count for their largest q.
    /// </summary>
    private readonly record struct Preference(int Specificity, double Quality)
    {
        public Preference With(int specificity, double quality) =>
            specificity == 0 || specificity < Specificity ? this
            : specificity > Specificity ? new Preference(specificity, quality)
            : this with { Quality = Math.Max(Quality, quality) };
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
