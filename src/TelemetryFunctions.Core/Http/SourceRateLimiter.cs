using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Http;

/// <summary>
/// A token bucket per source, counted in events: a source that floods gets 429 with the time until its bucket
/// holds enough again. Per host; in Azure each instance limits on its own (docs/reliability.md).
/// </summary>
public sealed class SourceRateLimiter(IOptions<TelemetryOptions> options, TimeProvider time)
{
    private readonly double _rate = options.Value.Ingestion.SourceEventsPerSecond;
    private readonly double _burst = options.Value.Ingestion.SourceBurstEvents;
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>Takes <paramref name="events"/> tokens (possibly going into debt), or returns how long to wait before trying again.</summary>
    public TimeSpan? TryAcquire(string source, int events)
    {
        var bucket = _buckets.GetOrAdd(source, _ => new Bucket(_burst, time.GetTimestamp()));
        lock (bucket)
        {
            var now = time.GetTimestamp();
            var elapsed = time.GetElapsedTime(bucket.Stamp, now).TotalSeconds;
            bucket.Tokens = Math.Min(_burst, bucket.Tokens + (elapsed * _rate));
            bucket.Stamp = now;
            // A request larger than the whole burst passes when the bucket is full and leaves it in debt, which
            // later requests wait out: otherwise it could never pass, however long its sender waited.
            if (bucket.Tokens >= Math.Min(events, _burst))
            {
                bucket.Tokens -= events;
                return null;
            }

            var missing = Math.Min(events, _burst) - bucket.Tokens;
            return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(missing / _rate)));
        }
    }

    private sealed class Bucket(double tokens, long stamp)
    {
        public double Tokens { get; set; } = tokens;
        public long Stamp { get; set; } = stamp;
    }
}
