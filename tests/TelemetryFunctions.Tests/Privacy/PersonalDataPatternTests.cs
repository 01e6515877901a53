using System.Reflection;
using System.Text.RegularExpressions;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Tests.Privacy;

public sealed class PersonalDataPatternTests
{
    [Fact]
    public void Personal_data_and_timestamp_checks_do_not_depend_on_a_wall_clock_time_out()
    {
        var patterns = new[] { typeof(PersonalDataScrubber), typeof(EventTimestamps) }
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public))
            .Where(m => m.ReturnType == typeof(Regex) && m.GetParameters().Length == 0)
            .Select(m => (m.Name, Regex: (Regex)m.Invoke(null, null)!))
            .ToList();

        Assert.NotEmpty(patterns);
        Assert.All(patterns, p => Assert.True(p.Regex.MatchTimeout == Regex.InfiniteMatchTimeout, $"{p.Name} has a match time-out of {p.Regex.MatchTimeout}."));
    }

    [Theory]
    [InlineData("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl")]
    [InlineData("key sk_live_abcdefgh12345678")]
    [InlineData("ghp_abcdefghijklmnopqrstuvwxyz0123")]
    [InlineData("AKIAABCDEFGHIJKLMNOP")]
    [InlineData("OPENAI_API_KEY sk-proj-abcdefghijklmnopqrstuvwxyz012345")]
    [InlineData("key sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF")]
    [InlineData("npm_abcdefghijklmnopqrstuvwxyz0123456789")]
    [InlineData("glpat-abcdefghijklmnopqrst")]
    [InlineData("posting to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")]
    [InlineData("https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnop")]
    [InlineData("Authorization: Bearer abcdefghijklmnopqrstuvwxyz")]
    public void Secrets_in_free_text_are_recognised(string text) =>
        Assert.True(PersonalDataScrubber.LooksPersonal(text));

    [Theory]
    [InlineData("Dashboard Viewed")]
    [InlineData("5f0c8a7e-1c2d-4b7e-9a3f-0123456789ab")]
    [InlineData("xsk_live_abcdefgh12345678")]
    public void Ordinary_text_is_not_taken_for_a_secret(string text) =>
        Assert.False(PersonalDataScrubber.LooksPersonal(text));

    [Theory]
    [InlineData("ip-10-0-0-8.ec2.internal")]
    [InlineData("ec2-54-12-3-4.compute-1.amazonaws.com")]
    [InlineData("c-73-22-1-5")]
    [InlineData("at 0-0-0-0")]
    [InlineData("192.168.001.015")]
    [InlineData("x.10.0.0.17")]
    [InlineData("node1.10.0.0.17")]
    [InlineData("db2.192.168.1.5")]
    [InlineData("web01.10.0.0.17")]
    [InlineData("web-1.10.0.0.17")]
    [InlineData("12.05.00.00")]
    [InlineData("Linux 203.0.113.77 5.15")]
    [InlineData("ping%20192.168.41.77")]
    [InlineData("q=ping%20fe80::99")]
    [InlineData("http%3A%2F%2F%5B2001%3Adb8%3A%3A78%5D%2F")]
    public void Ip_addresses_in_any_spelling_are_recognised(string text) =>
        Assert.True(PersonalDataScrubber.LooksPersonal(text));

    [Theory]
    [InlineData("2026-12-02")]
    [InlineData("2026-12-02-10-30")]
    [InlineData("1-2-3-4-5")]
    [InlineData("ip-10-0-0-256")]
    [InlineData("ip-10-00-0-7")]
    [InlineData("ec2-54-12-3")]
    [InlineData("x10-0-0-7")]
    [InlineData("1.2.3.4.5")]
    [InlineData("1.3.6.1.4.1.311")]
    [InlineData("x 1.2.3.4.5")]
    [InlineData("1.2.3.4.5.6")]
    [InlineData("v1.2.3.4.5")]
    [InlineData("V1.2.3.4.5")]
    [InlineData("10.0.0.256")]
    [InlineData("1.2.3.1000")]
    [InlineData("Chrome/86.0.4240.111")]
    [InlineData("build%2D1-2-3-4-5")]
    [InlineData("id%3A1-2-3-4-5")]
    [InlineData("x%2E1.2.3.4.5")]
    public void Dates_version_runs_and_numbers_out_of_range_are_not_taken_for_addresses(string text) =>
        Assert.False(PersonalDataScrubber.LooksPersonal(text));

    [Theory]
    [InlineData("alice&#64;example.com")]
    [InlineData("alice&commat;example.com")]
    [InlineData("alice@example\u3002com")]
    [InlineData("alice@example\uFF61com")]
    [InlineData("jane&#00000064;example.com")]
    [InlineData("jane&#x000000040;example.com")]
    [InlineData("jane&#000000000000000000000000000064example&#x000000002E;com")]
    public void E_mail_addresses_spelt_with_character_references_or_ideographic_full_stops_are_recognised(string text) =>
        Assert.True(PersonalDataScrubber.LooksPersonal(text));

    [Theory]
    [InlineData("10.20.30.40")]
    [InlineData(" 010.020.030.040 ")]
    [InlineData("2001:db8::7")]
    [InlineData("10.0.0.5:8080")]
    [InlineData("[2001:db8::5]")]
    [InlineData("[2001:db8::5]:443")]
    [InlineData("fe80::5%eth0")]
    [InlineData("ip-10-0-0-5")]
    [InlineData("ip-10-0-0-5.ec2.internal")]
    [InlineData("node1.10.0.0.17")]
    public void Identifiers_that_are_ip_addresses_are_recognised(string id) =>
        Assert.True(PersonalDataScrubber.LooksLikeIpAddress(id));

    [Theory]
    [InlineData("10%2E20%2E30%2E40")]
    [InlineData("10%252E20%252E30%252E40")]
    [InlineData("10&#46;20&#46;30&#46;40")]
    [InlineData("\uFF11\uFF10.\uFF12\uFF10.\uFF13\uFF10.\uFF14\uFF10")]
    [InlineData("10.20.30.40\u200B")]
    [InlineData("10.20\u00AD.30.40:8080")]
    [InlineData("10.0\u061C.0.5")]
    [InlineData("10.0.0\uFE0F.5")]
    [InlineData("2001%3Adb8%3A%3A7")]
    [InlineData("ip%2D10%2D0%2D0%2D5")]
    public void Identifiers_that_are_ip_addresses_spelt_encoded_fullwidth_or_with_invisible_characters_are_recognised(string id) =>
        Assert.True(PersonalDataScrubber.LooksLikeIpAddress(id));

    [Theory]
    [InlineData("user-2026-12-02")]
    [InlineData("5f0c8a7e-1c2d-4b7e-9a3f-0123456789ab")]
    [InlineData("1.2.3.4.5")]
    [InlineData("u-1234")]
    [InlineData("10.0.0.5:8080:1")]
    [InlineData("v%31.2.3.4.5")]
    [InlineData("user%2D1234")]
    public void Identifiers_that_only_hold_numbers_are_not_taken_for_addresses(string id) =>
        Assert.False(PersonalDataScrubber.LooksLikeIpAddress(id));

    [Theory]
    [InlineData("help@example.com (from 198.51.100.23)", "help@example.com")]
    [InlineData("  Jane <jane@example.com>  ", "jane@example.com")]
    [InlineData("no address here", null)]
    public void Find_email_returns_only_the_address(string text, string? expected) =>
        Assert.Equal(expected, PersonalDataScrubber.FindEmail(text));

    [Fact]
    public void A_long_run_of_token_like_text_is_checked_to_the_end_and_kept()
    {
        // Quadratic for a backtracking engine (seconds); checked in one pass now, so it is judged, not timed out.
        var text = string.Concat(Enumerable.Repeat("eyJ", 20_000));

        Assert.False(PersonalDataScrubber.LooksPersonal(text));
        Assert.True(PersonalDataScrubber.LooksPersonal(text + ".eyJabcd.sig"));
    }
}
