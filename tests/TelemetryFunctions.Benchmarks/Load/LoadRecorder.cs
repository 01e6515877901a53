using System.Diagnostics;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>How one HTTP attempt ended, as the load clients count it.</summary>
internal enum Outcome
{
    /// <summary>2xx with every event of the batch accepted: acknowledged.</summary>
    Accepted,

    /// <summary>2xx that rejected some events (the generated events are valid, so this is a defect).</summary>
    PartlyRejected,

    /// <summary>429: a rate limit; retried after Retry-After.</summary>
    TooManyRequests,

    /// <summary>503: storage unavailable or overloaded; retried after Retry-After.</summary>
    Unavailable,

    /// <summary>Any other 4xx (the generated requests are valid, so this is a defect).</summary>
    ClientError,

    /// <summary>500 or any other 5xx but 503: never allowed.</summary>
    ServerError,

    /// <summary>No response: connection refused or reset, or the client's timeout.</summary>
    NoResponse,
}

/// <summary>
/// Counts what the load clients see, thread-safely: attempts by outcome, events acknowledged, and the latency of
/// every acknowledged request. <see cref="TakeInterval"/> hands back what happened since its last call (progress
/// lines, ramp steps); <see cref="Total"/> is everything since the start.
/// </summary>
internal sealed class LoadRecorder
{
    private readonly Lock _lock = new();
    private readonly string[] _firstProblem = new string[Enum.GetValues<Outcome>().Length];
    private Tally _interval;
    private readonly Tally _total;

    public LoadRecorder()
    {
        _interval = new Tally(Stopwatch.GetTimestamp());
        _total = new Tally(_interval.Started);
    }

    public void Record(Outcome outcome, long latencyTicks, int acceptedEvents, string? problem = null)
    {
        lock (_lock)
        {
            _interval.Add(outcome, latencyTicks, acceptedEvents);
            _total.Add(outcome, latencyTicks, acceptedEvents);
            if (problem is not null)
            {
                _firstProblem[(int)outcome] ??= problem.Length > 300 ? problem[..300] + "..." : problem;
            }
        }
    }

    /// <summary>The first problem seen per outcome (the response body or exception), for the report.</summary>
    public IEnumerable<(Outcome Outcome, string Problem)> FirstProblems()
    {
        lock (_lock)
        {
            return Enum.GetValues<Outcome>().Where(o => _firstProblem[(int)o] is not null).Select(o => (o, _firstProblem[(int)o])).ToList();
        }
    }

    /// <summary>What happened since the previous call (or the start), and starts a new interval.</summary>
    public LoadFigures TakeInterval()
    {
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            var figures = _interval.Figures(now);
            _interval = new Tally(now);
            return figures;
        }
    }

    public LoadFigures Total()
    {
        lock (_lock)
        {
            return _total.Figures(Stopwatch.GetTimestamp());
        }
    }

    private sealed class Tally(long started)
    {
        private readonly long[] _attempts = new long[Enum.GetValues<Outcome>().Length];
        private readonly List<long> _latencies = [];
        private long _events;

        public long Started => started;

        public void Add(Outcome outcome, long latencyTicks, int acceptedEvents)
        {
            _attempts[(int)outcome]++;
            _events += acceptedEvents;
            if (outcome == Outcome.Accepted)
            {
                _latencies.Add(latencyTicks);
            }
        }

        public LoadFigures Figures(long now) =>
            new(Stopwatch.GetElapsedTime(started, now), (long[])_attempts.Clone(), _events, new Latencies(_latencies));
    }
}

/// <summary>Attempts by outcome, events acknowledged and acknowledged-request latency over a span of time.</summary>
internal sealed record LoadFigures(TimeSpan Elapsed, long[] Attempts, long AcceptedEvents, Latencies Latency)
{
    public long Count(Outcome outcome) => Attempts[(int)outcome];

    public long AllAttempts => Attempts.Sum();

    public double EventsPerSecond => Elapsed > TimeSpan.Zero ? AcceptedEvents / Elapsed.TotalSeconds : 0;

    public double RequestsPerSecond => Elapsed > TimeSpan.Zero ? AllAttempts / Elapsed.TotalSeconds : 0;

    /// <summary>Share of all attempts that ended with <paramref name="outcome"/>.</summary>
    public double Rate(Outcome outcome) => AllAttempts == 0 ? 0 : Count(outcome) / (double)AllAttempts;

    /// <summary>Share of attempts that were neither acknowledged nor asked to come back later (429/503).</summary>
    public double ErrorRate => AllAttempts == 0
        ? 0
        : (Count(Outcome.PartlyRejected) + Count(Outcome.ClientError) + Count(Outcome.ServerError) + Count(Outcome.NoResponse)) / (double)AllAttempts;
}
