using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// The dashboard in a real headless Chromium (Debian's, installed by scripts/install-browser.sh) against the local
/// host as a process: signing in, the empty state of a fresh install (also once the rollup has counted its empty
/// days), then six weeks of seeded data and two months of usage reports whose figures on the page must equal the
/// API's (on hover and reached by keyboard), before and after choosing another range, and the usage chart's explanation
/// for a range no report covers.
/// Screenshots go to
/// artifacts/screenshots/ (and docs/dashboard.png when TELEMETRY_UPDATE_SCREENSHOTS=1 or it does not exist yet).
/// </summary>
public sealed class DashboardBrowserTests(AzuriteFixture azurite)
{
    internal const string ChromiumPath = "/usr/bin/chromium";
    private const string AdminKey = "dev-admin-key";

    internal static readonly string[] ChromiumArgs =
    [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    ];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Skips the calling test when Debian's chromium is not installed, or fails it where CI requires the browser.</summary>
    internal static void RequireChromium()
    {
        if (!File.Exists(ChromiumPath))
        {
            // CI sets TELEMETRY_REQUIRE_BROWSER: there a missing browser is a failure, not a skip.
            Assert.SkipWhen(Environment.GetEnvironmentVariable("TELEMETRY_REQUIRE_BROWSER") != "1", $"{ChromiumPath} is not installed: run scripts/install-browser.sh (as root) or `apt-get install chromium`.");
            Assert.Fail($"{ChromiumPath} is not installed: run scripts/install-browser.sh (as root) or `apt-get install chromium`.");
        }
    }

    [Fact]
    public async Task The_dashboard_shows_the_same_figures_as_the_api_and_follows_a_new_date_range()
    {
        RequireChromium();

        await using var host = await LocalHostProcess.StartAsync(azurite, DashboardSeed.HostSettings, Token);
        using var api = host.CreateClient();
        api.DefaultRequestHeaders.Add("x-functions-key", AdminKey);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = ChromiumPath, Headless = true, Args = ChromiumArgs });
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = await context.NewPageAsync();
        var requests = new ConcurrentQueue<IRequest>();
        page.Request += (_, request) => requests.Enqueue(request);
        var console = new ConcurrentQueue<string>();
        page.Console += (_, message) => console.Enqueue($"{message.Type}: {message.Text}");
        page.PageError += (_, error) => console.Enqueue("page error: " + error);

        // It asks for the key; a write key is refused with an explanation.
        await page.GotoAsync(new Uri(host.BaseAddress, "/dashboard").ToString());
        await page.Locator("#key-panel").WaitForAsync();
        await page.FillAsync("#key-input", LocalHostProcess.WriteKey);
        await page.ClickAsync("#key-form button[type=submit]");
        await page.Locator("#key-error").WaitForAsync();
        Assert.Contains("refused", await page.Locator("#key-error").TextContentAsync() ?? "", StringComparison.Ordinal);
        requests.Clear();

        // A fresh install explains how to send the first event, with this host's URL.
        await page.FillAsync("#key-input", AdminKey);
        await page.ClickAsync("#key-form button[type=submit]");
        await WaitUntilReadyAsync(page, console);
        Assert.True(await page.Locator("#empty").IsVisibleAsync());
        var firstEvent = await page.Locator("#empty-send").TextContentAsync() ?? "";
        Assert.Contains(new Uri(host.BaseAddress, "/v1/track").ToString(), firstEvent, StringComparison.Ordinal);
        Assert.Contains("curl -u YOUR_WRITE_KEY:", firstEvent, StringComparison.Ordinal);
        Assert.False(await page.Locator("#charts").IsVisibleAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("dashboard-empty.png"), FullPage = true });

        // Rolling up ended days with no event writes a row of zeros for each: still nothing to show, so the page still
        // explains how to send the first event instead of drawing flat charts.
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        using var rollup = await api.PostAsync($"/api/admin/rollup?from={today.AddDays(-7):yyyy-MM-dd}&to={today.AddDays(-1):yyyy-MM-dd}", null, Token);
        Assert.True(rollup.IsSuccessStatusCode, await rollup.Content.ReadAsStringAsync(Token));
        var zeros = (await GetJsonAsync(api, "/api/stats/active-users")).GetProperty("days").EnumerateArray().ToList();
        Assert.NotEmpty(zeros);
        Assert.All(zeros, d => Assert.Equal(0, d.GetProperty("dau").GetInt32()));
        await page.ReloadAsync();
        await WaitUntilReadyAsync(page, console);
        Assert.True(await page.Locator("#empty").IsVisibleAsync());
        Assert.Equal("No telemetry yet", await page.Locator("#empty h2").TextContentAsync());
        Assert.Contains("curl -u YOUR_WRITE_KEY:", await page.Locator("#empty-send").TextContentAsync() ?? "", StringComparison.Ordinal);
        Assert.False(await page.Locator("#charts").IsVisibleAsync());
        Assert.False(await page.Locator("#headlines").IsVisibleAsync());

        // Six weeks of data; the key is asked for once per tab, so a reload goes straight to the figures.
        await DashboardSeed.SeedAsync(host, today, Token);
        await page.GotoAsync(new Uri(host.BaseAddress, "/dashboard").ToString());
        await WaitUntilReadyAsync(page, console);
        Assert.False(await page.Locator("#key-panel").IsVisibleAsync());
        Assert.False(await page.Locator("#empty").IsVisibleAsync());

        var defaults = await GetJsonAsync(api, "/api/stats/active-users");
        Assert.Equal(today.AddDays(-30), Day(defaults, "from"));
        Assert.Equal(today.AddDays(-1), Day(defaults, "to"));
        await AssertPageMatchesApiAsync(page, api, Day(defaults, "from"), Day(defaults, "to"));

        // Each version's segments carry a texture of their own as well as a colour, the one its legend square shows,
        // so no version is told from its neighbour by colour alone.
        const string Fills = """
            marks => marks.map(mark => {
              const fill = mark.getAttribute('fill');
              const pattern = /^url\(#(.+)\)$/.exec(fill);
              if (!pattern) return 'plain ' + fill;
              const p = document.getElementById(pattern[1]);
              return p.getAttribute('patternTransform') + ' ' + [...p.children].map(c => c.tagName + ':' + (c.getAttribute('fill') ?? c.getAttribute('stroke'))).join(' ');
            })
            """;
        var legendFills = await page.Locator("#chart-versions .legend svg > rect").EvaluateAllAsync<string[]>(Fills);
        var barFills = await page.Locator("#chart-versions svg > rect.bar").EvaluateAllAsync<string[]>(Fills);
        Assert.True(legendFills.Length >= 2, $"The seed shows {legendFills.Length} version(s).");
        Assert.Equal(legendFills.Length, legendFills.Distinct().Count());
        Assert.Single(legendFills, f => f.StartsWith("plain ", StringComparison.Ordinal));
        Assert.Equal(legendFills.Order(), barFills.Distinct().Order());

        // The default range is the last 30 complete days: that quick-range button is the pressed one.
        Assert.Equal(["false", "true", "false", "false"], await page.Locator(".presets button").EvaluateAllAsync<string[]>("buttons => buttons.map(b => b.getAttribute('aria-pressed'))"));

        var instances = await GetJsonAsync(api, "/api/stats/instances");
        Assert.Equal(instances.GetProperty("active").GetInt32(), await FigureAsync<int>(page, "active-instances"));
        Assert.Equal(DashboardSeed.Instances - 4, instances.GetProperty("active").GetInt32());
        Assert.Equal(2, instances.GetProperty("goneInactiveLast7Days").GetInt32());

        // Hovering a day shows its exact figures.
        var band = page.Locator("#chart-active-users .hover-band").Last;
        await band.HoverAsync(new LocatorHoverOptions { Force = true });
        var tooltip = page.Locator("#tooltip");
        await tooltip.WaitForAsync();
        var lastDay = defaults.GetProperty("days").EnumerateArray().Last();
        Assert.Contains($"DAU: {lastDay.GetProperty("dau").GetInt32().ToString("N0", CultureInfo.InvariantCulture)}", await tooltip.TextContentAsync() ?? "", StringComparison.Ordinal);
        await page.Mouse.MoveAsync(0, 0);

        await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("dashboard.png"), FullPage = true });
        UpdateReadmeScreenshot();

        // The keyboard reaches the same figures: Tab from the range form to the chart, End to the last day, the arrow
        // keys to the days before, each day's tip showing the API's figures; Escape hides it.
        var apiDays = defaults.GetProperty("days").EnumerateArray().ToList();
        await page.FocusAsync("#sign-out");
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.PressAsync("End");
        await AssertKeyboardTipAsync(page, apiDays[^1]);
        await page.Keyboard.PressAsync("ArrowLeft");
        await AssertKeyboardTipAsync(page, apiDays[^2]);
        await page.Keyboard.PressAsync("Escape");
        await tooltip.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Hidden });
        await page.Keyboard.PressAsync("ArrowRight");
        await AssertKeyboardTipAsync(page, apiDays[^1]);
        await page.Keyboard.PressAsync("Escape");

        // Another range through the date picker: a past week.
        var from = today.AddDays(-20);
        var to = today.AddDays(-14);
        await ShowRangeAsync(page, from, to);
        await AssertPageMatchesApiAsync(page, api, from, to);
        Assert.Equal(7, await page.Locator("#chart-active-users table tbody tr").CountAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("dashboard-past-week.png"), FullPage = true });

        // The last complete month: each customer's usage of that month against what it purchased, acme over its
        // process-instance entitlement, initech reporting decision instances it did not purchase.
        var lastMonth = DashboardSeed.LastReportedMonth(today);
        await ShowRangeAsync(page, lastMonth, lastMonth.AddMonths(1).AddDays(-1));
        Assert.Equal(7, (await AssertUsageMatchesApiAsync(page, api, lastMonth, lastMonth.AddMonths(1).AddDays(-1))).Count);
        Assert.Equal(
            ["acme · decision-instances", "acme · process-instances", "acme · task-users", "globex · process-instances", "globex · task-users", "initech · decision-instances", "initech · process-instances"],
            await page.Locator("#chart-usage svg .label-text").AllTextContentsAsync());
        Assert.Equal(
            ["655,300 of 1,000,000", "268,950 of 250,000 (+18,950)", "38 of 40", "44,870 of 60,000", "13 of 15", "3,540 (no entitlement)", "9,150 of 20,000"],
            await page.Locator("#chart-usage svg .value-text").AllTextContentsAsync());
        await page.Locator("#chart-usage").ScreenshotAsync(new LocatorScreenshotOptions { Path = ScreenshotPath("dashboard-usage.png") });

        // A week of the month before the first reports: the usage chart explains why it is empty.
        var before = lastMonth.AddMonths(-2);
        await ShowRangeAsync(page, before, before.AddDays(6));
        Assert.Empty(await AssertUsageMatchesApiAsync(page, api, before, before.AddDays(6)));

        // A month whose reports add up beyond what can be counted: the API answers it with no figure and a problem. No
        // seed can send the thousands of reports that takes, so the page is given that answer for its usage request;
        // the chart says so instead of drawing 0, and the rest of the page still renders.
        var month = before.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        await page.RouteAsync(new Regex(@"/api/usage\?"), route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 200,
            ContentType = "application/json",
            Body = $$"""
                {"success":true,"from":"{{month}}","to":"{{month}}","rows":[
                {"customer":"acme","metric":"process-instances","month":"{{month}}","reported":null,"entitlement":250000,"overage":null,"reports":9300,"aggregation":"sum","computedAt":null,"problem":"The month's reports add up beyond what can be counted."},
                {"customer":"globex","metric":"task-users","month":"{{month}}","reported":12,"entitlement":15,"overage":0,"reports":1,"aggregation":"max","computedAt":null}]}
                """,
        }));
        await ShowRangeAsync(page, before.AddDays(7), before.AddDays(13));
        Assert.Equal(["acme · process-instances", "globex · task-users"], await page.Locator("#chart-usage svg .label-text").AllTextContentsAsync());
        Assert.Equal([$"{month}: too large to count", "12 of 15"], await page.Locator("#chart-usage svg .value-text").AllTextContentsAsync());
        Assert.Equal(
            [["acme", "process-instances", month, "–", "250,000", "–", "The month's reports add up beyond what can be counted."], ["globex", "task-users", month, "12", "15", "0", ""]],
            await page.Locator("#chart-usage table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))"));
        await page.UnrouteAllAsync();

        // The key went only into headers: never into a URL the page loaded or shows.
        Assert.DoesNotContain(AdminKey, page.Url, StringComparison.Ordinal);
        Assert.All(requests, r => Assert.DoesNotContain(AdminKey, r.Url, StringComparison.Ordinal));
        var apiCalls = requests.Where(r => new Uri(r.Url).AbsolutePath.StartsWith("/api/stats/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(apiCalls);
        Assert.All(apiCalls, r => Assert.Equal(AdminKey, r.Headers.GetValueOrDefault("x-functions-key")));
        Assert.All(requests, r => Assert.Equal(host.BaseAddress.Authority, new Uri(r.Url).Authority));
        Assert.DoesNotContain(console, m => m.StartsWith("page error", StringComparison.Ordinal));
    }

    /// <summary>
    /// Answers no seed can produce, given to the page for its API requests: versions, OS and customers named like
    /// members of every JavaScript object ("constructor", "__proto__", "toString", "hasOwnProperty"), an installation
    /// success rate just under 1, pre-releases and names that are not versions, an entitlement of 0, a usage figure
    /// beyond what a JavaScript number holds exactly, and a usage row with a problem. The page shows each as the API
    /// answered it. Then a load cancelled by "Forget key", and a failed load, leave no figures on screen.
    /// </summary>
    [Fact]
    public async Task The_dashboard_shows_unusual_api_answers_as_the_api_gives_them()
    {
        RequireChromium();

        await using var host = await LocalHostProcess.StartAsync(azurite, null, Token);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = ChromiumPath, Headless = true, Args = ChromiumArgs });
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = await context.NewPageAsync();
        var console = new ConcurrentQueue<string>();
        page.Console += (_, message) => console.Enqueue($"{message.Type}: {message.Text}");
        page.PageError += (_, error) => console.Enqueue("page error: " + error);

        const string ActiveUsers = """
            {"from":"2026-11-01","to":"2026-11-03","reportingTimeZone":"UTC","today":"2026-11-04","days":[
            {"day":"2026-11-01","dau":5,"wau":5,"mau":5,"activeInstances":5,"activeInstancesByVersion":{"1.0.0":3,"constructor":2},"activeInstancesByOs":{"linux":5}},
            {"day":"2026-11-02","dau":6,"wau":8,"mau":8,"activeInstances":5,"activeInstancesByVersion":{"__proto__":4,"1.0.0":1},"activeInstancesByOs":{"hasOwnProperty":5}},
            {"day":"2026-11-03","dau":7,"wau":9,"mau":9,"activeInstances":8,"activeInstancesByVersion":{"constructor":1,"__proto__":2,"toString":5},"activeInstancesByOs":{"valueOf":8}}]}
            """;
        const string Installations = """
            {"from":"2026-11-01","to":"2026-11-03","reportingTimeZone":"UTC","today":"2026-11-04",
            "totals":{"started":2000,"succeeded":1999,"failed":1,"supportRequests":0,"successRate":0.9995},
            "byOs":[{"value":"constructor","started":2000,"succeeded":1999,"failed":1,"successRate":0.9995},{"value":"rounded","started":30000,"succeeded":29999,"failed":1,"successRate":1}],"byVersion":[],"days":[]}
            """;
        const string Instances = """
            {"asOf":"2026-11-04T10:00:00Z","active":10,"inactive":3,"total":13,"newLast7Days":1,"goneInactiveLast7Days":0,"byVersion":[
            {"value":"unknown","active":1,"inactive":0,"total":1},{"value":"1.9.0","active":1,"inactive":1,"total":2},
            {"value":"constructor","active":2,"inactive":0,"total":2},{"value":"2.0.0","active":2,"inactive":1,"total":3},
            {"value":"__proto__","active":1,"inactive":0,"total":1},{"value":"2.0.0-rc.1","active":1,"inactive":1,"total":2},
            {"value":"1.10.0","active":2,"inactive":0,"total":2}],
            "byOs":[{"value":"__proto__","active":10,"inactive":3,"total":13}],"recentDays":[],"inactiveAfterMinutes":80}
            """;
        const string Problem = "The month's reports add up beyond what can be counted.";
        const string Usage = $$"""
            {"success":true,"from":"2026-11","to":"2026-11","rows":[
            {"customer":"acme","metric":"process-instances","month":"2026-11","reported":null,"entitlement":250000,"overage":null,"reports":9300,"aggregation":"sum","computedAt":null,"problem":"{{Problem}}"},
            {"customer":"globex","metric":"api-calls","month":"2026-11","reported":9007199254740993,"entitlement":1000,"overage":9007199254739993,"reports":2,"aggregation":"sum","computedAt":null},
            {"customer":"hooli","metric":"task-users","month":"2026-11","reported":500,"entitlement":0,"overage":500,"reports":1,"aggregation":"max","computedAt":null}]}
            """;

        // Every read is answered from above; one can be held back, or made to fail.
        TaskCompletionSource? hold = null;
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fail = false;
        await page.RouteAsync(new Regex(@"/api/(stats|usage)"), async route =>
        {
            var path = new Uri(route.Request.Url).AbsolutePath;
            if (path == "/api/stats/installations" && hold is { } pending)
            {
                held.TrySetResult();
                await pending.Task;
            }

            if (fail && path == "/api/stats/active-users")
            {
                await route.FulfillAsync(new RouteFulfillOptions { Status = 503, ContentType = "application/json", Body = """{"success":false,"error":{"code":"storage_unavailable","message":"Storage is unavailable; retry."}}""" });
                return;
            }

            var body = path switch
            {
                "/api/stats/active-users" => ActiveUsers,
                "/api/stats/installations" => Installations,
                "/api/stats/instances" => Instances,
                "/api/usage" => Usage,
                _ => throw new InvalidOperationException(path),
            };
            await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "application/json", Body = body });
        });

        await page.GotoAsync(new Uri(host.BaseAddress, "/dashboard").ToString());
        await page.FillAsync("#key-input", AdminKey);
        await page.ClickAsync("#key-form button[type=submit]");
        await WaitUntilReadyAsync(page, console);
        Assert.True(await page.Locator("#charts").IsVisibleAsync());

        // Version adoption: each version's figure per day is the API's, 0 where the day has none; never a member of Object.
        var header = await page.Locator("#chart-versions table thead th").AllTextContentsAsync();
        Assert.Equal(["Day", "1.0.0", "__proto__", "constructor", "toString"], header);
        using var activeUsers = JsonDocument.Parse(ActiveUsers);
        var days = activeUsers.RootElement.GetProperty("days").EnumerateArray().ToList();
        var expected = days.Select(d => header.Skip(1).Select(v => d.GetProperty("activeInstancesByVersion").TryGetProperty(v, out var n) ? n.GetInt32().ToString("N0", CultureInfo.InvariantCulture) : "0").Prepend(d.GetProperty("day").GetString()!).ToArray()).ToArray();
        Assert.Equal(expected, await page.Locator("#chart-versions table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))"));
        var dayTotals = await page.Locator("#chart-versions svg rect.bar").EvaluateAllAsync<string[]>("bars => bars.map(b => b.dataset.tip)");
        Assert.Contains("2026-11-03 · toString: 5 instances (62.5%)", dayTotals);
        Assert.Contains("2026-11-02 · __proto__: 4 instances (80.0%)", dayTotals);
        Assert.DoesNotContain("NaN", await page.Locator("main").InnerHTMLAsync(), StringComparison.Ordinal);

        // The note under the instances chart states the deployment's own inactivity threshold.
        Assert.Equal("1 hour 20 minutes", await page.Locator("#inactive-after").TextContentAsync());

        // Instances by version, newest first: a pre-release after its release, what is not a version after every version.
        Assert.Equal(
            ["2.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0", "__proto__", "constructor", "other"],
            await page.Locator("#chart-instances svg[aria-label='Active and inactive instances by version'] .label-text").AllTextContentsAsync());
        Assert.Equal(
            ["1.9.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "other", "unknown"],
            await page.EvaluateAsync<string[]>("async () => { const { compareVersions } = await import('/dashboard/charts.js'); return ['unknown', '2.0.0', 'other', '1.10.0', '2.0.0-rc.1', '1.9.0'].sort(compareVersions); }"));

        // One installation in 2,000 failed: 99.9%, never 100%; the figure itself is the API's.
        Assert.Equal(0.9995, await FigureAsync<double>(page, "success-rate"));
        Assert.Equal("99.9%", await page.Locator("[data-figure='success-rate'] .value").TextContentAsync());
        Assert.Equal(["100.0%", "99.9%", "0.1%", "0.0%"], (await page.Locator("#chart-funnel table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))")).Select(r => r[2]));
        // The API rounds 29,999 of 30,000 to a rate of 1: with a failure among them it still reads 99.9%, on hover too.
        Assert.Contains("rounded · success rate: 99.9%", await page.Locator("#chart-success-os svg rect.bar").EvaluateAllAsync<string[]>("bars => bars.map(b => b.dataset.tip)"));
        Assert.Equal(
            [["constructor", "2,000", "1,999", "1", "99.9%"], ["rounded", "30,000", "29,999", "1", "99.9%"]],
            await page.Locator("#chart-success-os table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))"));

        // Usage: an entitlement of 0 makes all usage overage; a figure beyond 2^53 is flagged, not altered; the problem is in the table.
        const string TooLarge = "≥ 9,007,199,254,740,992 (too large to show exactly)";
        Assert.Equal(
            ["2026-11: too large to count", $"{TooLarge} of 1,000 (+9,007,199,254,739,993)", "500 of 0 (+500)"],
            await page.Locator("#chart-usage svg .value-text").AllTextContentsAsync());
        Assert.Contains("hooli · task-users · 2026-11: 500 over an entitlement of 0", await page.Locator("#chart-usage svg rect.bar").EvaluateAllAsync<string[]>("bars => bars.map(b => b.dataset.tip)"));
        Assert.Equal(
            [
                ["acme", "process-instances", "2026-11", "–", "250,000", "–", Problem],
                ["globex", "api-calls", "2026-11", TooLarge, "1,000", "9,007,199,254,739,993", ""],
                ["hooli", "task-users", "2026-11", "500", "0", "500", ""],
            ],
            await page.Locator("#chart-usage table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))"));

        // "Forget key" while a range is loading: when the load finishes, its figures stay hidden behind the sign-in form.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hold = gate;
        await page.FillAsync("#range-from", "2026-10-01");
        await page.FillAsync("#range-to", "2026-10-03");
        await page.ClickAsync("#range-apply");
        await held.Task.WaitAsync(TimeSpan.FromSeconds(30), Token);
        await page.ClickAsync("#sign-out");
        var finished = page.WaitForRequestFinishedAsync(new PageWaitForRequestFinishedOptions { Predicate = r => r.Url.Contains("/api/stats/installations", StringComparison.Ordinal) });
        hold = null;
        gate.SetResult();
        await finished;
        await page.WaitForTimeoutAsync(500);
        Assert.True(await page.Locator("#key-panel").IsVisibleAsync());
        Assert.Equal("signed-out", await page.EvaluateAsync<string>("() => document.body.dataset.state"));
        Assert.False(await page.Locator("#charts").IsVisibleAsync());
        Assert.False(await page.Locator("#headlines").IsVisibleAsync());

        // A failed load for another range takes the previous range's figures off the page.
        await page.FillAsync("#key-input", AdminKey);
        await page.ClickAsync("#key-form button[type=submit]");
        await WaitUntilReadyAsync(page, console);
        Assert.True(await page.Locator("#charts").IsVisibleAsync());
        fail = true;
        await page.FillAsync("#range-from", "2026-09-01");
        await page.FillAsync("#range-to", "2026-09-03");
        await page.ClickAsync("#range-apply");
        await page.WaitForFunctionAsync("() => document.body.dataset.state === 'error'");
        Assert.Contains("Storage is unavailable; retry.", await page.Locator("#status").TextContentAsync() ?? "", StringComparison.Ordinal);
        Assert.Equal("#from=2026-09-01&to=2026-09-03", new Uri(page.Url).Fragment);
        Assert.False(await page.Locator("#charts").IsVisibleAsync());
        Assert.False(await page.Locator("#headlines").IsVisibleAsync());
        Assert.False(await page.Locator("#empty").IsVisibleAsync());

        await page.UnrouteAllAsync();
        Assert.DoesNotContain(console, m => m.StartsWith("page error", StringComparison.Ordinal));
    }

    /// <summary>
    /// The mark with the keyboard's focus is the active-users chart's band for the API's day, named by its figures,
    /// and the tip under it shows that day's DAU, WAU and MAU as the API answered them.
    /// </summary>
    private static async Task AssertKeyboardTipAsync(IPage page, JsonElement day)
    {
        string Figure(string name) => $"{name.ToUpperInvariant()}: {day.GetProperty(name).GetInt32().ToString("N0", CultureInfo.InvariantCulture)}";
        var expected = $"{day.GetProperty("day").GetString()}\n{Figure("dau")}\n{Figure("wau")}\n{Figure("mau")}";
        var tooltip = page.Locator("#tooltip");
        await tooltip.WaitForAsync();
        Assert.Equal(expected, await tooltip.TextContentAsync());
        Assert.Equal(
            [expected.Replace("\n", ", ", StringComparison.Ordinal), "true"],
            await page.EvaluateAsync<string[]>("() => [document.activeElement.getAttribute('aria-label'), String(document.activeElement.closest('#chart-active-users') !== null)]"));
    }

    /// <summary>The headline figures and the active-users table equal what the API answers for the range.</summary>
    private static async Task AssertPageMatchesApiAsync(IPage page, HttpClient api, DateOnly from, DateOnly to)
    {
        var range = $"from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}";
        var active = await GetJsonAsync(api, "/api/stats/active-users?" + range);
        var installations = await GetJsonAsync(api, "/api/stats/installations?" + range);
        var days = active.GetProperty("days").EnumerateArray().ToList();
        Assert.Equal(to.DayNumber - from.DayNumber + 1, days.Count);
        var last = days[^1];

        Assert.Equal(last.GetProperty("dau").GetInt32(), await FigureAsync<int>(page, "dau"));
        Assert.Equal(last.GetProperty("wau").GetInt32(), await FigureAsync<int>(page, "wau"));
        Assert.Equal(last.GetProperty("mau").GetInt32(), await FigureAsync<int>(page, "mau"));
        Assert.Equal(installations.GetProperty("totals").GetProperty("successRate").GetDouble(), await FigureAsync<double>(page, "success-rate"));

        var rows = await page.Locator("#chart-active-users table tbody tr").EvaluateAllAsync<string[][]>(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent.replaceAll(',', '')))");
        var expected = days.Select(d => new[]
        {
            d.GetProperty("day").GetString()!,
            d.GetProperty("dau").GetInt32().ToString(CultureInfo.InvariantCulture),
            d.GetProperty("wau").GetInt32().ToString(CultureInfo.InvariantCulture),
            d.GetProperty("mau").GetInt32().ToString(CultureInfo.InvariantCulture),
            d.GetProperty("activeInstances").GetInt32().ToString(CultureInfo.InvariantCulture),
        }).ToArray();
        Assert.Equal(expected, rows);

        var funnel = await page.Locator("#chart-funnel table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent.replaceAll(',', '')))");
        var totals = installations.GetProperty("totals");
        Assert.Equal(
            [totals.GetProperty("started").GetInt32().ToString(CultureInfo.InvariantCulture), totals.GetProperty("succeeded").GetInt32().ToString(CultureInfo.InvariantCulture), totals.GetProperty("failed").GetInt32().ToString(CultureInfo.InvariantCulture), totals.GetProperty("supportRequests").GetInt32().ToString(CultureInfo.InvariantCulture)],
            funnel.Select(r => r[1]));

        await AssertUsageMatchesApiAsync(page, api, from, to);
    }

    /// <summary>
    /// The usage chart shows what <c>GET /api/usage</c> answers for the range: a bar for the latest month per customer
    /// and metric, labelled with its figures against the entitlement, and every row in the table; or, without rows,
    /// the explanation. Returns the API's rows.
    /// </summary>
    private static async Task<List<JsonElement>> AssertUsageMatchesApiAsync(IPage page, HttpClient api, DateOnly from, DateOnly to)
    {
        var rows = (await GetJsonAsync(api, $"/api/usage?from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}")).GetProperty("rows").EnumerateArray().ToList();
        if (rows.Count == 0)
        {
            Assert.Contains("No usage report covers this range yet.", await page.Locator("#chart-usage .chart-empty").TextContentAsync() ?? "", StringComparison.Ordinal);
            Assert.Equal(0, await page.Locator("#chart-usage svg").CountAsync());
            return rows;
        }

        static string Number(JsonElement value) => value.ValueKind == JsonValueKind.Null ? "–" : value.GetInt64().ToString("N0", CultureInfo.InvariantCulture);
        var table = await page.Locator("#chart-usage table tbody tr").EvaluateAllAsync<string[][]>("rows => rows.map(r => [...r.cells].map(c => c.textContent))");
        Assert.Equal(
            rows.Select(r => new[] { r.GetProperty("customer").GetString()!, r.GetProperty("metric").GetString()!, r.GetProperty("month").GetString()!, Number(r.GetProperty("reported")), Number(r.GetProperty("entitlement")), Number(r.GetProperty("overage")), r.TryGetProperty("problem", out var problem) && problem.ValueKind == JsonValueKind.String ? problem.GetString()! : "" }).ToArray(),
            table);

        var latest = rows
            .GroupBy(r => (Customer: r.GetProperty("customer").GetString()!, Metric: r.GetProperty("metric").GetString()!))
            .Select(g => g.MaxBy(r => r.GetProperty("month").GetString(), StringComparer.Ordinal))
            .OrderBy(r => r.GetProperty("customer").GetString(), StringComparer.Ordinal).ThenBy(r => r.GetProperty("metric").GetString(), StringComparer.Ordinal)
            .ToList();
        Assert.Equal(
            latest.Select(r => $"{r.GetProperty("customer").GetString()} · {r.GetProperty("metric").GetString()}"),
            await page.Locator("#chart-usage svg .label-text").AllTextContentsAsync());
        Assert.Equal(
            latest.Select(r => r.GetProperty("entitlement").ValueKind == JsonValueKind.Null
                ? $"{Number(r.GetProperty("reported"))} (no entitlement)"
                : $"{Number(r.GetProperty("reported"))} of {Number(r.GetProperty("entitlement"))}{(r.GetProperty("overage").GetInt64() > 0 ? $" (+{Number(r.GetProperty("overage"))})" : "")}"),
            await page.Locator("#chart-usage svg .value-text").AllTextContentsAsync());
        return rows;
    }

    /// <summary>Chooses a range with the date picker and waits until the page shows it.</summary>
    private static async Task ShowRangeAsync(IPage page, DateOnly from, DateOnly to)
    {
        await page.FillAsync("#range-from", from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        await page.FillAsync("#range-to", to.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        await page.ClickAsync("#range-apply");
        await page.WaitForFunctionAsync("hash => document.body.dataset.state === 'ready' && location.hash === hash", $"#from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}");
    }

    private static async Task<T> FigureAsync<T>(IPage page, string name)
        where T : IParsable<T>
    {
        var value = await page.Locator($"[data-figure='{name}'] .value").GetAttributeAsync("data-value");
        return T.Parse(value ?? "", CultureInfo.InvariantCulture);
    }

    internal static async Task WaitUntilReadyAsync(IPage page, ConcurrentQueue<string> console)
    {
        try
        {
            await page.WaitForFunctionAsync("() => document.body.dataset.state === 'ready'");
        }
        catch (TimeoutException e)
        {
            var status = await page.Locator("#status").TextContentAsync();
            throw new TimeoutException($"The dashboard did not become ready. Status: {status}\n{string.Join('\n', console)}", e);
        }
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient api, string route) =>
        await api.GetFromJsonAsync<JsonElement>(route, Token);

    private static DateOnly Day(JsonElement json, string name) =>
        DateOnly.ParseExact(json.GetProperty(name).GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture);

    internal static string ScreenshotPath(string file)
    {
        var directory = Path.Combine(RepositoryPaths.Root, "artifacts", "screenshots");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, file);
    }

    /// <summary>The README's screenshot is refreshed on request only, so a test run leaves the working tree as it was.</summary>
    private static void UpdateReadmeScreenshot()
    {
        var target = Path.Combine(RepositoryPaths.Root, "docs", "dashboard.png");
        if (!File.Exists(target) || Environment.GetEnvironmentVariable("TELEMETRY_UPDATE_SCREENSHOTS") == "1")
        {
            File.Copy(ScreenshotPath("dashboard.png"), target, overwrite: true);
        }
    }
}
