using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// An installation record is keyed by the id its events carried (the anonymousId, else the userId), and outlives the
/// raw events that link it to anyone: an opt-out, and a person declaring sharing level disabled, must find it by the
/// ids they name, not only through raw events.
/// </summary>
public sealed class InstallationErasureTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task An_opt_out_naming_a_userId_and_an_anonymousId_erases_the_installation_recorded_under_the_userId_after_its_raw_events_are_gone()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        await RecordInstallationThenAgeOutItsRawEventsAsync(host, time, userId: "admin-installer-1", anonymousId: null, new JsonObject { ["os"] = "ubuntu" });

        var optOut = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "admin-installer-1", ["anonymousId"] = "browser-anon-1" }), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(optOut)).GetProperty("erased").GetProperty("installations").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
    }

    [Theory]
    [InlineData("userId")]
    [InlineData("anonymousId")]
    public async Task A_person_disabling_sharing_erases_the_installation_recorded_under_their_id_after_its_raw_events_are_gone(string idField)
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var (userId, anonymousId) = idField == "userId" ? ("admin-installer-2", (string?)null) : ((string?)null, "install-anon-2");
        await RecordInstallationThenAgeOutItsRawEventsAsync(host, time, userId, anonymousId, new JsonObject { ["os"] = "ubuntu" });

        var disabling = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: userId, anonymousId: anonymousId, properties: new JsonObject { ["sharingLevel"] = "disabled" })), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(disabling)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
    }

    [Fact]
    public async Task A_person_whose_event_declares_no_level_under_a_default_of_disabled_is_erased_with_the_installation_recorded_under_their_id()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time, new() { ["Telemetry:Privacy:DefaultSharingLevel"] = "disabled" });
        await RecordInstallationThenAgeOutItsRawEventsAsync(host, time, userId: "admin-installer-3", anonymousId: null, new JsonObject { ["sharingLevel"] = "basic" });

        var undeclared = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Clicked", userId: "admin-installer-3")), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(undeclared)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    /// <summary>The installer script's "Installation Started" under the ids given, then 95 days and a retention run: the installation record is all that is left.</summary>
    private static async Task RecordInstallationThenAgeOutItsRawEventsAsync(LocalHostFactory host, FakeTimeProvider time, string? userId, string? anonymousId, JsonObject properties)
    {
        var ct = TestContext.Current.CancellationToken;
        using var started = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(Segment.Track("Installation Started", userId: userId, anonymousId: anonymousId, properties: properties)), ct);
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        time.Advance(TimeSpan.FromDays(95));
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(ct);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));
    }
}
