using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace TelemetryFunctions.Reporting;

/// <summary>
/// A CSV body (RFC 4180: comma separated, CRLF line ends, a header row, fields quoted when they hold a comma, a
/// quote or a line break, quotes doubled). Text cells that a spreadsheet would run as a formula (starting with
/// <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab or a carriage return) are prefixed with a single quote. Numbers are
/// written with the invariant culture and are never prefixed.
/// </summary>
public sealed class CsvResult : IResult
{
    private readonly byte[] _body;
    private readonly string _fileName;

    public CsvResult(string fileName, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<object?>> rows)
    {
        _fileName = fileName;
        var text = new StringBuilder();
        AppendRow(text, header.Cast<object?>().ToList());
        foreach (var row in rows)
        {
            AppendRow(text, row);
        }

        _body = Encoding.UTF8.GetBytes(text.ToString());
    }

    public string Text => Encoding.UTF8.GetString(_body);

    /// <summary>One field as it appears in the file.</summary>
    public static string Field(object? value) => value switch
    {
        null => "",
        string text => Quote(Neutralize(text)),
        DateOnly day => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTimeOffset instant => instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        double number => number.ToString("0.####", CultureInfo.InvariantCulture),
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        _ => Quote(Neutralize(value.ToString() ?? "")),
    };

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/csv; charset=utf-8; header=present";
        response.Headers.ContentDisposition = $"attachment; filename=\"{_fileName}\"";
        response.ContentLength = _body.Length;
        await response.Body.WriteAsync(_body, httpContext.RequestAborted);
    }

    private static void AppendRow(StringBuilder text, IReadOnlyList<object?> row)
    {
        for (var i = 0; i < row.Count; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            text.Append(Field(row[i]));
        }

        text.Append("\r\n");
    }

    private static string Neutralize(string text) =>
        text.Length > 0 && text[0] is '=' or '+' or '-' or '@' or '\t' or '\r' ? "'" + text : text;

    private static string Quote(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;
}
