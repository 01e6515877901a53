using System.Diagnostics.CodeAnalysis;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// Injects the storage faults Azurite cannot produce, per HTTP request to storage (each SDK retry included):
/// an outage (503 without touching storage) or a lost response (the write is applied, then the connection drops,
/// so the SDK retries a write that already happened).
/// </summary>
public sealed class StorageFaults : HttpPipelinePolicy
{
    private int _outageRequestsLeft;
    private int _lostResponsesLeft;
    private int _outageStatus = 503;
    private Func<HttpMessage, bool> _matches = _ => false;

    public int Injected { get; private set; }

    /// <summary>The next <paramref name="requests"/> matching requests get <paramref name="status"/> (503 unless told) and never reach storage.</summary>
    public void Outage(Func<HttpMessage, bool> matches, int requests = int.MaxValue, int status = 503)
    {
        _matches = matches;
        _outageStatus = status;
        Volatile.Write(ref _outageRequestsLeft, requests);
    }

    /// <summary>The next <paramref name="requests"/> matching requests reach storage, but their responses are lost.</summary>
    public void LoseResponses(Func<HttpMessage, bool> matches, int requests = 1)
    {
        _matches = matches;
        Volatile.Write(ref _lostResponsesLeft, requests);
    }

    public void Heal()
    {
        Volatile.Write(ref _outageRequestsLeft, 0);
        Volatile.Write(ref _lostResponsesLeft, 0);
    }

    public static bool IsWrite(HttpMessage message) => message.Request.Method != RequestMethod.Get;

    public static bool IsWriteTo(HttpMessage message, string tableName) =>
        IsWrite(message) && (message.Request.Uri.Path.Contains(tableName, StringComparison.Ordinal) || message.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal));

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (_matches(message) && Interlocked.Decrement(ref _outageRequestsLeft) >= 0)
        {
            Injected++;
            message.Response = new StatusResponse(_outageStatus, _outageStatus == 503 ? "Server Busy" : "Injected");
            return;
        }

        await ProcessNextAsync(message, pipeline);

        if (_matches(message) && message.Response.Status < 300 && Interlocked.Decrement(ref _lostResponsesLeft) >= 0)
        {
            Injected++;
            throw new IOException("Injected fault: the write was applied but its response was lost.");
        }
    }

    private sealed class StatusResponse(int status, string reason) : Response
    {
        public override int Status => status;
        public override string ReasonPhrase => reason;
        public override Stream? ContentStream { get; set; } = new MemoryStream();
        public override string ClientRequestId { get; set; } = Guid.NewGuid().ToString();

        public override void Dispose() => ContentStream?.Dispose();

        protected override bool ContainsHeader(string name) => false;

        protected override IEnumerable<HttpHeader> EnumerateHeaders() => [];

        protected override bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
        {
            value = null;
            return false;
        }

        protected override bool TryGetHeaderValues(string name, [NotNullWhen(true)] out IEnumerable<string>? values)
        {
            values = null;
            return false;
        }
    }
}
