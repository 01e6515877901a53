using System.Globalization;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Reporting;

/// <summary>
/// The read API: daily figures from the DailyStats table (one partition, one query per request), the fleet now from
/// the instance registry (cached for a minute), and one instance by its raw id. Authorization (the admin key) is the
/// host's job, as for the admin endpoints. List endpoints answer JSON, or CSV when asked.
/// </summary>
public sealed partial class StatsEndpoints(
    DailyRollup rollup,
    InstanceCensus census,
    TelemetryStorage storage,
    InstanceStatusLog statusLog,
    InactivityIndex inactivity,
    Pseudonymizer pseudonymizer,
    ReportingCalendar calendar,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<StatsEndpoints> logger)
{
    private readonly int _maxIdentifierLength = options.Value.Ingestion.MaxIdentifierLength;

    /// <summary><c>GET /api/stats/active-users?from=&amp;to=[&amp;by=version|os]</c>: per day DAU, WAU, MAU and daily active instances.</summary>
    public Task<IResult> ActiveUsersAsync(HttpRequest request, CancellationToken cancellationToken) =>
        NoStoreResult.Of(ListAsync(request, ["version", "os"], async (from, to, format, by) =>
        {
            var days = (await rollup.ReadAsync(from, to, cancellationToken)).Select(f => new ActiveUsersDay(
                f.Day,
                f.Dau,
                f.Wau,
                f.Mau,
                f.ActiveInstances,
                Breakdown(f, "instancesByVersion"),
                Breakdown(f, "instancesByOs"))).ToList();

            if (format == TableFormat.Json)
            {
                var body = new ActiveUsersResponse(from, to, calendar.Zone.Id, Today(), days);
                return JsonResponse.Ok(body, ReadJsonContext.Default.ActiveUsersResponse);
            }

            var name = FileName("active-users", from, to, by);
            return by switch
            {
                "version" => new CsvResult(name, ["day", "version", "activeInstances"], days.SelectMany(d => d.ActiveInstancesByVersion.OrderByDescending(p => p.Value).Select(p => Row(d.Day, p.Key, p.Value)))),
                "os" => new CsvResult(name, ["day", "os", "activeInstances"], days.SelectMany(d => d.ActiveInstancesByOs.OrderByDescending(p => p.Value).Select(p => Row(d.Day, p.Key, p.Value)))),
                _ => new CsvResult(name, ["day", "dau", "wau", "mau", "activeInstances"], days.Select(d => Row(d.Day, d.Dau, d.Wau, d.Mau, d.ActiveInstances))),
            };
        }, cancellationToken));

    /// <summary><c>GET /api/stats/installations?from=&amp;to=[&amp;by=os|version]</c>: per day started, succeeded, failed, support requests and success rate, with breakdowns.</summary>
    public Task<IResult> InstallationsAsync(HttpRequest request, CancellationToken cancellationToken) =>
        NoStoreResult.Of(ListAsync(request, ["os", "version"], async (from, to, format, by) =>
        {
            var figures = await rollup.ReadAsync(from, to, cancellationToken);
            var days = figures.Select(f => new InstallationsDay(
                f.Day,
                f.InstallationsStarted,
                f.InstallationsSucceeded,
                f.InstallationsFailed,
                f.SupportRequests,
                Rate(f.InstallationsSucceeded, f.InstallationsStarted),
                InstallationGroups([f], "Os"),
                InstallationGroups([f], "Version"))).ToList();

            if (format == TableFormat.Json)
            {
                var totals = new InstallationCounts(
                    days.Sum(d => d.Started),
                    days.Sum(d => d.Succeeded),
                    days.Sum(d => d.Failed),
                    days.Sum(d => d.SupportRequests),
                    Rate(days.Sum(d => d.Succeeded), days.Sum(d => d.Started)));
                var body = new InstallationsResponse(from, to, calendar.Zone.Id, Today(), totals, InstallationGroups(figures, "Os"), InstallationGroups(figures, "Version"), days);
                return JsonResponse.Ok(body, ReadJsonContext.Default.InstallationsResponse);
            }

            var name = FileName("installations", from, to, by);
            return by switch
            {
                "os" => new CsvResult(name, ["day", "os", "started", "succeeded", "failed", "successRate"], days.SelectMany(d => d.ByOs.Select(g => Row(d.Day, g.Value, g.Started, g.Succeeded, g.Failed, g.SuccessRate)))),
                "version" => new CsvResult(name, ["day", "version", "started", "succeeded", "failed", "successRate"], days.SelectMany(d => d.ByVersion.Select(g => Row(d.Day, g.Value, g.Started, g.Succeeded, g.Failed, g.SuccessRate)))),
                _ => new CsvResult(name, ["day", "started", "succeeded", "failed", "supportRequests", "successRate"], days.Select(d => Row(d.Day, d.Started, d.Succeeded, d.Failed, d.SupportRequests, d.SuccessRate))),
            };
        }, cancellationToken));

    /// <summary><c>GET /api/stats/instances</c>: the fleet now, by version and OS, with the last 7 days' changes.</summary>
    public Task<IResult> InstancesAsync(HttpRequest request, CancellationToken cancellationToken) =>
        NoStoreResult.Of(CountInstancesAsync(request, cancellationToken));

    private async Task<IResult> CountInstancesAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (QueryParameters.FindRepeated(request, "format") is { } repeated)
        {
            return JsonResponse.Error(repeated);
        }

        var (format, formatError) = TableFormats.Negotiate(request);
        if (formatError is not null)
        {
            return JsonResponse.Error(formatError);
        }

        return await GuardAsync(async () =>
        {
            var now = await census.CountAsync(cancellationToken);
            if (format == TableFormat.Csv)
            {
                var rows = new List<IReadOnlyList<object?>> { Row("total", "all", now.Active, now.Inactive, now.Active + now.Inactive) };
                rows.AddRange(now.ByVersion.Select(g => Row("version", g.Value, g.Active, g.Inactive, g.Total)));
                rows.AddRange(now.ByOs.Select(g => Row("os", g.Value, g.Active, g.Inactive, g.Total)));
                return new CsvResult("instances.csv", ["dimension", "value", "active", "inactive", "total"], rows);
            }

            var lastComplete = calendar.LastCompleteDay(time.GetUtcNow());
            var recent = (await rollup.ReadAsync(lastComplete.AddDays(-6), lastComplete, cancellationToken))
                .Select(f => new InstanceChangesDay(f.Day, f.NewInstances, f.InstancesGoneInactive))
                .ToList();
            var body = new InstancesResponse(now.AsOf, now.Active, now.Inactive, now.Active + now.Inactive, now.NewLast7Days, now.GoneInactiveLast7Days, now.ByVersion, now.ByOs, recent, (int)inactivity.Threshold.TotalMinutes);
            return JsonResponse.Ok(body, ReadJsonContext.Default.InstancesResponse);
        }, cancellationToken);
    }

    /// <summary><c>GET /api/instances/{instanceId}</c>: one instance by its raw id, which is pseudonymized here and never stored or logged.</summary>
    /// <param name="request">The request.</param>
    /// <param name="instanceId">The route value.</param>
    /// <param name="target">Whether the request target this server sees is the one the client sent (see <see cref="RequestTarget"/>).</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    public Task<IResult> InstanceAsync(HttpRequest request, string? instanceId, RequestTarget target, CancellationToken cancellationToken) =>
        NoStoreResult.Of(FindInstanceAsync(request, instanceId, target, cancellationToken));

    private async Task<IResult> FindInstanceAsync(HttpRequest request, string? instanceId, RequestTarget target, CancellationToken cancellationToken)
    {
        var raw = target == RequestTarget.AsSent ? DecodedOnce(request, instanceId ?? "") : SlashesDecoded(instanceId ?? "");
        if (!SegmentEventReader.IsIdentifierText(raw, _maxIdentifierLength))
        {
            return JsonResponse.Error(IngestError.BadRequest("invalid_instance_id", $"Give the instance id as sent in events: {SegmentEventReader.IdentifierTextRule(_maxIdentifierLength)}."));
        }

        var key = pseudonymizer.Pseudonymize(IdentifierKind.Instance, raw);
        return await GuardAsync(async () =>
        {
            var table = await storage.GetTableAsync(TableNames.Instances, cancellationToken);
            var row = await table.GetEntityIfExistsAsync<TableEntity>(InstanceRegistry.PartitionKeyOf(key), key, cancellationToken: cancellationToken);
            if (!row.HasValue)
            {
                return JsonResponse.Error(IngestError.NotFound("No instance with this id is known: it never sent an event, sent none that was kept, or was erased."));
            }

            var record = InstanceRegistry.FromEntity(row.Value!);
            var history = (await statusLog.HistoryAsync(key, cancellationToken))
                .OrderBy(h => h.At)
                .Select(h => new InstanceStatusChange(h.At, h.Status, h.Reason))
                .ToList();
            var body = new InstanceResponse(key, record.FirstSeen, record.LastSeen, record.Version, record.Os, record.Edition, record.SharingLevel, record.AttributesObservedAt, record.Status, record.StatusChangedAt, record.Source, history);
            return JsonResponse.Ok(body, ReadJsonContext.Default.InstanceResponse);
        }, cancellationToken);
    }

    /// <summary>
    /// A route value of the last path segment, percent-decoded exactly once. The server decodes the path before routing
    /// except <c>%2F</c>, which it leaves encoded so that it cannot split the segment; so <c>q%2Fb</c> (the id
    /// <c>q/b</c>) and <c>q%252Fb</c> (the id <c>q%2Fb</c>) both arrive as <c>q%2Fb</c>. Only a value holding
    /// <c>%2F</c> is ambiguous: it is decoded again from the segment as the request sent it, when the request target
    /// is there and decodes, bar <c>%2F</c>, to the same value; without it, its <c>%2F</c> is taken for a '/'. A
    /// trailing '/' after the id is not part of it: <c>q%252Fb/</c> is <c>q%2Fb</c>, as <c>i-a/</c> is <c>i-a</c>.
    /// </summary>
    private static string DecodedOnce(HttpRequest request, string routeValue)
    {
        if (!EncodedSlash().IsMatch(routeValue))
        {
            return routeValue;
        }

        var target = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        // Routing takes a path ending in '/' for the same path without it, so the id is the segment before the slash.
        var path = target.Split('?', 2)[0].TrimEnd('/');
        var segment = path[(path.LastIndexOf('/') + 1)..];

        // Split keeps the captured separators at the odd indexes: every other piece is decoded.
        var decodedButSlashes = string.Concat(EncodedSlash().Split(segment).Select((piece, i) => i % 2 == 1 ? piece : Uri.UnescapeDataString(piece)));
        return segment.Length > 0 && decodedButSlashes == routeValue
            ? Uri.UnescapeDataString(segment)
            : SlashesDecoded(routeValue);
    }

    private static string SlashesDecoded(string routeValue) => EncodedSlash().Replace(routeValue, "/");

    [GeneratedRegex("(%2[Ff])")]
    private static partial Regex EncodedSlash();

    private DateOnly Today() => calendar.DayOf(time.GetUtcNow());

    private async Task<IResult> ListAsync(HttpRequest request, string[] dimensions, Func<DateOnly, DateOnly, TableFormat, string?, Task<IResult>> answer, CancellationToken cancellationToken)
    {
        if (QueryParameters.FindRepeated(request, "from", "to", "format", "by") is { } repeated)
        {
            return JsonResponse.Error(repeated);
        }

        var (from, to, rangeError) = ReadRange.Parse(request.Query["from"], request.Query["to"], calendar, time.GetUtcNow());
        if (rangeError is not null)
        {
            return JsonResponse.Error(rangeError);
        }

        var (format, formatError) = TableFormats.Negotiate(request);
        if (formatError is not null)
        {
            return JsonResponse.Error(formatError);
        }

        var by = request.Query["by"].ToString();
        if (by.Length > 0 && !dimensions.Contains(by, StringComparer.Ordinal))
        {
            return JsonResponse.Error(IngestError.BadRequest("invalid_breakdown", $"by is one of: {string.Join(", ", dimensions)} (it shapes the CSV rows)."));
        }

        return await GuardAsync(() => answer(from, to, format, by.Length > 0 ? by : null), cancellationToken);
    }

    private static IReadOnlyDictionary<string, int> Breakdown(DayFigures figures, string name) =>
        figures.Breakdowns.TryGetValue(name, out var counts) ? counts : new Dictionary<string, int>();

    /// <summary>Installation counts per OS or version over the given days, from the rollup's breakdowns; most started first.</summary>
    private static List<InstallationGroup> InstallationGroups(IEnumerable<DayFigures> days, string dimension)
    {
        var counts = new Dictionary<string, (int Started, int Succeeded, int Failed)>(StringComparer.Ordinal);
        foreach (var day in days)
        {
            void Add(string step, Func<(int, int, int), int, (int, int, int)> add)
            {
                foreach (var (value, count) in Breakdown(day, $"installations{step}By{dimension}"))
                {
                    counts[value] = add(counts.GetValueOrDefault(value), count);
                }
            }

            Add("Started", (c, n) => (c.Item1 + n, c.Item2, c.Item3));
            Add("Succeeded", (c, n) => (c.Item1, c.Item2 + n, c.Item3));
            Add("Failed", (c, n) => (c.Item1, c.Item2, c.Item3 + n));
        }

        return [.. counts
            .Select(p => new InstallationGroup(p.Key, p.Value.Started, p.Value.Succeeded, p.Value.Failed, Rate(p.Value.Succeeded, p.Value.Started)))
            .OrderByDescending(g => g.Started)
            .ThenBy(g => g.Value, StringComparer.Ordinal)];
    }

    /// <summary>Succeeded per started, as the daily rollup computes it; none when nothing started.</summary>
    private static double? Rate(int succeeded, int started) => started == 0 ? null : Math.Round((double)succeeded / started, 4);

    private static object?[] Row(params object?[] cells) => cells;

    private static string FileName(string name, DateOnly from, DateOnly to, string? by) =>
        string.Create(CultureInfo.InvariantCulture, $"{name}{(by is null ? "" : "-by-" + by)}_{from:yyyy-MM-dd}_{to:yyyy-MM-dd}.csv");

    private async Task<IResult> GuardAsync(Func<Task<IResult>> run, CancellationToken cancellationToken)
    {
        try
        {
            return await run();
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(logger, e);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage unavailable during a read request; answered 503")]
    private static partial void LogStorageUnavailable(ILogger logger, Exception exception);
}

/// <summary>Whether the request target a server sees is the one the client sent.</summary>
public enum RequestTarget
{
    /// <summary>The server received the request from the client (the local host on Kestrel): its target is the client's.</summary>
    AsSent,

    /// <summary>
    /// The request was forwarded (the Functions host forwards HTTP requests to the isolated worker), and the forwarder
    /// may have encoded the path again: only the route value counts, and a <c>%2F</c> in it is read as '/'.
    /// </summary>
    Forwarded,
}
