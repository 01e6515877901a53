using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>What one client sent and how much of it was acknowledged.</summary>
internal sealed record ClientTotals(long EventsSent, long EventsAcknowledged, long BatchesGivenUp);

/// <summary>
/// A product server's Segment SDK: sends <c>POST /v1/batch</c> (HTTP Basic, the write key as user name) with batches
/// of its instances' events, one request at a time, and retries a batch that got 429, 503 or no response after the
/// Retry-After (or a back-off) with the same body and so the same messageIds, as the SDKs do. It stops only between
/// batches, so nothing it sent is left unanswered; a batch still unacknowledged after <see cref="MaxAttempts"/> is
/// given up and counted. Optionally paced to a steady number of events per second.
/// </summary>
internal sealed class SegmentClient : IDisposable
{
    public const int MaxAttempts = 10;
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly HttpClient _http;
    private readonly BatchWriter _writer;
    private readonly int _batch;
    private readonly LoadRecorder _recorder;

    public SegmentClient(Uri host, string writeKey, BatchWriter writer, int batch, LoadRecorder recorder)
    {
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) })
        {
            BaseAddress = host,
            Timeout = TimeSpan.FromSeconds(30),
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        _writer = writer;
        _batch = batch;
        _recorder = recorder;
    }

    /// <summary>
    /// Sends batches until <paramref name="stop"/> is cancelled. With <paramref name="eventsPerSecond"/> the batches
    /// are spaced to that rate (sent at once when behind schedule); without it the next follows the last answer.
    /// </summary>
    public async Task<ClientTotals> RunAsync(double? eventsPerSecond, CancellationToken stop)
    {
        long sent = 0, acknowledged = 0, givenUp = 0;
        var started = Stopwatch.GetTimestamp();
        var interval = eventsPerSecond is { } rate ? TimeSpan.FromSeconds(_batch / rate) : TimeSpan.Zero;
        for (long n = 0; !stop.IsCancellationRequested; n++)
        {
            if (interval > TimeSpan.Zero)
            {
                var wait = (interval * n) - Stopwatch.GetElapsedTime(started);
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(wait, stop);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }

            var body = _writer.Next(_batch);
            sent += _batch;
            if (await SendUntilAcknowledgedAsync(body))
            {
                acknowledged += _batch;
            }
            else
            {
                givenUp++;
            }
        }

        return new ClientTotals(sent, acknowledged, givenUp);
    }

    /// <summary>Sends one batch, retrying as an SDK does; true once every event of it is acknowledged.</summary>
    private async Task<bool> SendUntilAcknowledgedAsync(ReadOnlyMemory<byte> body)
    {
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            using var content = new ReadOnlyMemoryContent(body);
            content.Headers.ContentType = Json;
            var start = Stopwatch.GetTimestamp();
            TimeSpan? retryAfter;
            try
            {
                using var response = await _http.PostAsync("v1/batch", content, CancellationToken.None);
                var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                var elapsed = Stopwatch.GetTimestamp() - start;
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    var accepted = AcceptedIn(text);
                    var complete = accepted == _batch;
                    _recorder.Record(complete ? Outcome.Accepted : Outcome.PartlyRejected, elapsed, accepted, complete ? null : $"HTTP {status}: {text}");
                    return complete;
                }

                var outcome = response.StatusCode switch
                {
                    HttpStatusCode.TooManyRequests => Outcome.TooManyRequests,
                    HttpStatusCode.ServiceUnavailable => Outcome.Unavailable,
                    _ when status >= 500 => Outcome.ServerError,
                    _ => Outcome.ClientError,
                };
                _recorder.Record(outcome, elapsed, 0, $"HTTP {status}: {text}");
                if (outcome == Outcome.ClientError)
                {
                    return false;
                }

                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                _recorder.Record(Outcome.NoResponse, Stopwatch.GetTimestamp() - start, 0, $"{e.GetType().Name}: {e.Message}");
                retryAfter = null;
            }

            // The SDKs back off exponentially when the server does not say how long to wait.
            await Task.Delay(retryAfter ?? TimeSpan.FromMilliseconds(Math.Min(10_000, 100 * (1 << attempt))));
        }

        return false;
    }

    private static int AcceptedIn(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            return json.RootElement.TryGetProperty("accepted", out var accepted) && accepted.TryGetInt32(out var n) ? n : 0;
        }
        catch (JsonException)
        {
            return 0;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _writer.Dispose();
    }
}
