using System.Globalization;

namespace TelemetryFunctions.UsageReports;

/// <summary>How a metric's parts combine: counts add up; distinct counts (users) can only be bounded by their largest part.</summary>
public enum MetricAggregation
{
    Sum,
    Max,
}

/// <summary>Where part of a metric was used: a cluster, a tenant, or both.</summary>
public readonly record struct UsageScope(string? Cluster, string? Tenant);

/// <summary>Running sum and maximum of the parts (none negative) that fall on one day or one scope.</summary>
internal struct UsageAggregate
{
    /// <summary>
    /// Stops at <see cref="long.MaxValue"/> rather than overflowing: the parts of a distinct count are not added up (its
    /// sum is never used), and a metric whose parts add up is refused when its whole breakdown adds up beyond what can
    /// be counted, which no day or scope of it can do otherwise.
    /// </summary>
    public long Sum;
    public long Max;

    public void Add(long value)
    {
        Sum = value > long.MaxValue - Sum ? long.MaxValue : Sum + value;
        Max = Math.Max(Max, value);
    }

    public readonly long Of(MetricAggregation aggregation) => aggregation == MetricAggregation.Sum ? Sum : Max;
}

/// <summary>One metric of a validated report: its total for the period and its parts by day, by scope and by month.</summary>
public sealed class UsageMetric
{
    public required string Name { get; init; }

    public required long Value { get; init; }

    public required MetricAggregation Aggregation { get; init; }

    /// <summary>Breakdown entries read for this metric.</summary>
    public long Entries { get; init; }

    public required IReadOnlyDictionary<DateOnly, long> Days { get; init; }

    public required IReadOnlyDictionary<UsageScope, long> Scopes { get; init; }

    /// <summary>The metric's share of each calendar month (UTC), keyed <c>yyyyMM</c>: what monthly totals add up.</summary>
    public required IReadOnlyDictionary<string, long> Months { get; init; }
}

/// <summary>
/// A report that passed every check that needs no storage: well-formed, of the schema, consistent, and signed by its
/// customer. Its size is bounded by the limits (metrics, scopes, days), whatever the size of the document.
/// </summary>
public sealed class UsageReport
{
    public required string ReportId { get; init; }

    public required string CustomerId { get; init; }

    public required string InstallationId { get; init; }

    public required string ProductName { get; init; }

    public required string ProductVersion { get; init; }

    public required DateTimeOffset PeriodStart { get; init; }

    /// <summary>Exclusive: a report for January ends at February 1, 00:00.</summary>
    public required DateTimeOffset PeriodEnd { get; init; }

    public required DateTimeOffset GeneratedAt { get; init; }

    public required IReadOnlyList<UsageMetric> Metrics { get; init; }

    /// <summary>SHA-256 (lowercase hex) of the signed bytes: the identity of the report's content.</summary>
    public required string ContentHash { get; init; }

    /// <summary>
    /// The earliest instant a report's period may start. Nothing before it was ever used (or billed), so an earlier
    /// period (year 0001, a clock reset to the epoch) is a broken clock or a forged report. Its end, its generation time
    /// and its days are bounded by it too: they lie within or after the period.
    /// </summary>
    public static readonly DateTimeOffset EarliestPeriodStart = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static string MonthKey(DateOnly day) => day.ToString("yyyyMM", CultureInfo.InvariantCulture);

    public static string MonthKey(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyyMM", CultureInfo.InvariantCulture);

    /// <summary>The last UTC day the (end-exclusive) period touches.</summary>
    public static DateOnly LastDay(DateTimeOffset end) => DateOnly.FromDateTime(end.UtcDateTime.AddTicks(-1));
}
