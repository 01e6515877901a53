using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace TelemetryFunctions.Benchmarks;

/// <summary>
/// Where the host's requests spend their time: every storage call the host makes (by table and operation, timed from
/// sending the request to receiving the response, retries separately) and, per HTTP request, the time the server
/// spent in it and how much of that was spent waiting for storage.
/// </summary>
/// <remarks>
/// Installed into the host as a storage pipeline policy (the same hook the host offers for fault injection) and a
/// middleware ahead of the routes. Storage calls are attributed to the HTTP request that made them through an
/// <see cref="AsyncLocal{T}"/>. A request's storage time is the time during which at least one of its calls was in
/// flight, so calls it makes side by side count once, and the rest of the request is the host's own work.
/// </remarks>
internal sealed partial class StorageProfile(string tablePrefix) : HttpPipelinePolicy
{
    private readonly AsyncLocal<RequestTally?> _current = new();
    private ConcurrentDictionary<string, OperationTally> _operations = new(StringComparer.Ordinal);
    private long _requests;
    private long _serverTicks;
    private long _storageTicks;
    private long _storageCalls;

    /// <summary>Forgets everything counted so far (the warm-up).</summary>
    public void Reset()
    {
        _operations = new ConcurrentDictionary<string, OperationTally>(StringComparer.Ordinal);
        Interlocked.Exchange(ref _requests, 0);
        Interlocked.Exchange(ref _serverTicks, 0);
        Interlocked.Exchange(ref _storageTicks, 0);
        Interlocked.Exchange(ref _storageCalls, 0);
    }

    public ProfileSummary Summarize()
    {
        var operations = _operations
            .Select(o => new OperationSummary(o.Key, o.Value.Count, Stopwatch.GetElapsedTime(0, o.Value.Ticks), Stopwatch.GetElapsedTime(0, o.Value.MaxTicks)))
            .OrderByDescending(o => o.Total)
            .ToList();
        return new ProfileSummary(
            Interlocked.Read(ref _requests),
            Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _serverTicks)),
            Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _storageTicks)),
            Interlocked.Read(ref _storageCalls),
            operations);
    }

    /// <summary>Times each HTTP request on the server and collects the storage time spent under it.</summary>
    public IStartupFilter Middleware() => new StartupFilter(this);

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var start = Stopwatch.GetTimestamp();
        var request = _current.Value;
        request?.CallStarted(start);
        try
        {
            ProcessNext(message, pipeline);
        }
        finally
        {
            Record(message, request, start, Stopwatch.GetTimestamp());
        }
    }

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var start = Stopwatch.GetTimestamp();
        var request = _current.Value;
        request?.CallStarted(start);
        try
        {
            await ProcessNextAsync(message, pipeline);
        }
        finally
        {
            Record(message, request, start, Stopwatch.GetTimestamp());
        }
    }

    private void Record(HttpMessage message, RequestTally? request, long start, long end)
    {
        var tally = _operations.GetOrAdd(Describe(message), _ => new OperationTally());
        tally.Add(end - start);
        request?.CallEnded(end);
    }

    /// <summary>"RawEvents: transaction (PUT)", "Instances: read", "Suppressions: query", ...</summary>
    private string Describe(HttpMessage message)
    {
        var request = message.Request;
        var path = request.Uri.Path;
        var resource = path[(path.LastIndexOf('/') + 1)..];
        var parenthesis = resource.IndexOf('(', StringComparison.Ordinal);
        var table = parenthesis >= 0 ? resource[..parenthesis] : resource;
        var method = request.Method.Method;

        if (table == "$batch")
        {
            var (batchTable, operation) = PeekTransaction(request.Content);
            return $"{Logical(batchTable)}: transaction ({operation})";
        }

        if (table == "Tables")
        {
            return "(tables): create";
        }

        var what = method switch
        {
            "GET" when parenthesis >= 0 && resource[parenthesis..] != "()" => "read",
            "GET" => "query",
            "POST" => "insert",
            "PUT" when request.Headers.Contains("If-Match") => "update (If-Match)",
            "PUT" => "upsert",
            "PATCH" or "MERGE" => "merge",
            "DELETE" => "delete",
            _ => method,
        };
        return $"{Logical(table)}: {what}";
    }

    private string Logical(string table) =>
        table.StartsWith(tablePrefix, StringComparison.Ordinal) ? table[tablePrefix.Length..] : table;

    /// <summary>The table and operation of a transaction, from the first operation in its multipart body.</summary>
    private static (string Table, string Operation) PeekTransaction(RequestContent? content)
    {
        if (content is null)
        {
            return ("?", "?");
        }

        using var head = new HeadStream(2048);
        content.WriteTo(head, CancellationToken.None);
        var match = FirstOperation().Match(Encoding.ASCII.GetString(head.Captured));
        return match.Success ? (match.Groups["table"].Value, match.Groups["method"].Value) : ("?", "?");
    }

    [GeneratedRegex(@"(?<method>PUT|PATCH|MERGE|POST|DELETE) https?://\S*?/(?<table>[A-Za-z][A-Za-z0-9]*)[(\s]")]
    private static partial Regex FirstOperation();

    private sealed class OperationTally
    {
        private long _count;
        private long _ticks;
        private long _maxTicks;

        public long Count => Interlocked.Read(ref _count);

        public long Ticks => Interlocked.Read(ref _ticks);

        public long MaxTicks => Interlocked.Read(ref _maxTicks);

        public void Add(long ticks)
        {
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _ticks, ticks);
            var max = Interlocked.Read(ref _maxTicks);
            while (ticks > max)
            {
                var seen = Interlocked.CompareExchange(ref _maxTicks, ticks, max);
                if (seen == max)
                {
                    break;
                }

                max = seen;
            }
        }
    }

    /// <summary>One HTTP request's storage calls: how many, and for how long at least one was in flight.</summary>
    private sealed class RequestTally
    {
        private readonly Lock _lock = new();
        private int _inFlight;
        private long _busySince;

        public long StorageTicks { get; private set; }

        public long StorageCalls { get; private set; }

        public void CallStarted(long timestamp)
        {
            lock (_lock)
            {
                StorageCalls++;
                if (_inFlight++ == 0)
                {
                    _busySince = timestamp;
                }
            }
        }

        public void CallEnded(long timestamp)
        {
            lock (_lock)
            {
                if (--_inFlight == 0)
                {
                    StorageTicks += timestamp - _busySince;
                }
            }
        }
    }

    private sealed class StartupFilter(StorageProfile profile) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, following) =>
            {
                var tally = new RequestTally();
                profile._current.Value = tally;
                var start = Stopwatch.GetTimestamp();
                await following(context);
                var elapsed = Stopwatch.GetTimestamp() - start;
                Interlocked.Increment(ref profile._requests);
                Interlocked.Add(ref profile._serverTicks, elapsed);
                Interlocked.Add(ref profile._storageTicks, tally.StorageTicks);
                Interlocked.Add(ref profile._storageCalls, tally.StorageCalls);
            });
            next(app);
        };
    }

    /// <summary>Keeps the first bytes written to it and discards the rest.</summary>
    private sealed class HeadStream(int capacity) : Stream
    {
        private readonly byte[] _buffer = new byte[capacity];
        private int _length;

        public ReadOnlySpan<byte> Captured => _buffer.AsSpan(0, _length);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var take = Math.Min(buffer.Length, _buffer.Length - _length);
            buffer[..take].CopyTo(_buffer.AsSpan(_length));
            _length += take;
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

internal sealed record OperationSummary(string Name, long Count, TimeSpan Total, TimeSpan Max)
{
    public TimeSpan Mean => Count == 0 ? TimeSpan.Zero : Total / Count;
}

internal sealed record ProfileSummary(long Requests, TimeSpan ServerTime, TimeSpan StorageTime, long StorageCalls, IReadOnlyList<OperationSummary> Operations);
