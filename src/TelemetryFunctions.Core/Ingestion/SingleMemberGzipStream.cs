using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// Decompresses gzip data that must be exactly one complete gzip member, and fails with
/// <see cref="InvalidDataException"/> when it is not.
/// </summary>
/// <remarks>
/// The runtime's <see cref="GZipStream"/> checks the trailer (CRC-32 and length) only when it is present: data cut
/// short inside the deflate stream or the trailer simply ends, and bytes after the trailer that do not start another
/// member are ignored. This stream checks both at the end: nothing follows what the decoder read, and the last eight
/// bytes of the input are the CRC-32 and length (ISIZE) of everything decompressed. That also refuses data of several
/// gzip members (valid per RFC 1952, but no Segment SDK sends it): the last trailer covers only the last member.
/// Memory stays bounded: only the last eight input bytes and a running CRC are kept. One case gets through: the
/// member's own eight trailer bytes appended again (they pass as its trailer); what is decompressed is then still
/// exactly what the sender compressed and checked by CRC.
/// </remarks>
internal sealed class SingleMemberGzipStream : ReadOnlyForwardStream
{
    private const int TrailerBytes = 8;
    private const int MinimumMemberBytes = 18; // 10-byte header, an empty deflate block (2 bytes at least), trailer

    private readonly TailRecordingStream _input;
    private readonly GZipStream _gzip;
    private readonly Crc32 _crc = new();
    private long _length;
    private bool _verified;

    public SingleMemberGzipStream(Stream compressed)
    {
        _input = new TailRecordingStream(compressed);
        _gzip = new GZipStream(_input, CompressionMode.Decompress, leaveOpen: true);
    }

    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_verified || buffer.IsEmpty)
        {
            return 0;
        }

        var read = await _gzip.ReadAsync(buffer, cancellationToken);
        if (read > 0)
        {
            _crc.Append(buffer.Span[..read]);
            _length += read;
            return read;
        }

        await VerifyEndAsync(cancellationToken);
        _verified = true;
        return 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gzip.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _gzip.DisposeAsync();
        await base.DisposeAsync();
    }

    private async Task VerifyEndAsync(CancellationToken cancellationToken)
    {
        var probe = new byte[1];
        if (await _input.ReadAsync(probe, cancellationToken) > 0)
        {
            throw new InvalidDataException("Bytes follow the end of the gzip data.");
        }

        if (_input.Total < MinimumMemberBytes)
        {
            throw new InvalidDataException("The gzip data is cut short.");
        }

        var tail = _input.Tail;
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        var size = BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
        if (crc != _crc.GetCurrentHashAsUInt32() || size != (uint)_length)
        {
            throw new InvalidDataException("The gzip data does not end with the trailer of what it holds: it is cut short, has bytes after its trailer, or holds more than one member.");
        }
    }

    /// <summary>Passes reads through, counting the bytes and keeping the last eight.</summary>
    private sealed class TailRecordingStream(Stream inner) : ReadOnlyForwardStream
    {
        private readonly byte[] _tail = new byte[TrailerBytes];

        public long Total { get; private set; }

        /// <summary>The last eight bytes read, oldest first (valid once at least eight were read).</summary>
        public ReadOnlySpan<byte> Tail => _tail;

        public override long Position { get => Total; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            Remember(buffer.Span[..read]);
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            Remember(buffer.AsSpan(offset, read));
            return read;
        }

        private void Remember(ReadOnlySpan<byte> read)
        {
            if (read.Length >= TrailerBytes)
            {
                read[^TrailerBytes..].CopyTo(_tail);
            }
            else if (read.Length > 0)
            {
                _tail.AsSpan(read.Length).CopyTo(_tail);
                read.CopyTo(_tail.AsSpan(TrailerBytes - read.Length));
            }

            Total += read.Length;
        }
    }
}
