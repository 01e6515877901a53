using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

public sealed class DeduplicationTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Duplicate_messageId_within_a_batch_is_stored_once()
    {
        await using var host = new LocalHostFactory(azurite);
        var first = Segment.Track("Report Opened", messageId: "m-1");
        var again = Segment.Track("Report Opened", messageId: "m-1");

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(first, again)), TestContext.Current.CancellationToken);

        var body = await Segment.ReadJsonAsync(response);
        Assert.Equal(1, body.GetProperty("accepted").GetInt32());
        Assert.Equal(1, body.GetProperty("duplicates").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task A_retried_request_is_stored_once()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var batch = Segment.Batch(
            Segment.Track("A", messageId: "r-1", timestamp: DateTimeOffset.UtcNow.AddMinutes(-1)),
            Segment.Track("B", messageId: "r-2", timestamp: DateTimeOffset.UtcNow.AddMinutes(-1)));

        for (var attempt = 0; attempt < 3; attempt++)
        {
            var response = await client.PostAsync("/v1/batch", Segment.Json(batch), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }

    [Fact]
    public async Task Concurrent_requests_with_the_same_messageIds_store_each_event_once()
    {
        await using var host = new LocalHostFactory(azurite);
        var events = Enumerable.Range(0, 50).Select(i => Segment.Track("Clicked", messageId: $"c-{i}", timestamp: DateTimeOffset.UtcNow)).ToArray();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(events.Select(e => (JsonObject)e.DeepClone()).ToArray())), TestContext.Current.CancellationToken)));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(50, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }

    [Fact]
    public async Task Separate_hosts_sharing_storage_both_answer_200_and_store_a_messageId_once()
    {
        await using var first = new LocalHostFactory(azurite);
        await using var second = new LocalHostFactory(azurite, settings: new() { ["Telemetry:Storage:TablePrefix"] = first.TablePrefix });
        var e = Segment.Track("Clicked", messageId: "shared-1", timestamp: DateTimeOffset.UtcNow);

        var fromFirst = await first.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);
        var fromSecond = await second.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, fromFirst.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fromSecond.StatusCode);
        Assert.Equal(1, (await Segment.ReadJsonAsync(fromFirst)).GetProperty("accepted").GetInt32());
        Assert.True((await Segment.ReadJsonAsync(fromSecond)).GetProperty("success").GetBoolean());
        Assert.Single(await first.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task An_event_without_a_client_timestamp_retried_after_midnight_is_stored_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 23, 59, 0, TimeSpan.Zero));
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        var installerEvent = Segment.Track("Installation Started", userId: null, anonymousId: "install-1", messageId: "install-msg-1");

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/track", Segment.Json(installerEvent), TestContext.Current.CancellationToken)).StatusCode);
        time.Advance(TimeSpan.FromHours(2));
        var retry = await client.PostAsync("/v1/track", Segment.Json(installerEvent), TestContext.Current.CancellationToken);

        Assert.Equal(0, (await Segment.ReadJsonAsync(retry)).GetProperty("accepted").GetInt32());
        Assert.Equal(1, (await Segment.ReadJsonAsync(retry)).GetProperty("duplicates").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Theory]
    [InlineData(-2, 29, 12, 12.5)]
    [InlineData(3, 0, 20, 8)]
    [InlineData(-2, 28.9, 12, 30)]
    [InlineData(1.5, 0, 23, 2)]
    public async Task A_retry_from_a_client_whose_clock_is_days_off_is_stored_once_though_the_retry_files_it_under_another_day(double clockDays, double ageDays, int hour, double retryAfterHours)
    {
        // The event's day comes from the client's clock while it is plausible, and from the receive time when it is not;
        // with a clock days off, which one applies changes between the attempt and its retry (the same body, resent).
        var now = new DateTimeOffset(2026, 11, 20, hour, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(now);
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();
        var clock = now + TimeSpan.FromDays(clockDays);
        var e = Segment.Track("Report Opened", messageId: $"skewed-{clockDays}-{ageDays}");
        e["originalTimestamp"] = (clock - TimeSpan.FromDays(ageDays)).ToString("O");
        var batch = Segment.Batch(e);
        batch["sentAt"] = clock.ToString("O");

        var first = await Segment.ReadJsonAsync(await client.PostAsync("/v1/batch", Segment.Json(batch.ToJsonString()), TestContext.Current.CancellationToken));
        time.Advance(TimeSpan.FromHours(retryAfterHours));
        var retry = await Segment.ReadJsonAsync(await client.PostAsync("/v1/batch", Segment.Json(batch.ToJsonString()), TestContext.Current.CancellationToken));

        // The retry is answered as accepted (rewritten in place) or as a duplicate (found under another day), never stored twice.
        Assert.Equal(1, first.GetProperty("accepted").GetInt32());
        Assert.Equal(1, retry.GetProperty("accepted").GetInt32() + retry.GetProperty("duplicates").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task The_same_messageId_from_two_sources_is_two_events()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Clicked", messageId: "same-id", timestamp: DateTimeOffset.UtcNow);

        await host.CreateSegmentClient(LocalHostFactory.WriteKey).PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);
        await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(2, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);
    }
}
