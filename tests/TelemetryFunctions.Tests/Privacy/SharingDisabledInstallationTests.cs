using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// A person (an event without an instance) who declares sharing level disabled is erased as an opt-out of the same
/// ids is: with the installation recorded under each id, which outlives the raw events that link it to anyone.
/// </summary>
public sealed class SharingDisabledInstallationTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("userId")]
    [InlineData("anonymousId")]
    public async Task A_person_disabling_sharing_erases_the_installation_recorded_under_their_id_after_its_raw_events_are_gone(string idField)
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var (userId, anonymousId) = idField == "userId" ? ("admin-installer-2", (string?)null) : ((string?)null, "install-anon-2");
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/track", Segment.Json(Segment.Track("Installation Started", userId: userId, anonymousId: anonymousId, properties: new JsonObject { ["os"] = "ubuntu" })), ct);
        time.Advance(TimeSpan.FromDays(95));
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(ct);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));

        var disabling = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: userId, anonymousId: anonymousId, properties: new JsonObject { ["sharingLevel"] = "disabled" })), ct);

        Assert.Equal(1, (await Segment.ReadJsonAsync(disabling)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
    }

    [Fact]
    public async Task A_person_whose_event_declares_no_level_under_a_default_of_disabled_is_erased_with_the_installation_recorded_under_their_id()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:Privacy:DefaultSharingLevel"] = "disabled" });
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/track", Segment.Json(Segment.Track("Installation Started", userId: "admin-installer-3", properties: new JsonObject { ["sharingLevel"] = "basic" })), ct);
        time.Advance(TimeSpan.FromDays(95));
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(ct);
        Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));

        var undeclared = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "admin-installer-3")), ct);

        Assert.Equal(1, (await Segment.ReadJsonAsync(undeclared)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
    }
}
