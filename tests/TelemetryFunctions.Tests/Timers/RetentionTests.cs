using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Timers;

public sealed class RetentionTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 1, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Raw_events_and_activity_past_retention_are_deleted_and_daily_figures_are_kept()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", timestamp: T0)), TestContext.Current.CancellationToken);
        time.SetUtcNow(T0.AddDays(1));
        await host.Services.GetRequiredService<DailyRollup>().RunDayAsync(DateOnly.FromDateTime(T0.UtcDateTime), TestContext.Current.CancellationToken);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        time.SetUtcNow(T0.AddDays(89));
        var early = await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, early.RawEvents);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));

        time.SetUtcNow(T0.AddDays(91));
        var due = await jobs.RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, due.RawEvents);
        Assert.Equal(28, early.Digests); // the MAU window of the rolled-up day built digests for its 29 earlier days (empty)
        Assert.Equal(2, due.Digests);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Activity));
        var stats = await host.Services.GetRequiredService<DailyRollup>().ReadAsync(DateOnly.FromDateTime(T0.UtcDateTime), DateOnly.FromDateTime(T0.UtcDateTime), TestContext.Current.CancellationToken);
        Assert.Equal(1, Assert.Single(stats).Dau);
    }

    [Fact]
    public async Task Support_requests_are_deleted_after_their_own_retention()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var support = Segment.Track("Installation Support", userId: null, anonymousId: "install-r", properties: new JsonObject { ["email"] = "help@example.com" });
        await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(support), TestContext.Current.CancellationToken);
        var jobs = host.Services.GetRequiredService<TelemetryJobs>();

        time.SetUtcNow(T0.AddDays(29));
        await jobs.RetentionAsync(TestContext.Current.CancellationToken);
        Assert.Single(await host.Tables.RowsAsync(TableNames.SupportRequests));

        time.SetUtcNow(T0.AddDays(30).AddMinutes(1));
        var result = await jobs.RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.SupportRequests);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.SupportRequests));
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task An_opt_out_whose_erasure_was_interrupted_is_completed_by_the_retention_job()
    {
        var time = new FakeTimeProvider(T0);
        var faults = new StorageFaults();
        await using var host = new LocalHostFactory(azurite, time, storagePolicy: faults);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "leaver", timestamp: T0)), TestContext.Current.CancellationToken);

        faults.Outage(m => m.Request.Method.Method == "DELETE" || m.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal));
        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "leaver" }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, optOut.StatusCode);
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        var pending = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
        Assert.True(pending.GetBoolean("ErasurePending"));

        faults.Heal();
        var result = await host.Services.GetRequiredService<TelemetryJobs>().RetentionAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, result.Erasures);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.False(Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions)).GetBoolean("ErasurePending"));
    }
}
