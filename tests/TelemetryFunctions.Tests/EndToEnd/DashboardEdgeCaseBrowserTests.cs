using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>
/// The dashboard in a real headless Chromium on a phone's width, and given what it must refuse: ranges it cannot
/// show (from the pickers or a shared link, refused by the page or by the API) and a key a header cannot carry, but
/// not a passphrase key with spaces; and used by keyboard and screen reader (each chart one stop of the Tab key with
/// the arrow keys between its figures, the sign-in error announced, contrast, captions). The page's API requests are
/// answered with fixed figures, so each test is about the page alone.
/// </summary>
public sealed class DashboardEdgeCaseBrowserTests(AzuriteFixture azurite)
{
    private const string AdminKey = "dev-admin-key";

    private const string ActiveUsers = """
        {"from":"2026-11-01","to":"2026-11-03","reportingTimeZone":"UTC","today":"2026-11-04","days":[
        {"day":"2026-11-01","dau":5,"wau":5,"mau":5,"activeInstances":5,"activeInstancesByVersion":{"1.0.0":5},"activeInstancesByOs":{"linux":5}},
        {"day":"2026-11-02","dau":6,"wau":8,"mau":8,"activeInstances":5,"activeInstancesByVersion":{"1.0.0":4,"1.1.0":1},"activeInstancesByOs":{"linux":5}},
        {"day":"2026-11-03","dau":7,"wau":9,"mau":9,"activeInstances":8,"activeInstancesByVersion":{"1.1.0":8},"activeInstancesByOs":{"linux":8}}]}
        """;

    private const string Installations = """
        {"from":"2026-11-01","to":"2026-11-03","reportingTimeZone":"UTC","today":"2026-11-04",
        "totals":{"started":20,"succeeded":19,"failed":1,"supportRequests":2,"successRate":0.95},
        "byOs":[{"value":"linux","started":20,"succeeded":19,"failed":1,"successRate":0.95}],"byVersion":[],"days":[]}
        """;

    private const string Instances = """
        {"asOf":"2026-11-04T10:00:00Z","active":8,"inactive":1,"total":9,"newLast7Days":1,"goneInactiveLast7Days":0,
        "byVersion":[{"value":"1.1.0","active":8,"inactive":0,"total":8},{"value":"1.0.0","active":0,"inactive":1,"total":1}],
        "byOs":[{"value":"linux","active":8,"inactive":1,"total":9}],"recentDays":[],"inactiveAfterMinutes":390}
        """;

    private const string Usage = """
        {"success":true,"from":"2026-11","to":"2026-11","rows":[
        {"customer":"acme","metric":"process-instances","month":"2026-11","reported":268950,"entitlement":250000,"overage":18950,"reports":2,"aggregation":"sum","computedAt":null},
        {"customer":"globex","metric":"api-calls","month":"2026-11","reported":5000000,"entitlement":1000,"overage":4999000,"reports":2,"aggregation":"sum","computedAt":null}]}
        """;

    /// <summary>What the API answers, with <c>invalid_range</c>, for a last day after today (2026-11-04).</summary>
    private const string RefusedRange = "to must not be in the future: 2026-11-04 (UTC) or earlier.";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task On_a_phone_chart_text_is_drawn_at_its_own_size_and_a_tap_opens_a_tip_inside_the_screen()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 375, Height = 740 }, Locale = "en-US", HasTouch = true, IsMobile = true });
        var page = dashboard.Page;
        await dashboard.SignInAsync();

        // Every label of every chart is at least 11 px on screen, not a 760-unit drawing shrunk to the card.
        var smallest = await page.EvaluateAsync<double>("""
            () => Math.min(...[...document.querySelectorAll('#charts svg text')]
              .map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a))
            """);
        Assert.True(smallest >= 11, $"The smallest chart text is {smallest:0.0} px on screen.");
        Assert.True(await page.Locator("#charts svg .axis text").CountAsync() > 0);

        await page.ScreenshotAsync(new PageScreenshotOptions { Path = DashboardBrowserTests.ScreenshotPath("dashboard-phone.png"), FullPage = true });

        // A tap on a bar opens its tip, which stays within the screen.
        await page.Locator("#chart-versions rect.bar").First.TapAsync(new LocatorTapOptions { Force = true });
        var tooltip = page.Locator("#tooltip");
        await tooltip.WaitForAsync();
        Assert.Contains("2026-11-01 · 1.0.0: 5 instances", await tooltip.TextContentAsync() ?? "", StringComparison.Ordinal);
        var box = await tooltip.BoundingBoxAsync();
        Assert.NotNull(box);
        Assert.InRange(box.X, 0, 375 - box.Width);
        Assert.InRange(box.Y, 0, 740 - box.Height);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = DashboardBrowserTests.ScreenshotPath("dashboard-phone-tip.png") });

        // One customer fifty thousand times over its entitlement does not flatten the others: the scale ends at 200%
        // and that row is marked, with its exact figures in its note.
        Assert.Equal(1, await page.Locator("#chart-usage svg .beyond-text").CountAsync());
        Assert.Equal(["268,950 of 250,000 (+18,950)", "5,000,000 of 1,000 (+4,999,000)"], await page.Locator("#chart-usage svg .value-text").AllTextContentsAsync());

        // Each chart's "Numbers as a table" has a name of its own for a screen reader; three days are none of the
        // quick ranges, so no quick-range button is pressed.
        var toggles = await page.Locator("details.numbers summary").AllTextContentsAsync();
        Assert.Equal(6, toggles.Count);
        Assert.Equal(toggles.Count, toggles.Distinct().Count());
        Assert.All(toggles, t => Assert.StartsWith("Numbers as a table", t, StringComparison.Ordinal));
        Assert.Equal(["false", "false", "false", "false"], await page.Locator(".presets button").EvaluateAllAsync<string[]>("buttons => buttons.map(b => b.getAttribute('aria-pressed'))"));
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task A_range_the_page_refuses_leaves_the_figures_and_the_pickers_on_the_range_shown()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await dashboard.SignInAsync();
        Assert.Equal("#from=2026-11-01&to=2026-11-03", new Uri(page.Url).Fragment);

        // After signing in, the keyboard is at the range form rather than nowhere.
        Assert.Equal("range-from", await page.EvaluateAsync<string>("() => document.activeElement?.id"));

        foreach (var (from, to, message) in new[]
        {
            ("2026-10-10", "2026-10-01", "The first day must not be after the last."),
            ("2025-01-01", "2026-11-03", "Choose at most 366 days."),
            ("0001-01-01", "0001-01-31", "Choose days from 2000-01-01 on."),
        })
        {
            dashboard.Requests.Clear();
            await page.FillAsync("#range-from", from);
            await page.FillAsync("#range-to", to);
            await page.ClickAsync("#range-apply");
            await page.WaitForFunctionAsync("text => document.getElementById('status').textContent.includes(text)", message);
            Assert.Contains("Still showing Nov 1 – Nov 3 2026.", await page.Locator("#status").TextContentAsync() ?? "", StringComparison.Ordinal);
            Assert.Equal("2026-11-01", await page.InputValueAsync("#range-from"));
            Assert.Equal("2026-11-03", await page.InputValueAsync("#range-to"));
            Assert.Equal("#from=2026-11-01&to=2026-11-03", new Uri(page.Url).Fragment);
            Assert.True(await page.Locator("#charts").IsVisibleAsync());
            Assert.Empty(dashboard.Requests);
        }

        // Shared links it cannot show: it says so, shows the default range, and the pickers and the link agree on it.
        foreach (var (hash, message) in new[]
        {
            ("#from=0001-01-01&to=0001-01-31", "Choose days from 2000-01-01 on."),
            ("#from=abc&to=2026-11-03", "Give both days as YYYY-MM-DD."),
            ("#from=2026-11-03&to=2026-11-01", "The first day must not be after the last."),
        })
        {
            dashboard.Requests.Clear();
            await page.GotoAsync(new Uri(dashboard.Host.BaseAddress, "/dashboard" + hash).ToString());
            await DashboardBrowserTests.WaitUntilReadyAsync(page, dashboard.Console);
            var status = await page.Locator("#status").TextContentAsync() ?? "";
            Assert.Contains("cannot be shown", status, StringComparison.Ordinal);
            Assert.Contains(message, status, StringComparison.Ordinal);
            Assert.Equal("#from=2026-11-01&to=2026-11-03", new Uri(page.Url).Fragment);
            Assert.Equal("2026-11-01", await page.InputValueAsync("#range-from"));
            Assert.Equal("2026-11-03", await page.InputValueAsync("#range-to"));
            Assert.DoesNotContain(dashboard.Requests, url => url.Contains("=0000-", StringComparison.Ordinal) || url.Contains("=0001-", StringComparison.Ordinal));
        }

        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task A_key_a_header_cannot_carry_is_refused_at_the_form_and_not_kept()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await page.GotoAsync(new Uri(dashboard.Host.BaseAddress, "/dashboard").ToString());

        foreach (var key in new[] { "dev-admin-key\u200b", "dev-аdmin-key" })
        {
            await page.FillAsync("#key-input", key);
            await page.ClickAsync("#key-form button[type=submit]");
            await page.Locator("#key-error").WaitForAsync();
            Assert.Contains("Paste the admin key again.", await page.Locator("#key-error").TextContentAsync() ?? "", StringComparison.Ordinal);
            Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('telemetryfunctions.adminKey')"));
            Assert.True(await page.Locator("#key-panel").IsVisibleAsync());
            Assert.Empty(dashboard.Requests);
        }

        // The right key still opens the dashboard.
        await dashboard.SignInAsync();
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task A_passphrase_key_with_spaces_is_kept_sent_as_it_is_and_still_kept_after_a_reload()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await page.GotoAsync(new Uri(dashboard.Host.BaseAddress, "/dashboard").ToString());

        // Spaces at the ends are trimmed; those inside are part of the key.
        await page.FillAsync("#key-input", "  my admin key 2026 ");
        await page.ClickAsync("#key-form button[type=submit]");
        await DashboardBrowserTests.WaitUntilReadyAsync(page, dashboard.Console);
        Assert.Equal("my admin key 2026", await page.EvaluateAsync<string?>("() => sessionStorage.getItem('telemetryfunctions.adminKey')"));
        Assert.NotEmpty(dashboard.KeysSent);
        Assert.All(dashboard.KeysSent, key => Assert.Equal("my admin key 2026", key));

        // The check at start-up keeps it too: a reload stays signed in.
        dashboard.KeysSent.Clear();
        await page.ReloadAsync();
        await DashboardBrowserTests.WaitUntilReadyAsync(page, dashboard.Console);
        Assert.True(await page.Locator("#charts").IsVisibleAsync());
        Assert.False(await page.Locator("#key-panel").IsVisibleAsync());
        Assert.NotEmpty(dashboard.KeysSent);
        Assert.All(dashboard.KeysSent, key => Assert.Equal("my admin key 2026", key));
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task A_shared_link_whose_range_the_api_refuses_gets_the_default_range_with_the_reason_once()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;

        // A last day in the future passes the page's own checks, which do not know what day it is where the API counts
        // days (2026-11-04 here); the API refuses it with invalid_range.
        await page.GotoAsync(new Uri(dashboard.Host.BaseAddress, "/dashboard#from=2026-11-01&to=2026-11-30").ToString());
        await dashboard.SignInAsync();
        var status = await page.Locator("#status").TextContentAsync() ?? "";
        Assert.Contains("The link's range (from=2026-11-01, to=2026-11-30) cannot be shown", status, StringComparison.Ordinal);
        Assert.Contains(RefusedRange, status, StringComparison.Ordinal);
        Assert.Contains("Showing Nov 1 – Nov 3 2026", status, StringComparison.Ordinal);
        Assert.True(await page.Locator("#status").EvaluateAsync<bool>("s => s.classList.contains('error')"));
        Assert.True(await page.Locator("#charts").IsVisibleAsync());
        Assert.Equal("#from=2026-11-01&to=2026-11-03", new Uri(page.Url).Fragment);
        Assert.Equal("2026-11-01", await page.InputValueAsync("#range-from"));
        Assert.Equal("2026-11-03", await page.InputValueAsync("#range-to"));

        // The link's range is asked for once and the default range once: no loop.
        var activeUsers = dashboard.Requests.Select(url => new Uri(url)).Where(u => u.AbsolutePath == "/api/stats/active-users").ToList();
        Assert.Single(activeUsers, u => u.Query.Contains("to=2026-11-30", StringComparison.Ordinal));
        Assert.Single(activeUsers, u => u.Query.Length == 0);
        await page.WaitForTimeoutAsync(500);
        Assert.Equal(activeUsers.Count, dashboard.Requests.Count(url => new Uri(url).AbsolutePath == "/api/stats/active-users"));

        // The same range chosen with the pickers is not a link: the API's reason is an error, and the pickers keep it.
        await page.FillAsync("#range-from", "2026-11-01");
        await page.FillAsync("#range-to", "2026-11-30");
        await page.ClickAsync("#range-apply");
        await page.WaitForFunctionAsync("() => document.body.dataset.state === 'error'");
        Assert.Equal("The API answered: " + RefusedRange, await page.Locator("#status").TextContentAsync());
        Assert.Equal("2026-11-30", await page.InputValueAsync("#range-to"));
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task A_deployment_without_usage_reports_gets_an_explanation_in_the_usage_chart()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        dashboard.UsageServed = false;
        await dashboard.SignInAsync();

        var explanation = await dashboard.Page.Locator("#chart-usage .chart-empty").TextContentAsync() ?? "";
        Assert.Contains("does not serve usage reports", explanation, StringComparison.Ordinal);
        Assert.DoesNotContain("No route", explanation, StringComparison.Ordinal);
        Assert.True(await dashboard.Page.Locator("#chart-active-users svg[aria-roledescription=chart]").IsVisibleAsync());
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task Each_chart_is_one_tab_stop_whose_arrow_keys_show_each_figure_in_the_tip_and_escape_hides_it()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await dashboard.SignInAsync();
        var tooltip = page.Locator("#tooltip");
        const string Focused = "() => [document.activeElement.closest('section')?.id ?? '', document.activeElement.getAttribute('aria-label') ?? document.activeElement.textContent]";

        // Tab from the range form lands on the first day of the active-users chart, named and shown with its figures.
        await page.FocusAsync("#sign-out");
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal(["chart-active-users", "2026-11-01, DAU: 5, WAU: 5, MAU: 5"], await page.EvaluateAsync<string[]>(Focused));
        await tooltip.WaitForAsync();
        Assert.Equal("2026-11-01\nDAU: 5\nWAU: 5\nMAU: 5", await tooltip.TextContentAsync());

        // The arrow keys move between the days, End to the last; the tip follows, and the mark shows a focus ring.
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.Equal(["chart-active-users", "2026-11-02, DAU: 6, WAU: 8, MAU: 8"], await page.EvaluateAsync<string[]>(Focused));
        Assert.Equal("2026-11-02\nDAU: 6\nWAU: 8\nMAU: 8", await tooltip.TextContentAsync());
        Assert.Equal("rgb(29, 35, 48)", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).stroke"));
        await page.Keyboard.PressAsync("End");
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.Equal("2026-11-03\nDAU: 7\nWAU: 9\nMAU: 9", await tooltip.TextContentAsync());

        // Escape hides the tip and leaves the focus where it was; the next arrow shows the tip again.
        await page.Keyboard.PressAsync("Escape");
        Assert.True(await tooltip.IsHiddenAsync());
        Assert.Equal(["chart-active-users", "2026-11-03, DAU: 7, WAU: 9, MAU: 9"], await page.EvaluateAsync<string[]>(Focused));
        await page.Keyboard.PressAsync("ArrowLeft");
        Assert.Equal("2026-11-02\nDAU: 6\nWAU: 8\nMAU: 8", await tooltip.TextContentAsync());

        // Tab leaves the chart for its table, and Shift+Tab comes back to the day last moved to.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal(["chart-active-users", "Numbers as a table: Active users per day"], await page.EvaluateAsync<string[]>(Focused));
        Assert.True(await tooltip.IsHiddenAsync());
        await page.Keyboard.PressAsync("Shift+Tab");
        Assert.Equal(["chart-active-users", "2026-11-02, DAU: 6, WAU: 8, MAU: 8"], await page.EvaluateAsync<string[]>(Focused));

        // In the stacked bars the arrows go through a day's versions, then the next day's.
        await page.Locator("#chart-versions rect.bar").First.FocusAsync();
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.Equal(["chart-versions", "2026-11-02 · 1.0.0: 4 instances (80.0%)"], await page.EvaluateAsync<string[]>(Focused));
        Assert.Equal("2026-11-02 · 1.0.0: 4 instances (80.0%)", await tooltip.TextContentAsync());

        // A narrower window draws the charts again at their new width; the focus stays on the same figure.
        var drawn = await page.Locator("#chart-versions svg[aria-roledescription=chart]").GetAttributeAsync("viewBox");
        await page.SetViewportSizeAsync(800, 900);
        await page.WaitForFunctionAsync("drawn => document.querySelector('#chart-versions svg[aria-roledescription=chart]').getAttribute('viewBox') !== drawn", drawn);
        Assert.Equal(["chart-versions", "2026-11-02 · 1.0.0: 4 instances (80.0%)"], await page.EvaluateAsync<string[]>(Focused));
        await page.Keyboard.PressAsync("ArrowRight");
        Assert.Equal("2026-11-02 · 1.1.0: 1 instance (20.0%)", await tooltip.TextContentAsync());

        // Across the whole page, each chart is exactly one stop of the Tab key.
        await page.FocusAsync("#sign-out");
        var stops = new List<string>();
        for (var i = 0; i < 80 && !await page.EvaluateAsync<bool>("() => document.activeElement.closest('footer') !== null"); i++)
        {
            await page.Keyboard.PressAsync("Tab");
            stops.Add(await page.EvaluateAsync<string>("() => { const svg = document.activeElement.closest('svg'); return svg ? svg.getAttribute('aria-label') : ''; }"));
        }

        var charts = await page.Locator("#charts svg[aria-roledescription=chart]").EvaluateAllAsync<string[]>("svgs => svgs.map(s => s.getAttribute('aria-label'))");
        Assert.Equal(8, charts.Length);
        Assert.Equal(charts, stops.Where(s => s.Length > 0));
        dashboard.AssertNoPageError();
    }

    [Fact]
    public async Task The_sign_in_error_is_announced_and_tied_to_the_key_field_which_keeps_the_focus()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await page.GotoAsync(new Uri(dashboard.Host.BaseAddress, "/dashboard").ToString());

        // The field is named by its label and has the focus; a key of spaces is refused with a reason, not ignored.
        Assert.Equal("key-input", await page.GetByLabel("Admin key").GetAttributeAsync("id"));
        Assert.Equal("key-input", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        await page.FillAsync("#key-input", "   ");
        await page.Keyboard.PressAsync("Enter");
        await page.Locator("#key-error").WaitForAsync();
        Assert.Equal("Enter the admin key.", await page.Locator("#key-error").TextContentAsync());
        Assert.Equal("alert", await page.Locator("#key-error").GetAttributeAsync("role"));
        Assert.Equal("true", await page.Locator("#key-input").GetAttributeAsync("aria-invalid"));
        Assert.Equal("key-error", await page.Locator("#key-input").GetAttributeAsync("aria-describedby"));
        Assert.Equal("key-input", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        Assert.Empty(dashboard.Requests);

        // Signing in clears it; the pickers are named by their labels.
        await dashboard.SignInAsync();
        Assert.Null(await page.Locator("#key-input").GetAttributeAsync("aria-invalid"));
        Assert.Equal("range-from", await page.GetByLabel("From", new PageGetByLabelOptions { Exact = true }).GetAttributeAsync("id"));
        Assert.Equal("range-to", await page.GetByLabel("To", new PageGetByLabelOptions { Exact = true }).GetAttributeAsync("id"));
        dashboard.AssertNoPageError();
    }

    /// <summary>
    /// WCAG AA on the drawn page: text 4.5:1 against what is behind it, chart marks and field borders 3:1 against the
    /// card, a focus ring on what has the focus, the line chart's series told apart by their dashes as well as their
    /// colours, and every table with a caption and scoped, non-empty headers.
    /// </summary>
    [Fact]
    public async Task Text_marks_and_fields_have_enough_contrast_and_lines_and_tables_do_not_rely_on_colour_or_sight()
    {
        DashboardBrowserTests.RequireChromium();
        await using var dashboard = await RoutedDashboard.StartAsync(azurite, new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, Locale = "en-US" });
        var page = dashboard.Page;
        await dashboard.SignInAsync();
        await page.EvaluateAsync("() => document.querySelectorAll('details.numbers').forEach(d => d.open = true)");

        var failures = await page.EvaluateAsync<string[]>("""
            () => {
              const rgb = (c) => c.match(/[\d.]+/g).map(Number);
              const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
              const ratio = (a, b) => { const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((m, n) => n - m); return (x + 0.05) / (y + 0.05); };
              const background = (node) => {
                for (let n = node; n; n = n.parentElement) {
                  const c = getComputedStyle(n).backgroundColor;
                  if (rgb(c)[3] !== 0) return c;
                }
                return 'rgb(255, 255, 255)';
              };
              const failures = [];
              for (const node of document.querySelectorAll('body *')) {
                const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim() !== '');
                if (!own || node.closest('[hidden], .visually-hidden, #tooltip') || node.getClientRects().length === 0) continue;
                const style = getComputedStyle(node);
                const inSvg = node instanceof SVGElement;
                const colour = inSvg ? style.fill : style.color;
                const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
                const r = ratio(colour, inSvg ? 'rgb(255, 255, 255)' : background(node));
                if (r < (large ? 3 : 4.5)) failures.push(`text "${node.textContent.trim().slice(0, 30)}" ${r.toFixed(2)}`);
              }
              for (const mark of document.querySelectorAll('#charts svg [data-tip]')) {
                const colour = getComputedStyle(mark).fill;
                if (mark.tagName === 'rect' && !mark.classList.contains('hover-band') && ratio(colour, 'rgb(255, 255, 255)') < 3) failures.push(`mark "${mark.dataset.tip}" ${ratio(colour, 'rgb(255, 255, 255)').toFixed(2)}`);
              }
              for (const field of document.querySelectorAll('input')) {
                const r = ratio(getComputedStyle(field).borderTopColor, background(field.parentElement));
                if (field.getClientRects().length > 0 && r < 3) failures.push(`border of #${field.id} ${r.toFixed(2)}`);
              }
              const dashes = [...document.querySelectorAll('#chart-active-users svg path')].map((p) => p.getAttribute('stroke-dasharray'));
              if (new Set(dashes).size !== dashes.length) failures.push(`line dashes ${dashes.join(' | ')}`);
              const legend = [...document.querySelectorAll('#chart-active-users .legend line')].map((l) => l.getAttribute('stroke-dasharray'));
              if (legend.join('|') !== dashes.join('|')) failures.push(`legend dashes ${legend.join(' | ')}`);
              for (const table of document.querySelectorAll('#charts table')) {
                if (!table.caption || table.caption.textContent.trim() === '') failures.push('a table without a caption');
                for (const th of table.querySelectorAll('th')) {
                  if (!['col', 'row'].includes(th.scope) || th.textContent.trim() === '') failures.push(`header "${th.textContent}" in ${table.caption?.textContent}`);
                }
              }
              return failures;
            }
            """);
        Assert.Empty(failures);

        // What has the keyboard's focus has a ring.
        await page.FocusAsync("#sign-out");
        await page.Keyboard.PressAsync("Shift+Tab");
        Assert.Equal("solid", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).outlineStyle"));
        dashboard.AssertNoPageError();
    }

    /// <summary>The local host, a browser page on it whose API requests get the fixed answers above, and what the page did.</summary>
    private sealed class RoutedDashboard : IAsyncDisposable
    {
        private IPlaywright playwright = null!;
        private IBrowser browser = null!;

        public LocalHostProcess Host { get; private set; } = null!;

        public IPage Page { get; private set; } = null!;

        /// <summary>The URLs of the page's API requests.</summary>
        public ConcurrentQueue<string> Requests { get; } = new();

        /// <summary>The <c>x-functions-key</c> header of each of the page's API requests.</summary>
        public ConcurrentQueue<string?> KeysSent { get; } = new();

        public ConcurrentQueue<string> Console { get; } = new();

        /// <summary>Whether <c>/api/usage</c> answers; when not, it is a 404 as on a host without that route.</summary>
        public bool UsageServed { get; set; } = true;

        public static async Task<RoutedDashboard> StartAsync(AzuriteFixture azurite, BrowserNewContextOptions options)
        {
            var dashboard = new RoutedDashboard();
            dashboard.Host = await LocalHostProcess.StartAsync(azurite, null, Token);
            dashboard.playwright = await Playwright.CreateAsync();
            dashboard.browser = await dashboard.playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = DashboardBrowserTests.ChromiumPath, Headless = true, Args = DashboardBrowserTests.ChromiumArgs });
            var context = await dashboard.browser.NewContextAsync(options);
            var page = await context.NewPageAsync();
            page.Console += (_, message) => dashboard.Console.Enqueue($"{message.Type}: {message.Text}");
            page.PageError += (_, error) => dashboard.Console.Enqueue("page error: " + error);
            await page.RouteAsync(new Regex(@"/api/(stats|usage)"), async route =>
            {
                dashboard.Requests.Enqueue(route.Request.Url);
                dashboard.KeysSent.Enqueue(route.Request.Headers.GetValueOrDefault("x-functions-key"));
                var to = System.Web.HttpUtility.ParseQueryString(new Uri(route.Request.Url).Query)["to"];
                if (to is not null && string.CompareOrdinal(to, "2026-11-04") > 0 && route.Request.Url.Contains("/api/stats/", StringComparison.Ordinal))
                {
                    await route.FulfillAsync(new RouteFulfillOptions { Status = 400, ContentType = "application/json", Body = $$$"""{"success":false,"error":{"code":"invalid_range","message":"{{{RefusedRange}}}"}}""" });
                    return;
                }

                if (!dashboard.UsageServed && new Uri(route.Request.Url).AbsolutePath == "/api/usage")
                {
                    await route.FulfillAsync(new RouteFulfillOptions { Status = 404, ContentType = "application/json", Body = """{"success":false,"error":{"code":"not_found","message":"No route serves this path. The OpenAPI document at /api/openapi.json lists every route."}}""" });
                    return;
                }

                var body = new Uri(route.Request.Url).AbsolutePath switch
                {
                    "/api/stats/active-users" => ActiveUsers,
                    "/api/stats/installations" => Installations,
                    "/api/stats/instances" => Instances,
                    "/api/usage" => Usage,
                    var path => throw new InvalidOperationException(path),
                };
                await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "application/json", Body = body });
            });
            dashboard.Page = page;
            return dashboard;
        }

        public async Task SignInAsync()
        {
            if (!Page.Url.Contains("/dashboard", StringComparison.Ordinal))
            {
                await Page.GotoAsync(new Uri(Host.BaseAddress, "/dashboard").ToString());
            }

            await Page.FillAsync("#key-input", AdminKey);
            await Page.ClickAsync("#key-form button[type=submit]");
            await DashboardBrowserTests.WaitUntilReadyAsync(Page, Console);
            Assert.True(await Page.Locator("#charts").IsVisibleAsync());
        }

        public void AssertNoPageError() => Assert.DoesNotContain(Console, m => m.StartsWith("page error", StringComparison.Ordinal));

        public async ValueTask DisposeAsync()
        {
            if (browser is not null)
            {
                await browser.DisposeAsync();
            }

            playwright?.Dispose();
            if (Host is not null)
            {
                await Host.DisposeAsync();
            }
        }
    }
}
