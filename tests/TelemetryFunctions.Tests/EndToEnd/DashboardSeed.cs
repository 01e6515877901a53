using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.Tests.UsageReports;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// Six weeks of a growing product, sent to a running local host the way products send it, then counted the way
/// the host counts it:
/// <list type="bullet">
/// <item>people using it (fewer at weekends), a pool that grows, on linux, windows and macos;</item>
/// <item>36 server instances sending a daily heartbeat, new ones joining every other day, upgrading from 1.2.0 to
/// 1.3.0 and 1.4.0 as releases come out; four stop, two of them in the last week;</item>
/// <item>installations every day on ubuntu, rhel, macos and windows, where windows fails more often and some
/// failures ask for support;</item>
/// <item>three Self-Managed customers, each installation of theirs sending a signed usage report for each of the last
/// two complete months through <c>POST /v1/usage-reports</c>: acme (two installations) over its process-instance
/// entitlement in the last month, globex under its entitlements, initech also reporting a metric it did not
/// purchase.</item>
/// </list>
/// Events carry their day's timestamp (the host accepts them while younger than <c>MaxEventAge</c>, set to 60 days
/// by the caller, with raw events kept long enough for such late days to be recomputed). The host records first and last seen at receive time, so the seed then moves each instance's
/// first-seen time back to the day it joined, and a stopped instance's last-seen time back to the day it stopped
/// (with the deadline the host would have scheduled then), before asking the host itself to sweep and roll up. The
/// usage reports are processed by the host's watcher; the seed returns once each one is counted.
/// Deterministic for a given <c>today</c>.
/// </summary>
internal static class DashboardSeed
{
    public const int Days = 42;
    public const int Instances = 36;
    public const string PseudonymizationKey = "dashboard-test-pseudonymization-key-0123456789";
    /// <summary>From last seen to the deadline the host files: InactiveAfter + HeartbeatGrace + InstanceTouchInterval.</summary>
    private static readonly TimeSpan DeadlineAfterLastSeen = TimeSpan.FromHours(6.5) + TimeSpan.FromMinutes(1);
    private static readonly string[] UserOs = ["linux", "linux", "windows", "linux", "macos", "windows", "linux"];
    private static readonly (string Os, double Success)[] InstallOs = [("ubuntu", 0.94), ("ubuntu", 0.94), ("rhel", 0.88), ("windows", 0.72), ("macos", 0.86)];

    /// <summary>What each customer purchased, and what each of its installations reports for the month before last and the last month.</summary>
    private static readonly UsageCustomer[] UsageCustomers =
    [
        new(
            "acme",
            "acme-dashboard-signing-secret-not-secret-0123456789",
            "acme-dashboard-report-key-0123",
            [("process-instances", 250_000), ("decision-instances", 1_000_000), ("task-users", 40)],
            [
                new("acme-prod-eu", [("process-instances", 148_200, 172_300), ("decision-instances", 402_000, 431_500), ("task-users", 22, 24)]),
                new("acme-prod-us", [("process-instances", 83_100, 96_650), ("decision-instances", 210_000, 223_800), ("task-users", 12, 14)]),
            ]),
        new(
            "globex",
            "globex-dashboard-signing-secret-not-secret-0123456789",
            "globex-dashboard-report-key-0123",
            [("process-instances", 60_000), ("task-users", 15)],
            [new("globex-prod", [("process-instances", 41_250, 44_870), ("task-users", 12, 13)])]),
        new(
            "initech",
            "initech-dashboard-signing-secret-not-secret-0123456789",
            "initech-dashboard-report-key-0123",
            [("process-instances", 20_000)],
            [new("initech-prod", [("process-instances", 8_420, 9_150), ("decision-instances", 3_180, 3_540)])]),
    ];

    /// <summary>
    /// Settings the host process needs for the seed: events six weeks old are accepted, a known pseudonymization key,
    /// the instance count is not reused, so the page and the test read the same count, no timer runs meanwhile, and
    /// the usage-report customers with a watcher that looks for their reports every half second.
    /// </summary>
    public static Dictionary<string, string?> HostSettings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["TelemetryDisableTimers"] = "true",
                ["TelemetryDisableUsageReportWatcher"] = "false",
                ["Telemetry:Reporting:InstanceCountCacheFor"] = "00:00:00",
                ["Telemetry:Ingestion:MaxEventAge"] = "60.00:00:00",
                ["Telemetry:Activity:RawEventRetentionDays"] = "120",
                ["Telemetry:Privacy:PseudonymizationKey"] = PseudonymizationKey,
                ["Telemetry:UsageReports:WatchInterval"] = "00:00:00.500",
            };
            for (var c = 0; c < UsageCustomers.Length; c++)
            {
                // List positions from 10 on: the local host's own settings configure dev-customer at 0.
                var customer = UsageCustomers[c];
                var prefix = $"Telemetry:UsageReports:Customers:{c + 10}:";
                settings[prefix + "Id"] = customer.Id;
                settings[prefix + "SigningSecret"] = customer.SigningSecret;
                settings[prefix + "ReportKey"] = customer.ReportKey;
                for (var e = 0; e < customer.Entitlements.Length; e++)
                {
                    settings[$"{prefix}Entitlements:{e}:Metric"] = customer.Entitlements[e].Metric;
                    settings[$"{prefix}Entitlements:{e}:MonthlyQuantity"] = customer.Entitlements[e].MonthlyQuantity.ToString(CultureInfo.InvariantCulture);
                }
            }

            return settings;
        }
    }

    public static DateOnly FirstDay(DateOnly today) => today.AddDays(-Days);

    public static async Task SeedAsync(LocalHostProcess host, DateOnly today, CancellationToken cancellationToken)
    {
        var random = new Random(20261102);
        var first = FirstDay(today);
        var segment = host.CreateSegmentClient();
        var joined = new Dictionary<string, DateOnly>(StringComparer.Ordinal);
        var stopped = new Dictionary<string, DateOnly>(StringComparer.Ordinal);
        for (var d = 0; d < Days; d++)
        {
            var day = first.AddDays(d);
            var weekend = day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
            var events = new List<JsonObject>();

            var pool = 40 + (int)(d * 2.5);
            var active = (int)Math.Round((18 + (d * 0.7)) * (weekend ? 0.5 : 1.0)) + random.Next(-2, 3);
            foreach (var user in Enumerable.Range(0, pool).OrderBy(_ => random.Next()).Take(Math.Min(pool, active)))
            {
                events.Add(Segment.Track("Report Opened", userId: $"user-{user:D3}", properties: new JsonObject { ["os"] = UserOs[user % UserOs.Length], ["version"] = VersionOn(user, d) }));
            }

            for (var i = 0; i < Instances; i++)
            {
                var id = InstanceId(i);
                var born = i < 20 ? 0 : (i - 20) * 2;
                var lastDay = i switch { 3 or 7 => Days - 13, 11 or 15 => Days - 4, _ => Days - 1 };
                if (d < born || d > lastDay)
                {
                    continue;
                }

                joined.TryAdd(id, first.AddDays(born));
                if (lastDay < Days - 1)
                {
                    stopped[id] = first.AddDays(lastDay);
                }

                var os = (i % 5) switch { 3 => "windows", 4 => "kubernetes", _ => "linux" };
                events.Add(Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = id, ["version"] = VersionOn(i, d), ["os"] = os, ["edition"] = i % 4 == 0 ? "enterprise" : "community" }));
            }

            var installs = weekend ? 1 + random.Next(0, 2) : 3 + random.Next(0, 4);
            for (var n = 0; n < installs; n++)
            {
                var installation = $"install-{d:D2}-{n}";
                var (os, success) = InstallOs[random.Next(InstallOs.Length)];
                var version = VersionOn(99, d);
                JsonObject Step(string name) => Segment.Track(name, userId: null, anonymousId: installation, properties: new JsonObject { ["os"] = os, ["version"] = version });
                events.Add(Step("Installation Started"));
                if (random.NextDouble() < success)
                {
                    events.Add(Step("Installation Success"));
                }
                else
                {
                    events.Add(Step("Installation Errors"));
                    if (random.NextDouble() < 0.4)
                    {
                        events.Add(Step("Installation Support"));
                    }
                }
            }

            var at = new DateTimeOffset(day.ToDateTime(new TimeOnly(8, 0)), TimeSpan.Zero);
            for (var i = 0; i < events.Count; i++)
            {
                events[i]["timestamp"] = at.AddSeconds(i * 20).ToString("O", CultureInfo.InvariantCulture);
            }

            var response = await segment.PostAsync("/v1/batch", Segment.Json(Segment.Batch([.. events])), cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal(events.Count, JsonNode.Parse(body)!["accepted"]!.GetValue<int>());
        }

        await BackdateInstancesAsync(host, joined, stopped, cancellationToken);

        using var admin = new HttpClient { BaseAddress = host.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        admin.DefaultRequestHeaders.Add("x-functions-key", "dev-admin-key");
        var sweep = await admin.PostAsync("/api/admin/sweep", null, cancellationToken);
        Assert.Equal(HttpStatusCode.OK, sweep.StatusCode);
        Assert.Equal(stopped.Count, JsonNode.Parse(await sweep.Content.ReadAsStringAsync(cancellationToken))!["result"]!["markedInactive"]!.GetValue<int>());
        for (var from = first; from < today; from = from.AddDays(7))
        {
            var to = from.AddDays(6) < today ? from.AddDays(6) : today.AddDays(-1);
            await RollupAsync(admin, from, to, cancellationToken);
        }

        await SendUsageReportsAsync(host, today, cancellationToken);
    }

    /// <summary>The first day of the last complete month before <paramref name="today"/>: the seed's usage reports cover it and the month before.</summary>
    public static DateOnly LastReportedMonth(DateOnly today) => new DateOnly(today.Year, today.Month, 1).AddMonths(-1);

    /// <summary>
    /// Each installation's reports for the month before last and the last month, signed with its customer's secret and
    /// posted with its customer's report key (counts broken down by day, fewer at weekends; task users as a
    /// distinct count, undivided), then waits until the host has counted each one, monthly totals included.
    /// </summary>
    private static async Task SendUsageReportsAsync(LocalHostProcess host, DateOnly today, CancellationToken cancellationToken)
    {
        var random = new Random(20261201);
        var lastMonth = LastReportedMonth(today);
        var clients = new List<HttpClient>();
        var sent = new List<(HttpClient Client, string ReportId)>();
        try
        {
            foreach (var customer in UsageCustomers)
            {
                var client = host.CreateClient();
                clients.Add(client);
                client.DefaultRequestHeaders.Authorization = UsageReportSamples.Basic(customer.ReportKey);
                foreach (var installation in customer.Installations)
                {
                    foreach (var (start, last) in new[] { (lastMonth.AddMonths(-1), false), (lastMonth, true) })
                    {
                        var end = start.AddMonths(1);
                        var metrics = installation.Metrics.Select(m => (m.Metric, Value: last ? m.Last : m.BeforeLast)).Select(m =>
                            UsageReportOptions.DefaultDistinctCountMetrics.Contains(m.Metric)
                                ? UsageReportSamples.Metric(m.Metric, m.Value)
                                : UsageReportSamples.Metric(m.Metric, m.Value, Daily(start, end, m.Value, random)));
                        var reportId = $"{installation.Id}-{start:yyyy-MM}";
                        var report = UsageReportSamples.Report(reportId, customer.Id, installation.Id, Instant(start), Instant(end), [.. metrics]);
                        report["generatedAt"] = Instant(end, minutes: 10);
                        using var body = new ByteArrayContent(UsageReportSamples.Signed(report, customer.SigningSecret));
                        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                        using var response = await client.PostAsync("/v1/usage-reports", body, cancellationToken);
                        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(cancellationToken));
                        sent.Add((client, reportId));
                    }
                }
            }

            foreach (var (client, reportId) in sent)
            {
                var status = await UsageReportSamples.WaitForStatusAsync(client, reportId, "processed", cancellationToken);
                Assert.True(status.GetProperty("status").GetString() == "processed" && !status.TryGetProperty("monthlyTotals", out _), $"Report {reportId}: {status}");
            }
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary><paramref name="total"/> spread over the days from <paramref name="start"/> to before <paramref name="end"/>: a weekend day about a third of a weekday.</summary>
    private static (string Day, string? Cluster, long Value)[] Daily(DateOnly start, DateOnly end, long total, Random random)
    {
        var days = Enumerable.Range(0, end.DayNumber - start.DayNumber).Select(start.AddDays).ToList();
        var weights = days.Select(d => (d.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday ? 0.35 : 1.0) * (0.85 + (random.NextDouble() * 0.3))).ToList();
        var sum = weights.Sum();
        var values = weights.Select(w => (long)Math.Floor(total * w / sum)).ToArray();
        values[^1] += total - values.Sum();
        return [.. days.Select((d, i) => (d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), (string?)null, values[i]))];
    }

    private static string Instant(DateOnly day, int minutes = 0) =>
        new DateTimeOffset(day.ToDateTime(new TimeOnly(0, minutes)), TimeSpan.Zero).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    /// <summary>Recomputes a week through the admin endpoint; a 503 is retried once after its Retry-After, as any client would.</summary>
    private static async Task RollupAsync(HttpClient admin, DateOnly from, DateOnly to, CancellationToken cancellationToken)
    {
        var route = $"/api/admin/rollup?from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}";
        var response = await admin.PostAsync(route, null, cancellationToken);
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"The rollup of {from:yyyy-MM-dd}..{to:yyyy-MM-dd} answered 503; retrying once (the host's log follows at the end).");
            await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), cancellationToken);
            response = await admin.PostAsync(route, null, cancellationToken);
        }

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(cancellationToken));
    }

    public static string InstanceId(int i) => $"instance-{i:D2}";

    /// <summary>1.3.0 comes out on day 10 and 1.4.0 twelve days before the end; each subject upgrades a few days after.</summary>
    private static string VersionOn(int subject, int day) =>
        day >= Days - 12 + (subject % 6) ? "1.4.0" : day >= 10 + (subject % 9) ? "1.3.0" : "1.2.0";

    private static async Task BackdateInstancesAsync(LocalHostProcess host, Dictionary<string, DateOnly> joined, Dictionary<string, DateOnly> stopped, CancellationToken cancellationToken)
    {
        var pseudonymizer = new Pseudonymizer(PseudonymizationKey);
        var instances = host.Tables.Table(TableNames.Instances);
        var deadlines = host.Tables.Table(TableNames.InstanceDeadlines);
        foreach (var (id, day) in joined)
        {
            var key = pseudonymizer.Pseudonymize(IdentifierKind.Instance, id);
            var row = await instances.GetEntityAsync<TableEntity>(InstanceRegistry.PartitionKeyOf(key), key, cancellationToken: cancellationToken);
            var record = InstanceRegistry.FromEntity(row.Value);
            var firstSeen = new DateTimeOffset(day.ToDateTime(new TimeOnly(8, 0)), TimeSpan.Zero);
            var changed = record with { FirstSeen = firstSeen, StatusChangedAt = firstSeen };
            if (stopped.TryGetValue(id, out var last))
            {
                var lastSeen = new DateTimeOffset(last.ToDateTime(new TimeOnly(8, 0)), TimeSpan.Zero);
                changed = changed with { LastSeen = lastSeen };
                var deadline = lastSeen + DeadlineAfterLastSeen;
                await deadlines.UpsertEntityAsync(new TableEntity(InactivityIndex.Slot(deadline), key) { ["Deadline"] = deadline, ["LastSeen"] = lastSeen }, TableUpdateMode.Replace, cancellationToken);
            }

            await instances.UpdateEntityAsync(InstanceRegistry.ToEntity(changed), record.ETag, TableUpdateMode.Replace, cancellationToken);
        }
    }

    private sealed record UsageCustomer(string Id, string SigningSecret, string ReportKey, (string Metric, long MonthlyQuantity)[] Entitlements, UsageInstallation[] Installations);

    private sealed record UsageInstallation(string Id, (string Metric, long BeforeLast, long Last)[] Metrics);
}
