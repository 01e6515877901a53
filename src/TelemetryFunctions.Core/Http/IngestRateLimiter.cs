using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Http;

/// <summary>
/// Token buckets counted in events, one per source and one per client address: a source or a single machine that
/// floods gets 429 with the time until its bucket holds enough again. Client addresses live only in this host's
/// memory for the life of a bucket; they are never stored or logged. Per host: in Azure each instance limits on
/// its own, and per-address limits at the edge belong to Front Door / WAF (docs/reliability.md).
/// </summary>
/// <remarks>
/// Behind a proxy every request comes from the proxy's address, so all clients would share one bucket.
/// <c>Ingestion:ClientAddressHeader</c> names a header the proxy sets to the client's address (Front Door:
/// <c>X-Azure-ClientIP</c>); it is trusted as is, so set it only when the app can be reached through that proxy alone.
/// </remarks>
public sealed class IngestRateLimiter(IOptions<TelemetryOptions> options, TimeProvider time)
{
    private const int MaxClientBuckets = 100_000;
    private readonly string? _clientAddressHeader = options.Value.Ingestion.ClientAddressHeader;
    private readonly Limiter _sources = new(options.Value.Ingestion.SourceEventsPerSecond, options.Value.Ingestion.SourceBurstEvents, time);
    private readonly Limiter _clients = new(options.Value.Ingestion.ClientEventsPerSecond, options.Value.Ingestion.ClientBurstEvents, time);

    /// <summary>The address a client's bucket is keyed on: the configured proxy header's, else the connection's.</summary>
    public IPAddress? ClientAddressOf(HttpContext context)
    {
        if (_clientAddressHeader is not null
            && context.Request.Headers.TryGetValue(_clientAddressHeader, out var values)
            && values.Count == 1
            && IPAddress.TryParse(values[0].AsSpan().Trim(), out var forwarded))
        {
            return forwarded;
        }

        return context.Connection.RemoteIpAddress;
    }

    /// <summary>
    /// Takes <paramref name="events"/> tokens from the client's and the source's buckets, or says which limit refused
    /// and how long to wait. A request refused by its source's limit gives its client's tokens back, so a client of a
    /// flooding source is not charged for events that were not taken.
    /// </summary>
    public RateLimitRefusal? TryAcquire(string source, IPAddress? client, int events)
    {
        var clientKey = client?.ToString();
        if (clientKey is not null)
        {
            if (_clients.Count > MaxClientBuckets)
            {
                _clients.Clear();
            }

            if (_clients.TryAcquire(clientKey, events) is { } clientWait)
            {
                return new RateLimitRefusal(RateLimit.ClientAddress, clientWait);
            }
        }

        if (_sources.TryAcquire(source, events) is { } sourceWait)
        {
            if (clientKey is not null)
            {
                _clients.Return(clientKey, events);
            }

            return new RateLimitRefusal(RateLimit.Source, sourceWait);
        }

        return null;
    }

    private sealed class Limiter(double rate, double burst, TimeProvider time)
    {
        private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

        public int Count => _buckets.Count;

        public void Clear() => _buckets.Clear();

        public TimeSpan? TryAcquire(string key, int events)
        {
            var bucket = _buckets.GetOrAdd(key, _ => new Bucket(burst, time.GetTimestamp()));
            lock (bucket)
            {
                var now = time.GetTimestamp();
                var elapsed = time.GetElapsedTime(bucket.Stamp, now).TotalSeconds;
                bucket.Tokens = Math.Min(burst, bucket.Tokens + (elapsed * rate));
                bucket.Stamp = now;

                // A request larger than the whole burst passes when the bucket is full and leaves it in debt, which
                // later requests wait out: otherwise it could never pass, however long its sender waited.
                if (bucket.Tokens >= Math.Min(events, burst))
                {
                    bucket.Tokens -= events;
                    return null;
                }

                var missing = Math.Min(events, burst) - bucket.Tokens;
                return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(missing / rate)));
            }
        }

        /// <summary>Gives back tokens taken for a request another limit refused.</summary>
        public void Return(string key, int events)
        {
            if (_buckets.TryGetValue(key, out var bucket))
            {
                lock (bucket)
                {
                    bucket.Tokens = Math.Min(burst, bucket.Tokens + events);
                }
            }
        }
    }

    private sealed class Bucket(double tokens, long stamp)
    {
        public double Tokens { get; set; } = tokens;
        public long Stamp { get; set; } = stamp;
    }
}

/// <summary>The limit that refused a request.</summary>
public enum RateLimit
{
    /// <summary>One client address sent faster than <c>Ingestion:ClientEventsPerSecond</c>.</summary>
    ClientAddress,

    /// <summary>All the clients of one source together sent faster than <c>Ingestion:SourceEventsPerSecond</c>.</summary>
    Source,
}

/// <summary>A refused request: which limit refused it, and how long its sender should wait.</summary>
public readonly record struct RateLimitRefusal(RateLimit Limit, TimeSpan RetryAfter);
