using System.Buffers;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace TelemetryFunctions.Ingestion;

/// <summary>A request body read into a pooled buffer. Dispose it to return the buffer.</summary>
public sealed class RequestBody : IDisposable
{
    private byte[]? _buffer;

    internal RequestBody(byte[] buffer, int offset, int length)
    {
        _buffer = buffer;
        Memory = buffer.AsMemory(offset, length);
    }

    public ReadOnlyMemory<byte> Memory { get; }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }
}

/// <summary>
/// Reads a request body under the size limits before any of it is parsed: the declared length, the bytes
/// actually sent (chunked bodies included) and the gzip-decompressed size are each capped, so neither a huge
/// upload nor a gzip bomb is ever held in memory.
/// </summary>
/// <remarks>
/// UTF-8 byte order mark policy: a leading BOM is accepted and skipped (some Windows tools write one);
/// any other invalid UTF-8, UTF-16 included, is refused with 400. A raw NUL byte, which JSON never allows, is
/// refused the same way: it is how UTF-16 or UTF-32 without a byte order mark looks.
/// </remarks>
public static class RequestBodyReader
{
    private const int ReadChunk = 16 * 1024;

    /// <summary>
    /// How the body is encoded: whether it is gzip-compressed (one <c>Content-Encoding</c>, gzip or identity, or none),
    /// or a 415 for any other content encoding, for stacked ones, and for a transfer coding other than chunked
    /// (<c>Transfer-Encoding: gzip, chunked</c>: the server removes the chunking and nothing else, so the body would
    /// arrive still compressed; compression belongs in Content-Encoding). Ingest and the usage-report upload read it here.
    /// </summary>
    public static (bool Gzip, IngestError? Error) ReadBodyEncoding(HttpRequest request)
    {
        foreach (var value in request.Headers.TransferEncoding)
        {
            foreach (var coding in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!coding.Equals("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    return (false, IngestError.UnsupportedMediaType("Transfer-Encoding may only be chunked; send a compressed body with Content-Encoding: gzip."));
                }
            }
        }

        var encodings = request.Headers.ContentEncoding;
        if (encodings.Count > 1 || (encodings.Count == 1 && encodings[0]!.Contains(',', StringComparison.Ordinal)))
        {
            return (false, IngestError.UnsupportedMediaType("Only one Content-Encoding is accepted: gzip or identity."));
        }

        var encoding = encodings.Count == 1 ? encodings[0]!.Trim() : "";
        return encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase) ? (true, null)
            : encoding.Length == 0 || encoding.Equals("identity", StringComparison.OrdinalIgnoreCase) ? (false, null)
            : (false, IngestError.UnsupportedMediaType("Content-Encoding must be gzip or identity."));
    }

    /// <summary>Reads the whole body, checking its type, encoding and size; an error says what to fix.</summary>
    /// <param name="request">The request whose body is read.</param>
    /// <param name="maxBytes">The largest body accepted, after decompression.</param>
    /// <param name="maxReadTime">
    /// How long the whole body may take to arrive (wall clock, as the server's other network limits). A slow-drip
    /// sender that keeps just above the server's minimum data rate would otherwise hold a request slot for many
    /// minutes; past the deadline the request is answered 408 and the connection closed.
    /// </param>
    /// <param name="cancellationToken">The request's own cancellation (the client went away).</param>
    public static async Task<(RequestBody? Body, IngestError? Error)> ReadAsync(HttpRequest request, int maxBytes, TimeSpan maxReadTime, CancellationToken cancellationToken)
    {
        if (CheckContentType(request.ContentType) is { } typeError)
        {
            return (null, typeError);
        }

        var (gzip, encodingError) = ReadBodyEncoding(request);
        if (encodingError is not null)
        {
            return (null, encodingError);
        }

        if (request.ContentLength > maxBytes)
        {
            return (null, IngestError.TooLarge($"The request body is larger than the limit of {maxBytes} bytes."));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(maxBytes + 1);
        CappedReadStream? compressed = null;
        await using var deadline = new BodyReadDeadline(request, maxReadTime);
        var body = deadline.Body;
        try
        {
            int length;
            if (gzip)
            {
                compressed = new CappedReadStream(body, maxBytes);
                await using var inflater = new SingleMemberGzipStream(compressed);
                length = await FillAsync(inflater, buffer, maxBytes + 1, cancellationToken);
                if (compressed.Exceeded)
                {
                    return Fail(buffer, IngestError.TooLarge($"The compressed request body is larger than the limit of {maxBytes} bytes."));
                }
            }
            else
            {
                length = await FillAsync(body, buffer, maxBytes + 1, cancellationToken);
            }

            if (length > maxBytes)
            {
                return Fail(buffer, IngestError.TooLarge(gzip
                    ? $"The request body decompresses to more than the limit of {maxBytes} bytes."
                    : $"The request body is larger than the limit of {maxBytes} bytes."));
            }

            var offset = 0;
            if (length >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF)
            {
                offset = 3;
            }

            var content = buffer.AsSpan(offset, length - offset);
            if (content.Trim(" \t\r\n"u8).IsEmpty)
            {
                return Fail(buffer, IngestError.BadRequest("empty_body", "The request body is empty."));
            }

            if (!Utf8.IsValid(content) || content.Contains((byte)0))
            {
                return Fail(buffer, IngestError.BadRequest("invalid_utf8", "The request body is not valid UTF-8 (UTF-16 and other encodings are not accepted)."));
            }

            return (new RequestBody(buffer, offset, length - offset), null);
        }
        catch (InvalidDataException) when (compressed is { Exceeded: true })
        {
            return Fail(buffer, IngestError.TooLarge($"The compressed request body is larger than the limit of {maxBytes} bytes."));
        }
        catch (InvalidDataException)
        {
            return Fail(buffer, IngestError.BadRequest("invalid_gzip", "The request body is not valid gzip data (corrupt, cut short, followed by other bytes, or more than one gzip member)."));
        }
        catch (BadHttpRequestException e)
        {
            return Fail(buffer, Refused(e));
        }
        catch (IOException)
        {
            return Fail(buffer, Incomplete());
        }
        catch (OperationCanceledException) when (deadline.Passed(cancellationToken))
        {
            return Fail(buffer, deadline.TimedOut());
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>
    /// The answer to a body the server refused to go on reading: the server's own status when it is a client error
    /// (408 for a body under its minimum data rate, 413 over its size limit), 400 for anything else.
    /// </summary>
    internal static IngestError Refused(BadHttpRequestException e) =>
        new(e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400, "bad_request_body", "The request body could not be read completely (too slow, cut off or malformed).");

    /// <summary>The answer to a body whose connection failed before it had all arrived.</summary>
    internal static IngestError Incomplete() => IngestError.BadRequest("bad_request_body", "The request body could not be read completely.");

    private static (RequestBody?, IngestError?) Fail(byte[] buffer, IngestError error)
    {
        ArrayPool<byte>.Shared.Return(buffer);
        return (null, error);
    }

    private const string WrongContentType = "Content-Type must be application/json, or text/plain holding JSON (as Segment's browser library sends it).";

    private static IngestError? CheckContentType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return IngestError.UnsupportedMediaType(WrongContentType);
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var mediaType))
        {
            return IngestError.UnsupportedMediaType("Content-Type is malformed; send application/json.");
        }

        var type = mediaType.MediaType.Value ?? "";
        // text/plain: Segment's browser library labels its JSON so, which lets a page send it cross-origin without a
        // preflight. The body must still be JSON, as with application/json.
        var isJson = type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.EndsWith("+json", StringComparison.OrdinalIgnoreCase))
            || type.Equals("text/plain", StringComparison.OrdinalIgnoreCase);
        if (!isJson)
        {
            return IngestError.UnsupportedMediaType(WrongContentType);
        }

        return CheckCharset(mediaType);
    }

    /// <summary>
    /// Refuses a charset other than UTF-8, or one named twice; a quoted value counts as the bare one. Ingest and the
    /// usage-report upload (for a JSON body) both answer with it.
    /// </summary>
    internal static IngestError? CheckCharset(MediaTypeHeaderValue mediaType)
    {
        var charsets = mediaType.Parameters.Where(p => p.Name.Equals("charset", StringComparison.OrdinalIgnoreCase)).ToList();
        if (charsets.Count > 1)
        {
            return IngestError.UnsupportedMediaType("Content-Type names a charset more than once; send one: charset=utf-8.");
        }

        // A parameter value may be a quoted string (RFC 9110): charset="utf-8" is the same as charset=utf-8.
        var charset = charsets.Count == 0 ? null : HeaderUtilities.RemoveQuotes(charsets[0].Value).Value;
        if (charset is not null && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            return IngestError.UnsupportedMediaType("Only the utf-8 charset is accepted.");
        }

        return null;
    }

    private static async Task<int> FillAsync(Stream source, byte[] buffer, int limit, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < limit)
        {
            var read = await source.ReadAsync(buffer.AsMemory(total, Math.Min(ReadChunk, limit - total)), cancellationToken);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    /// <summary>Passes reads through until <c>limit</c> bytes, then reports end of stream and remembers that more was sent.</summary>
    private sealed class CappedReadStream(Stream inner, int limit) : ReadOnlyForwardStream
    {
        private int _read;

        public bool Exceeded { get; private set; }

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit)
            {
                var probe = new byte[1];
                if (await inner.ReadAsync(probe, cancellationToken) > 0)
                {
                    Exceeded = true;
                }

                return 0;
            }

            var read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, limit - _read)], cancellationToken);
            _read += read;
            return read;
        }

    }
}
