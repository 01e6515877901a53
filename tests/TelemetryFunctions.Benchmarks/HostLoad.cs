using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TelemetryFunctions.Benchmarks;

internal sealed record LoadResult(
    long EventsSent,
    long Accepted,
    long Requests,
    long Retries,
    long Failures,
    string? FirstFailure,
    long RequestBytes,
    ResourceUse Resources,
    Latencies Latency,
    long PeakWorkingSet,
    long PeakManagedHeap)
{
    public double EventsPerSecond => Accepted / Resources.Wall.TotalSeconds;

    public static LoadResult Combine(IReadOnlyList<LoadResult> rounds) => new(
        rounds.Sum(r => r.EventsSent),
        rounds.Sum(r => r.Accepted),
        rounds.Sum(r => r.Requests),
        rounds.Sum(r => r.Retries),
        rounds.Sum(r => r.Failures),
        rounds.Select(r => r.FirstFailure).FirstOrDefault(f => f is not null),
        rounds.Sum(r => r.RequestBytes),
        rounds.Skip(1).Aggregate(rounds[0].Resources, (sum, r) => sum.Plus(r.Resources)),
        Latencies.Merge(rounds.Select(r => r.Latency)),
        rounds.Max(r => r.PeakWorkingSet),
        rounds.Max(r => r.PeakManagedHeap));
}

/// <summary>
/// Segment SDK-like clients, each with its own HTTP connection pool, sending <c>POST /v1/batch</c> with HTTP Basic
/// authentication. A 429 or 503 is retried with the same body after its Retry-After (the same messageIds, so the
/// retry stores nothing twice), as the SDKs do; anything else is counted as a failure.
/// </summary>
internal sealed class HostLoad : IDisposable
{
    private const int MaxAttempts = 5;
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly HttpClient[] _clients;
    private readonly BatchWriter[] _writers;
    private readonly int _batch;
    private long _retries;
    private long _failures;
    private string? _firstFailure;

    public HostLoad(Uri host, string writeKey, Fleet fleet, BenchmarkOptions options)
    {
        _batch = options.Batch;
        var authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        _clients = new HttpClient[options.Clients];
        _writers = new BatchWriter[options.Clients];
        for (var i = 0; i < options.Clients; i++)
        {
            _clients[i] = new HttpClient(new SocketsHttpHandler()) { BaseAddress = host, Timeout = TimeSpan.FromSeconds(100) };
            _clients[i].DefaultRequestHeaders.Authorization = authorization;
            _writers[i] = new BatchWriter(fleet, fleet.ForClient(i, options.Clients), seed: 1000 + i);
        }
    }

    /// <summary>Sends <paramref name="events"/> events in batches from all clients at once and reports what happened.</summary>
    public async Task<LoadResult> SendAsync(long events, string label, Process? emulator, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _retries, 0);
        Interlocked.Exchange(ref _failures, 0);
        var batches = (events + _batch - 1) / _batch;
        var meter = new ProgressMeter(label, "events", events);
        var latencies = _clients.Select(_ => new List<long>((int)(batches / _clients.Length) + 1)).ToArray();
        var requests = new long[_clients.Length];
        var bytes = new long[_clients.Length];
        long next = -1;
        long accepted = 0;

        using var stopProgress = new CancellationTokenSource();
        var progress = meter.RunAsync(stopProgress.Token);
        var before = ResourceSnapshot.Take(emulator);
        await Task.WhenAll(_clients.Select((client, c) => Task.Run(
            async () =>
            {
                while (true)
                {
                    var n = Interlocked.Increment(ref next);
                    if (n >= batches)
                    {
                        return;
                    }

                    var size = (int)Math.Min(_batch, events - (n * _batch));
                    var body = _writers[c].Next(size);
                    bytes[c] += body.Length;
                    var (stored, attempts) = await PostAsync(client, body, size, latencies[c], meter, cancellationToken);
                    requests[c] += attempts;
                    Interlocked.Add(ref accepted, stored);
                }
            },
            cancellationToken)));
        var used = ResourceSnapshot.Take(emulator).Since(before);
        await stopProgress.CancelAsync();
        await progress;

        return new LoadResult(
            events,
            accepted,
            requests.Sum(),
            Interlocked.Read(ref _retries),
            Interlocked.Read(ref _failures),
            _firstFailure,
            bytes.Sum(),
            used,
            new Latencies(latencies.SelectMany(l => l)),
            meter.PeakWorkingSet,
            meter.PeakManagedHeap);
    }

    private async Task<(int Accepted, int Attempts)> PostAsync(HttpClient client, ReadOnlyMemory<byte> body, int events, List<long> latencies, ProgressMeter meter, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var content = new ReadOnlyMemoryContent(body);
            content.Headers.ContentType = Json;
            var start = Stopwatch.GetTimestamp();
            HttpResponseMessage response;
            try
            {
                response = await client.PostAsync("v1/batch", content, cancellationToken);
            }
            catch (HttpRequestException e) when (attempt < MaxAttempts)
            {
                Fail($"{e.GetType().Name}: {e.Message}", countAsFailure: false);
                Interlocked.Increment(ref _retries);
                continue;
            }
            catch (HttpRequestException e)
            {
                Fail($"{e.GetType().Name}: {e.Message}", countAsFailure: true);
                return (0, attempt);
            }

            using (response)
            {
                var text = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                var elapsed = Stopwatch.GetTimestamp() - start;
                latencies.Add(elapsed);
                if (response.IsSuccessStatusCode)
                {
                    using var json = JsonDocument.Parse(text);
                    var accepted = json.RootElement.GetProperty("accepted").GetInt32();
                    if (accepted != events)
                    {
                        Fail($"HTTP {(int)response.StatusCode} with {accepted} of {events} events accepted: {Encoding.UTF8.GetString(text)}", countAsFailure: false);
                    }

                    meter.Add(accepted, elapsed);
                    return (accepted, attempt);
                }

                var retryable = response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable;
                Fail($"HTTP {(int)response.StatusCode}: {Encoding.UTF8.GetString(text)}", countAsFailure: !retryable || attempt == MaxAttempts);
                if (!retryable || attempt == MaxAttempts)
                {
                    return (0, attempt);
                }

                Interlocked.Increment(ref _retries);
                await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    private void Fail(string what, bool countAsFailure)
    {
        Interlocked.CompareExchange(ref _firstFailure, what, null);
        if (countAsFailure)
        {
            Interlocked.Increment(ref _failures);
        }
    }

    public void Dispose()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        foreach (var writer in _writers)
        {
            writer.Dispose();
        }
    }
}
