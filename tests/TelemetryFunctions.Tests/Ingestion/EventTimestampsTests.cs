using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Tests.Ingestion;

public sealed class EventTimestampsTests
{
    private static readonly DateTimeOffset ReceivedAt = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Skew_correction_removes_the_client_clock_offset_and_keeps_the_events_age()
    {
        // The client's clock is 3 hours fast; the event was created 10 minutes before it was sent.
        var clientNow = ReceivedAt.AddHours(3);
        var original = clientNow.AddMinutes(-10);

        var corrected = EventTimestamps.Correct(ReceivedAt, sentAt: clientNow, clientTimestamp: original);

        Assert.Equal(ReceivedAt.AddMinutes(-10), corrected);
    }

    [Fact]
    public void An_event_queued_offline_for_days_keeps_its_age()
    {
        var original = ReceivedAt.AddDays(-4);

        var corrected = EventTimestamps.Correct(ReceivedAt, sentAt: ReceivedAt.AddSeconds(-1), clientTimestamp: original);

        Assert.Equal(ReceivedAt.AddDays(-4).AddSeconds(1), corrected);
    }

    [Fact]
    public void Without_sentAt_the_client_timestamp_is_used_and_without_any_the_receive_time()
    {
        Assert.Equal(ReceivedAt.AddMinutes(-5), EventTimestamps.Correct(ReceivedAt, null, ReceivedAt.AddMinutes(-5)));
        Assert.Equal(ReceivedAt, EventTimestamps.Correct(ReceivedAt, ReceivedAt, null));
    }

    [Theory]
    [InlineData("2026-11-23T10:00:00Z")]
    [InlineData("2026-11-23T10:00:00.123456Z")]
    [InlineData("2026-11-23T10:00:00+02:00")]
    [InlineData("2026-11-23")]
    public void Iso_8601_timestamps_parse(string text)
    {
        Assert.Equal(EventTimestamps.ParseOutcome.Valid, EventTimestamps.TryParse(text, out var value));
        Assert.Equal(TimeSpan.Zero, value.Offset);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("11/23/2026 10:00")]
    [InlineData("1700000000")]
    [InlineData("2026-13-45T10:00:00Z")]
    public void Non_iso_timestamps_are_reported_as_such(string text)
    {
        Assert.Equal(EventTimestamps.ParseOutcome.NotIso8601, EventTimestamps.TryParse(text, out _));
    }

    [Theory]
    [InlineData("1600-12-31T23:59:59Z")]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("10000-01-01T00:00:00Z")]
    [InlineData("+12026-01-01T00:00:00Z")]
    public void Timestamps_before_1601_or_after_9999_are_out_of_range(string text)
    {
        Assert.Equal(EventTimestamps.ParseOutcome.OutOfRange, EventTimestamps.TryParse(text, out _));
    }
}
