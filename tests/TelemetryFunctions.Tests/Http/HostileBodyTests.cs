using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile request bodies (catalogue #2-#8, #10, #11): sizes on both sides of every limit, chunked and compressed
/// bodies, encodings and content types. Each refusal is a 4xx that names the problem, and writes nothing.
/// </summary>
public sealed class HostileBodyTests(AzuriteFixture azurite)
{
    private const int MaxRequestBytes = 500 * 1024;

    [Fact]
    public async Task A_body_of_exactly_the_request_limit_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var (body, events) = BatchOfSize(MaxRequestBytes);

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertAccepted(answer, events);
        Assert.Equal(events, (await Hostile.RawEventsAsync(host)).Count);
    }

    [Fact]
    public async Task A_body_one_byte_over_the_request_limit_is_refused_with_413()
    {
        await using var host = new LocalHostFactory(azurite);
        var (body, _) = BatchOfSize(MaxRequestBytes + 1);

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertRefused(answer, HttpStatusCode.RequestEntityTooLarge, $"limit of {MaxRequestBytes} bytes");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_batch_of_exactly_2500_events_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var body = TinyEventBatch(2500);
        Assert.True(body.Length <= MaxRequestBytes, "Tiny events keep 2,500 of them under the default body limit.");

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertAccepted(answer, 2500);
        Assert.Equal(2500, (await Hostile.RawEventsAsync(host)).Count);
    }

    [Fact]
    public async Task A_batch_of_2501_events_is_refused_and_nothing_is_stored()
    {
        await using var host = new LocalHostFactory(azurite);
        var body = TinyEventBatch(2501);
        Assert.True(body.Length <= MaxRequestBytes, "The event count, not the body size, is what is over the limit.");

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertRefused(answer, HttpStatusCode.RequestEntityTooLarge, "the limit is 2500");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_chunked_body_far_over_the_limit_is_refused_with_413_without_being_read_to_the_end()
    {
        await using var host = new LocalHostFactory(azurite);
        const long sent = 1024L * 1024 * 1024;
        var body = new EndlessBatchStream(sent);

        var answer = await PostStraightAsync(host, "chunked", body);

        Hostile.AssertRefused(answer, HttpStatusCode.RequestEntityTooLarge, $"limit of {MaxRequestBytes} bytes");
        Assert.True(body.Produced <= 2 * MaxRequestBytes, $"The server read {body.Produced} bytes of a {sent}-byte body.");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("deflate,chunked")]
    public async Task A_transfer_coding_other_than_chunked_is_refused_with_415(string codings)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()));

        var answer = await PostStraightAsync(host, codings, new MemoryStream(json));

        Hostile.AssertRefused(answer, HttpStatusCode.UnsupportedMediaType, "Transfer-Encoding may only be chunked");
        await Hostile.AssertNothingStoredAsync(host);
    }

    /// <summary>
    /// Posts a batch body straight into the server with the given Transfer-Encoding and no Content-Length, so nothing on
    /// the client side buffers the body or gives it a length.
    /// </summary>
    private static async Task<IngestAnswer> PostStraightAsync(LocalHostFactory host, string transferEncoding, Stream body)
    {
        var context = await host.Server.SendAsync(
            c =>
            {
                c.Request.Method = HttpMethods.Post;
                c.Request.Path = "/v1/batch";
                c.Request.ContentType = "application/json";
                c.Request.Headers.Authorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(LocalHostFactory.WriteKey + ":"));
                c.Request.Headers.TransferEncoding = transferEncoding;
                c.Request.Body = body;
            },
            Hostile.Cancel);

        Assert.Null(context.Request.ContentLength);
        var text = await new StreamReader(context.Response.Body).ReadToEndAsync(Hostile.Cancel);
        return new IngestAnswer((HttpStatusCode)context.Response.StatusCode, null, text, JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task A_body_without_a_declared_length_under_the_limit_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()));
        var content = new StreamContent(new NonSeekableStream(json));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", content);

        Hostile.AssertAccepted(answer, 1);
    }

    [Fact]
    public async Task A_gzip_bomb_is_refused_with_413_and_nothing_is_stored()
    {
        await using var host = new LocalHostFactory(azurite);
        const int inflated = 50 * 1024 * 1024;
        var bomb = Gzip(BombJson(inflated));
        Assert.True(bomb.Length < 64 * 1024, $"The bomb is {bomb.Length} bytes compressed.");

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", Gzipped(bomb));

        Hostile.AssertRefused(answer, HttpStatusCode.RequestEntityTooLarge, $"decompresses to more than the limit of {MaxRequestBytes} bytes");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_gzip_body_that_inflates_to_exactly_the_limit_is_accepted()
    {
        await using var host = new LocalHostFactory(azurite);
        var (body, events) = BatchOfSize(MaxRequestBytes);

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", Gzipped(Gzip(body)));

        Hostile.AssertAccepted(answer, events);
    }

    [Fact]
    public async Task A_gzip_body_that_inflates_to_one_byte_over_the_limit_is_refused_with_413()
    {
        await using var host = new LocalHostFactory(azurite);
        var (body, _) = BatchOfSize(MaxRequestBytes + 1);

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", Gzipped(Gzip(body)));

        Hostile.AssertRefused(answer, HttpStatusCode.RequestEntityTooLarge, "decompresses to more than");
        await Hostile.AssertNothingStoredAsync(host);
    }

    /// <summary>
    /// Each kind of corruption, and the reason it is refused with. The runtime's gzip decoder ends data cut short
    /// without an error and ignores bytes after the trailer; the reader checks the trailer itself, so each of these
    /// is refused as gzip, not stored or left to the JSON parser. Several gzip members (valid per RFC 1952, never
    /// sent by a Segment SDK) are refused too.
    /// </summary>
    public static TheoryData<string, string> CorruptGzipKinds => new()
    {
        { "not gzip at all", "not valid gzip" },
        { "garbage after a gzip header", "not valid gzip" },
        { "flipped bytes in the deflate stream", "not valid gzip" },
        { "wrong checksum", "not valid gzip" },
        { "wrong length in the trailer", "not valid gzip" },
        { "cut in half", "not valid gzip" },
        { "trailer cut off", "not valid gzip" },
        { "last byte cut off", "not valid gzip" },
        { "garbage after the trailer", "not valid gzip" },
        { "one byte after the trailer", "not valid gzip" },
        { "two gzip members", "not valid gzip" },
    };
    [Theory]
    [MemberData(nameof(CorruptGzipKinds))]
    public async Task Corrupt_gzip_is_refused_with_400_and_nothing_is_stored(string kind, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var good = Gzip(Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson(), Hostile.TrackJson())));
        var body = kind switch
        {
            "not gzip at all" => Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson())),
            "garbage after a gzip header" => [.. good[..10], .. Enumerable.Repeat((byte)0xFF, 64)],
            "flipped bytes in the deflate stream" => Flip(good, 12, 13, 14, 15),
            "wrong checksum" => Flip(good, good.Length - 8),
            "wrong length in the trailer" => Flip(good, good.Length - 4),
            "cut in half" => good[..(good.Length / 2)],
            "trailer cut off" => good[..^8],
            "last byte cut off" => good[..^1],
            "garbage after the trailer" => [.. good, .. "GARBAGE"u8.ToArray()],
            "one byte after the trailer" => [.. good, 0x00],
            "two gzip members" => [.. Gzip(Encoding.UTF8.GetBytes("{\"batch\":[")), .. Gzip(Encoding.UTF8.GetBytes(Hostile.TrackJson() + "]}"))],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", Gzipped(body));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("br")]
    [InlineData("deflate")]
    [InlineData("compress")]
    [InlineData("gzip, gzip")]
    [InlineData("gzip, identity")]
    public async Task Unknown_or_stacked_content_encodings_are_refused_with_415(string encoding)
    {
        await using var host = new LocalHostFactory(azurite);
        var content = new ByteArrayContent(Gzip(Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()))));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        Assert.True(content.Headers.TryAddWithoutValidation("Content-Encoding", encoding));

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", content);

        Hostile.AssertRefused(answer, HttpStatusCode.UnsupportedMediaType, "Content-Encoding");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task Two_content_encoding_headers_are_refused_with_415()
    {
        await using var host = new LocalHostFactory(azurite);
        var content = Gzipped(Gzip(Gzip(Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson())))));
        content.Headers.ContentEncoding.Add("gzip");
        Assert.Equal(2, content.Headers.ContentEncoding.Count);

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", content);

        Hostile.AssertRefused(answer, HttpStatusCode.UnsupportedMediaType, "Content-Encoding");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("text/html", "Content-Type must be application/json")]
    [InlineData("text/plain; charset=utf-16", "utf-8 charset")]
    [InlineData("application/x-www-form-urlencoded", "Content-Type must be application/json")]
    [InlineData("multipart/form-data; boundary=x", "Content-Type must be application/json")]
    [InlineData("application/xml", "Content-Type must be application/json, or text/plain holding JSON")]
    [InlineData("application/json; charset=utf-16", "utf-8 charset")]
    [InlineData("application/json; charset=iso-8859-1", "utf-8 charset")]
    [InlineData("application/json; charset=utf-8; charset=latin1", "charset more than once")]
    [InlineData("application/json; charset=utf-8; CHARSET=utf-8", "charset more than once")]
    [InlineData("application/json; charset=\"latin1\"", "utf-8 charset")]
    [InlineData("json", "Content-Type is malformed")]
    [InlineData(null, "Content-Type must be application/json")]
    public async Task A_wrong_content_type_is_refused_with_415(string? contentType, string reason)
    {
        await using var host = new LocalHostFactory(azurite);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson())));
        if (contentType is not null)
        {
            Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));
        }

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", content);

        Hostile.AssertRefused(answer, HttpStatusCode.UnsupportedMediaType, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("application/json; charset=UTF-8")]
    [InlineData("application/json;charset=utf8")]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json; charset=\"UTF-8\"")]
    [InlineData("APPLICATION/JSON")]
    [InlineData("application/vnd.segment+json")]
    public async Task Json_content_types_are_accepted(string contentType)
    {
        await using var host = new LocalHostFactory(azurite);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson())));
        Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", content);

        Hostile.AssertAccepted(answer, 1);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData(" \r\n\t \n")]
    public async Task An_empty_or_whitespace_body_is_refused_with_400(string body)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "empty");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_leading_utf8_byte_order_mark_is_accepted_and_skipped()
    {
        await using var host = new LocalHostFactory(azurite);
        byte[] body = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()))];

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertAccepted(answer, 1);
        Assert.Single(await Hostile.RawEventsAsync(host));
    }

    [Fact]
    public async Task A_leading_byte_order_mark_on_a_gzip_body_is_accepted_too()
    {
        await using var host = new LocalHostFactory(azurite);
        byte[] body = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()))];

        var answer = await Hostile.PostAsync(host.CreateSegmentClient(), "/v1/batch", Gzipped(Gzip(body)));

        Hostile.AssertAccepted(answer, 1);
    }

    [Fact]
    public async Task Only_one_byte_order_mark_is_skipped()
    {
        await using var host = new LocalHostFactory(azurite);
        byte[] body = [0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson()))];

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "not valid JSON");
        await Hostile.AssertNothingStoredAsync(host);
    }

    public static TheoryData<string> Utf16Kinds => ["UTF-16 LE with BOM", "UTF-16 BE with BOM", "UTF-16 LE without BOM", "UTF-16 BE without BOM", "UTF-32 LE with BOM"];

    [Theory]
    [MemberData(nameof(Utf16Kinds))]
    public async Task A_utf16_or_utf32_body_is_refused_with_400_naming_the_encoding(string kind)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.BatchJson(Hostile.TrackJson());
        Encoding encoding = kind switch
        {
            "UTF-16 LE with BOM" or "UTF-16 LE without BOM" => new UnicodeEncoding(bigEndian: false, byteOrderMark: true),
            "UTF-16 BE with BOM" or "UTF-16 BE without BOM" => new UnicodeEncoding(bigEndian: true, byteOrderMark: true),
            _ => new UTF32Encoding(bigEndian: false, byteOrderMark: true),
        };
        var preamble = kind.EndsWith("with BOM", StringComparison.Ordinal) ? encoding.GetPreamble() : [];
        byte[] body = [.. preamble, .. encoding.GetBytes(json)];

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "UTF-8");
        await Hostile.AssertNothingStoredAsync(host);
    }

    public static TheoryData<string, byte[]> InvalidUtf8 => new()
    {
        { "0xFF", [0xFF] },
        { "0xFE", [0xFE] },
        { "overlong '/' (C0 AF)", [0xC0, 0xAF] },
        { "overlong NUL (C0 80)", [0xC0, 0x80] },
        { "lone continuation byte", [0x80] },
        { "truncated 3-byte sequence", [0xE2, 0x82] },
        { "encoded surrogate (ED A0 80)", [0xED, 0xA0, 0x80] },
        { "code point above U+10FFFF", [0xF4, 0x90, 0x80, 0x80] },
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public async Task Invalid_utf8_inside_a_string_is_refused_with_400(string description, byte[] bad)
    {
        await using var host = new LocalHostFactory(azurite);
        var json = Hostile.BatchJson(Hostile.TrackJson(extra: "\"properties\":{\"note\":\"a@@b\"}").Replace("@@", "\u0001", StringComparison.Ordinal), Hostile.TrackJson());
        var bytes = Encoding.UTF8.GetBytes(json);
        var at = Array.IndexOf(bytes, (byte)0x01);
        byte[] body = [.. bytes[..at], .. bad, .. bytes[(at + 1)..]];

        var answer = await Hostile.PostBytesAsync(host.CreateSegmentClient(), "/v1/batch", body);

        Assert.True(answer.Status == HttpStatusCode.BadRequest, $"{description}: {answer}");
        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, "not valid UTF-8");
        await Hostile.AssertNothingStoredAsync(host);
    }

    /// <summary>A batch whose body is exactly <paramref name="total"/> bytes, in events of about 30,000 bytes (each under the event limit).</summary>
    internal static (byte[] Body, int Events) BatchOfSize(int total)
    {
        const int wrapper = 12; // {"batch":[ and ]}
        var events = (int)Math.Ceiling(total / 30_000.0);
        var available = total - wrapper - (events - 1);
        var each = available / events;
        var list = new List<string>();
        for (var i = 0; i < events; i++)
        {
            var size = i == events - 1 ? available - (each * (events - 1)) : each;
            list.Add(Hostile.TrackOfSize(size).ToJsonString());
        }

        var body = Encoding.UTF8.GetBytes(Hostile.BatchJson([.. list]));
        Assert.Equal(total, body.Length);
        return (body, events);
    }

    private static byte[] TinyEventBatch(int count)
    {
        var events = Enumerable.Range(0, count).Select(i => $$"""{"type":"track","event":"e","userId":"u","messageId":"m{{i}}"}""");
        return Encoding.UTF8.GetBytes(Hostile.BatchJson([.. events]));
    }

    /// <summary>A one-event batch whose single property is <paramref name="inflated"/> bytes of 'a', written straight into gzip.</summary>
    private static byte[] BombJson(int inflated)
    {
        var head = Encoding.UTF8.GetBytes(Hostile.BatchJson(Hostile.TrackJson(extra: "\"properties\":{\"pad\":\"@@\"}")));
        var split = Array.IndexOf(head, (byte)'@');
        var output = new MemoryStream();
        output.Write(head, 0, split);
        var chunk = Enumerable.Repeat((byte)'a', 1024 * 1024).ToArray();
        for (var written = 0; written < inflated; written += chunk.Length)
        {
            output.Write(chunk);
        }

        output.Write(head, split + 2, head.Length - split - 2);
        return output.ToArray();
    }

    internal static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    internal static ByteArrayContent Gzipped(byte[] compressed)
    {
        var content = Segment.Bytes(compressed);
        content.Headers.ContentEncoding.Add("gzip");
        return content;
    }

    private static byte[] Flip(byte[] data, params int[] positions)
    {
        var copy = (byte[])data.Clone();
        foreach (var p in positions)
        {
            copy[p] ^= 0x5A;
        }

        return copy;
    }

    /// <summary>A batch that starts like JSON and goes on for <c>length</c> bytes, counting what the server pulled.</summary>
    private sealed class EndlessBatchStream(long length) : Stream
    {
        private static readonly byte[] Start = Encoding.UTF8.GetBytes("{\"batch\":[{\"type\":\"track\",\"event\":\"e\",\"userId\":\"u\",\"properties\":{\"pad\":\"");

        public long Produced { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Produced; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - Produced);
            for (var i = 0; i < n; i++)
            {
                var at = Produced + i;
                buffer[i] = at < Start.Length ? Start[at] : (byte)'a';
            }

            Produced += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
