using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// How long a whole request body may take to arrive (wall clock, as the server's other network limits); ingest and the
/// usage-report upload read their bodies through it. A slow-drip sender that keeps just above the server's minimum data
/// rate would otherwise hold a request slot for as long as it likes; past the deadline the read fails and the request
/// is answered 408 with the connection closed.
/// </summary>
/// <remarks>
/// The deadline cancels the pending read through the body's own pipe rather than a cancellation token: a read
/// cancelled by token leaves the server's body reader in the middle of a read, and after the 408 the server then fails
/// to drain the rest of the body and logs that as an error, one for every slow sender.
/// </remarks>
internal sealed class BodyReadDeadline : IAsyncDisposable
{
    private readonly HttpRequest _request;
    private readonly CancellationTokenSource _deadline;
    private readonly CancellationTokenRegistration _cutOff;

    public BodyReadDeadline(HttpRequest request, TimeSpan limit)
    {
        _request = request;
        Limit = limit;
        _deadline = new CancellationTokenSource(limit);
        _cutOff = _deadline.Token.Register(static reader => ((PipeReader)reader!).CancelPendingRead(), request.BodyReader);
        Body = new PipeBodyStream(request.BodyReader);
    }

    public TimeSpan Limit { get; }

    /// <summary>The body, read from its pipe; a read the deadline cuts off throws <see cref="OperationCanceledException"/>.</summary>
    public Stream Body { get; }

    /// <summary>Whether a cancelled read was the deadline's doing rather than the client going away.</summary>
    public bool Passed(CancellationToken requestAborted) => _deadline.IsCancellationRequested && !requestAborted.IsCancellationRequested;

    /// <summary>The 408 answer to a body that missed the deadline; the connection is closed after it.</summary>
    public IngestError TimedOut()
    {
        _request.HttpContext.Response.Headers.Connection = "close";
        return IngestError.RequestTimeout(string.Create(CultureInfo.InvariantCulture, $"The request body did not arrive within {Limit.TotalSeconds:0} seconds."));
    }

    public async ValueTask DisposeAsync()
    {
        await _cutOff.DisposeAsync();
        _deadline.Dispose();
    }

    /// <summary>
    /// The request body read from its pipe. A read cut off by <see cref="PipeReader.CancelPendingRead"/> marks what it
    /// was given as unread and throws <see cref="OperationCanceledException"/>, which leaves the pipe ready for the
    /// server to drain what is left.
    /// </summary>
    private sealed class PipeBodyStream(PipeReader reader) : ReadOnlyForwardStream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var data = result.Buffer;
            if (result.IsCanceled)
            {
                reader.AdvanceTo(data.Start);
                throw new OperationCanceledException("The request body was cut off at its read deadline.");
            }

            var count = (int)Math.Min(buffer.Length, data.Length);
            data.Slice(0, count).CopyTo(buffer.Span);
            reader.AdvanceTo(data.GetPosition(count));
            return count;
        }
    }
}
