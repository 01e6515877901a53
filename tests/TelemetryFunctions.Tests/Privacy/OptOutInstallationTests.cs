using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// An installation record is keyed by the id its events carried (the anonymousId, else the userId), and outlives the
/// raw events that link it to anyone: an opt-out must find it by the ids it names, not only through raw events.
/// </summary>
public sealed class OptOutInstallationTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task An_opt_out_naming_a_userId_and_an_anonymousId_erases_the_installation_recorded_under_the_userId_after_its_raw_events_are_gone()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var installer = host.CreateSegmentClient(LocalHostFactory.InstallerKey);
        await installer.PostAsync("/v1/track", Segment.Json(Segment.Track("Installation Started", userId: "admin-installer-1", anonymousId: null, properties: new JsonObject { ["os"] = "ubuntu" })), TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromDays(95));
        await host.Services.GetRequiredService<RetentionJob>().RunAsync(TestContext.Current.CancellationToken);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));

        var optOut = await installer.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "admin-installer-1", ["anonymousId"] = "browser-anon-1" }), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(optOut)).GetProperty("erased").GetProperty("installations").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Installations));
    }
}
