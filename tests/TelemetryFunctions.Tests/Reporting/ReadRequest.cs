using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Reporting;

/// <summary>
/// A request to a route that is not ingest, and the answer it must get. <see cref="Code"/> is the JSON error code of a
/// refusal; a refusal with none is one the server itself answers before the application runs (Kestrel's 400 for a
/// NUL in the path, 414 for a request line over its limit), with an empty body. A 2xx answer must have
/// <see cref="MediaType"/>.
/// </summary>
internal sealed record ReadRequest(string Target, int Status, string? Code = null, string? Reason = null)
{
    public string Method { get; init; } = "GET";

    /// <summary>The <c>x-functions-key</c> header; null sends none.</summary>
    public string? Key { get; init; } = ReadApiTests.AdminKey;

    /// <summary>Further header lines, <c>Name: value</c>; a name given twice is sent twice.</summary>
    public string[] Headers { get; init; } = [];

    public string MediaType { get; init; } = "application/json";

    public override string ToString() =>
        $"{Method} {Shorten(Target)}{(Key is null ? " (no key)" : Key == ReadApiTests.AdminKey ? "" : $" (key '{Shorten(Key)}')")}{string.Concat(Headers.Select(h => $" [{Shorten(h)}]"))}";

    public static string Shorten(string text) =>
        (text.Length <= 160 ? text : text[..160] + $"... ({text.Length.ToString(CultureInfo.InvariantCulture)} chars)").Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
}

/// <summary>An answer as received: status, media type and body text.</summary>
internal sealed record ReadAnswer(int Status, string? MediaType, string Body)
{
    public override string ToString() => $"{Status.ToString(CultureInfo.InvariantCulture)} {MediaType} {ReadRequest.Shorten(Body)}";
}

/// <summary>Sends <see cref="ReadRequest"/>s in process or over a socket as written, and judges their answers.</summary>
internal static class ReadRequests
{
    public const string ReportKey = "dev-usage-report-key";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>Through the in-process test server (the target goes through <see cref="Uri"/>, which removes dot segments).</summary>
    public static async Task<ReadAnswer> SendAsync(HttpClient client, ReadRequest request)
    {
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Target);
        if (request.Key is not null)
        {
            message.Headers.TryAddWithoutValidation("x-functions-key", request.Key);
        }

        foreach (var line in request.Headers)
        {
            var (name, value) = Split(line);
            message.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await client.SendAsync(message, Cancel);
        return new ReadAnswer((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(Cancel));
    }

    /// <summary>Over a socket to a host on Kestrel, the request target and headers byte for byte as given.</summary>
    public static async Task<ReadAnswer> SendRawAsync(LocalHostProcess host, ReadRequest request)
    {
        var head = new StringBuilder($"{request.Method} {request.Target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if (request.Key is not null)
        {
            head.Append("x-functions-key: ").Append(request.Key).Append("\r\n");
        }

        foreach (var line in request.Headers)
        {
            head.Append(line).Append("\r\n");
        }

        head.Append("\r\n");
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", host.Port, Cancel);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(head.ToString()), Cancel);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, Cancel);
        var text = Encoding.UTF8.GetString(buffer.ToArray());

        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"{request}: no complete response: {ReadRequest.Shorten(text)}");
        var lines = text[..end].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(Split).ToLookup(h => h.Name, h => h.Value, StringComparer.OrdinalIgnoreCase);
        var body = text[(end + 4)..];
        if (headers["Transfer-Encoding"].Any(v => v.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            body = Unchunk(body);
        }

        var mediaType = headers["Content-Type"].FirstOrDefault() is { } type ? MediaTypeHeaderValue.Parse(type).MediaType : null;
        return new ReadAnswer(status, mediaType, body);
    }

    /// <summary>
    /// What is wrong with <paramref name="answer"/> for <paramref name="request"/>, or null. A HEAD answer has the
    /// status and type of its GET; only a real server drops its body (<paramref name="bodyDropped"/>), the in-process
    /// test server passes it on, so then the body is not judged.
    /// </summary>
    public static string? Problem(ReadRequest request, ReadAnswer answer, bool bodyDropped = false)
    {
        if (answer.Status != request.Status)
        {
            return $"expected {request.Status.ToString(CultureInfo.InvariantCulture)}";
        }

        var head = request.Method == "HEAD";
        if (answer.Status < 400)
        {
            if (answer.MediaType != request.MediaType)
            {
                return $"expected {request.MediaType}";
            }

            return !head ? ContentProblem(answer) : !bodyDropped || answer.Body.Length == 0 ? null : "a HEAD answer with a body";
        }

        if (request.Code is null)
        {
            return answer.Body.Length == 0 ? null : "expected the server's own refusal, with no body";
        }

        if (head)
        {
            return answer.MediaType != "application/json" ? "a HEAD refusal that is not JSON-typed" : !bodyDropped || answer.Body.Length == 0 ? null : "a HEAD refusal with a body";
        }

        return ErrorProblem(answer, request.Code, request.Reason);
    }

    /// <summary>A refusal in the project's shape: JSON <c>{"success":false,"error":{"code","message"}}</c>, with the code and reason when given.</summary>
    public static string? ErrorProblem(ReadAnswer answer, string? code, string? reason)
    {
        if (answer.MediaType != "application/json")
        {
            return "a refusal that is not JSON";
        }

        JsonElement body;
        try
        {
            body = JsonDocument.Parse(answer.Body).RootElement.Clone();
        }
        catch (JsonException)
        {
            return "a refusal whose body does not parse as JSON";
        }

        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("success", out var success) || success.ValueKind != JsonValueKind.False
            || !body.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object
            || !error.TryGetProperty("code", out var codeValue) || !error.TryGetProperty("message", out var message)
            || message.GetString() is not { Length: > 0 } text)
        {
            return "a refusal without success: false and an error code and message";
        }

        if (code is not null && codeValue.GetString() != code)
        {
            return $"expected the error code {code}";
        }

        return reason is not null && !text.Contains(reason, StringComparison.OrdinalIgnoreCase) ? $"expected a reason containing '{reason}'" : null;
    }

    /// <summary>A 2xx body that is what its media type says: JSON that parses, CSV with a header row, the page, a script or a stylesheet.</summary>
    public static string? ContentProblem(ReadAnswer answer)
    {
        switch (answer.MediaType)
        {
            case "application/json":
                try
                {
                    using var document = JsonDocument.Parse(answer.Body);
                    return document.RootElement.ValueKind == JsonValueKind.Object ? null : "a JSON answer that is not an object";
                }
                catch (JsonException)
                {
                    return "a JSON answer that does not parse";
                }

            case "text/csv":
                return answer.Body.Contains("\r\n", StringComparison.Ordinal) && answer.Body.Split("\r\n")[0].Length > 0 ? null : "a CSV answer without a header row";
            case "text/html":
                return answer.Body.StartsWith("<!doctype html>", StringComparison.OrdinalIgnoreCase) ? null : "an HTML answer that is not the page";
            case "text/javascript" or "text/css":
                return answer.Body.Length > 0 ? null : "an empty asset";
            default:
                return "an unexpected media type";
        }
    }

    public static async Task AssertNothingStoredAsync(StorageProbe tables)
    {
        var written = (await tables.AllRowsAsync()).Where(t => t.Value.Count > 0).Select(t => $"{t.Key}: {t.Value.Count.ToString(CultureInfo.InvariantCulture)}").ToList();
        Assert.True(written.Count == 0, "Rows were written: " + string.Join(", ", written));
    }

    private static (string Name, string Value) Split(string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        return (line[..colon].Trim(), line[(colon + 1)..].Trim());
    }

    private static string Unchunk(string body)
    {
        var text = new StringBuilder();
        var at = 0;
        while (at < body.Length)
        {
            var lineEnd = body.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = int.Parse(body[at..lineEnd].Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                break;
            }

            // Chunk sizes count bytes; the bodies these tests read chunked (CSV) are ASCII.
            text.Append(body, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }

        return text.ToString();
    }
}
