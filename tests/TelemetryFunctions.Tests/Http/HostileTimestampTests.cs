using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Hostile timestamps (catalogue #24-#27) against a server clock fixed at <see cref="Hostile.Now"/>: non-ISO text,
/// dates far in the future or past, years outside 1601-9999, and Segment's clock-skew correction
/// <c>timestamp = receivedAt - (sentAt - originalTimestamp)</c>.
/// </summary>
public sealed class HostileTimestampTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = Hostile.Now;

    [Theory]
    [InlineData("yesterday")]
    [InlineData("12/31/2024 10:00")]
    [InlineData("1718445600")]
    [InlineData("Sun, 15 Jun 2025 11:00:00 GMT")]
    [InlineData("2025-02-30T00:00:00Z")]
    [InlineData("2025-06-15T25:00:00Z")]
    [InlineData("2025-6-15T10:00:00Z")]
    [InlineData("2025-06-15T10:00:00Z\n")]
    [InlineData("")]
    [InlineData("2025-06-15T10:00:00Z and then some text that makes this value far longer than any ISO 8601 date-time")]
    [InlineData("\u0662\u0660\u0662\u0665-06-15T10:00:00Z")]
    [InlineData("\uFF12\uFF10\uFF12\uFF15-06-15T10:00:00Z")]
    [InlineData("\u0662\u0660\u0662\u0665-\u0660\u0666-\u0661\u0665")]
    public async Task A_non_iso_timestamp_is_accepted_with_the_server_time_and_flagged(string timestamp)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", TrackAt(timestamp));

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(Now, row.GetDateTimeOffset("EventTime"));
        Assert.Equal(Now, row.GetDateTimeOffset("ReceivedAt"));
        var flags = Hostile.Payload(row)["flags"]!.AsArray().Select(f => f!.GetValue<string>());
        Assert.Contains("timestamp is not ISO 8601; server time used", flags);
    }

    [Fact]
    public async Task A_non_iso_original_timestamp_beside_a_valid_timestamp_is_flagged_as_ignored_and_the_timestamp_dates_the_event()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var e = TrackAt(Iso(Now.AddDays(-2)));
        e["originalTimestamp"] = "yesterday";

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(Now.AddDays(-2), row.GetDateTimeOffset("EventTime"));
        var flags = Hostile.Payload(row)["flags"]!.AsArray().Select(f => f!.GetValue<string>()).ToList();
        Assert.Contains("originalTimestamp is not ISO 8601; ignored", flags);
        Assert.DoesNotContain(flags, f => f.Contains("server time used", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(24 * 60 * 60)]
    [InlineData(60)]
    [InlineData(-30 * 24 * 60 * 60)]
    [InlineData(-29 * 24 * 60 * 60)]
    public async Task A_timestamp_inside_the_accepted_window_is_kept(int offsetSeconds)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var at = Now.AddSeconds(offsetSeconds);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", TrackAt(Iso(at)));

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(at, row.GetDateTimeOffset("EventTime"));
    }

    [Theory]
    [InlineData((24 * 60 * 60) + 1, "more than 24 hours in the future")]
    [InlineData(365 * 24 * 60 * 60, "more than 24 hours in the future")]
    [InlineData((-30 * 24 * 60 * 60) - 1, "older than the accepted window of 30 days")]
    [InlineData(-3650 * 24 * 60 * 60, "older than the accepted window of 30 days")]
    public async Task A_timestamp_outside_the_accepted_window_is_refused(int offsetSeconds, string reason)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", TrackAt(Iso(Now.AddSeconds(offsetSeconds))));

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, reason);
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Theory]
    [InlineData("timestamp", "1600-12-31T23:59:59Z")]
    [InlineData("timestamp", "1600-01-01T00:00:00Z")]
    [InlineData("timestamp", "0001-01-01T00:00:00Z")]
    [InlineData("timestamp", "0000-01-01T00:00:00Z")]
    [InlineData("timestamp", "10000-01-01T00:00:00Z")]
    [InlineData("timestamp", "+010000-01-01T00:00:00Z")]
    [InlineData("timestamp", "-000001-01-01T00:00:00Z")]
    [InlineData("timestamp", "99999-12-31T23:59:59Z")]
    [InlineData("timestamp", "9999-12-31T23:59:59-01:00")]
    [InlineData("originalTimestamp", "1600-06-15T12:00:00Z")]
    [InlineData("sentAt", "12345-06-15T12:00:00Z")]
    public async Task A_timestamp_before_1601_or_after_9999_is_refused(string field, string value)
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var e = Segment.Track("e");
        e[field] = value;

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertRefused(answer, HttpStatusCode.BadRequest, $"event.{field} is outside the years 1601-9999");
        await Hostile.AssertNothingStoredAsync(host);
    }

    [Fact]
    public async Task A_late_sent_event_is_skew_corrected_to_the_server_clock_and_keeps_its_receive_time()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var original = Now.AddDays(-3);
        var sentAt = original.AddSeconds(2);
        var e = TrackAt(Iso(original));
        e["sentAt"] = Iso(sentAt);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        var expected = Now - (sentAt - original);
        Assert.Equal(Now.AddSeconds(-2), expected);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(expected, row.GetDateTimeOffset("EventTime"));
        Assert.Equal(Now, row.GetDateTimeOffset("ReceivedAt"));
        var payload = Hostile.Payload(row);
        Assert.Equal(expected, payload["timestamp"]!.GetValue<DateTimeOffset>());
        Assert.Equal(original, payload["originalTimestamp"]!.GetValue<DateTimeOffset>());
        Assert.Equal(sentAt, payload["sentAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(Now, payload["receivedAt"]!.GetValue<DateTimeOffset>());
        Assert.StartsWith(original.ToString("yyyyMMdd", CultureInfo.InvariantCulture) + "_", row.PartitionKey, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_event_queued_offline_for_days_keeps_its_age()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var original = Now.AddDays(-3);
        var sentAt = Now.AddSeconds(-1);
        var e = TrackAt(Iso(original));
        e["sentAt"] = Iso(sentAt);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(Now - (sentAt - original), row.GetDateTimeOffset("EventTime"));
        Assert.Equal(original.AddSeconds(1), row.GetDateTimeOffset("EventTime"));
    }

    [Fact]
    public async Task A_client_clock_days_ahead_is_corrected_by_sentAt_instead_of_refused()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var clientNow = Now.AddDays(2);
        var e = TrackAt(Iso(clientNow.AddSeconds(-5)));
        e["sentAt"] = Iso(clientNow);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        Assert.Equal(Now.AddSeconds(-5), Assert.Single(await Hostile.RawEventsAsync(host)).GetDateTimeOffset("EventTime"));
    }

    [Fact]
    public async Task A_sentAt_before_the_timestamp_is_corrected_by_the_same_formula()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var original = Now.AddHours(-1);
        var sentAt = Now.AddHours(-2);
        var e = TrackAt(Iso(original));
        e["sentAt"] = Iso(sentAt);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(Now - (sentAt - original), row.GetDateTimeOffset("EventTime"));
        Assert.Equal(Now, row.GetDateTimeOffset("ReceivedAt"));
    }

    [Fact]
    public async Task A_batch_level_sentAt_corrects_every_event_and_originalTimestamp_wins_over_timestamp()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var sentAt = Now.AddHours(-5);
        var first = Segment.Track("First", messageId: "first");
        first["timestamp"] = Iso(sentAt.AddMinutes(-10));
        var second = Segment.Track("Second", messageId: "second");
        second["originalTimestamp"] = Iso(sentAt.AddMinutes(-20));
        second["timestamp"] = Iso(sentAt.AddDays(-20));
        var batch = Segment.Batch(first, second);
        batch["sentAt"] = Iso(sentAt);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/batch", batch);

        Hostile.AssertAccepted(answer, 2);
        var times = (await Hostile.RawEventsAsync(host)).ToDictionary(r => Hostile.Payload(r)["messageId"]!.GetValue<string>(), r => r.GetDateTimeOffset("EventTime"));
        Assert.Equal(Now.AddMinutes(-10), times["first"]);
        Assert.Equal(Now.AddMinutes(-20), times["second"]);
    }

    [Fact]
    public async Task A_timestamp_with_an_offset_is_stored_in_utc()
    {
        await using var host = new LocalHostFactory(azurite, new FakeTimeProvider(Now));
        var local = new DateTimeOffset(2025, 6, 15, 13, 30, 0, TimeSpan.FromHours(5.5));

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", TrackAt(local.ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture)));

        Hostile.AssertAccepted(answer, 1);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.Equal(new DateTimeOffset(2025, 6, 15, 8, 0, 0, TimeSpan.Zero), row.GetDateTimeOffset("EventTime"));
    }

    [Theory]
    [InlineData(-2400)]
    [InlineData(-40)]
    [InlineData(30_000)]
    public async Task A_client_clock_off_by_more_than_the_accepted_window_is_kept_in_the_receive_days_partition_and_survives_retention(int clockOffDays)
    {
        var time = new FakeTimeProvider(Now);
        await using var host = new LocalHostFactory(azurite, time);
        var clientNow = Now.AddDays(clockOffDays);
        var e = TrackAt(Iso(clientNow.AddSeconds(-5)));
        e["sentAt"] = Iso(clientNow);
        e["messageId"] = "clock-" + clockOffDays.ToString(CultureInfo.InvariantCulture);

        Hostile.AssertAccepted(await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e), 1);
        time.Advance(TimeSpan.FromDays(1));
        var retry = await Hostile.PostJsonAsync(host.CreateSegmentClient(), "/v1/track", e);
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, retry.Status);
        var row = Assert.Single(await Hostile.RawEventsAsync(host));
        Assert.StartsWith(Now.UtcDateTime.ToString("yyyyMMdd", CultureInfo.InvariantCulture) + "_", row.PartitionKey, StringComparison.Ordinal);
        Assert.Equal(Now.AddSeconds(-5), row.GetDateTimeOffset("EventTime"));
    }

    private static JsonObject TrackAt(string timestamp)
    {
        var e = Segment.Track("e");
        e["timestamp"] = timestamp;
        return e;
    }

    private static string Iso(DateTimeOffset value) => value.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
