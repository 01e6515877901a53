using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Storage;

/// <summary>The instance registry against real Azurite, with several registries standing in for several hosts.</summary>
public sealed class InstanceRegistryTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 23, 8, 0, 0, TimeSpan.Zero);

    private (Func<InstanceRegistry> NewHost, StorageProbe Probe) Registries(TimeSpan touchInterval = default)
    {
        var prefix = AzuriteFixture.UniquePrefix();
        var options = Options.Create(new TelemetryOptions
        {
            Storage = new StorageOptions { ConnectionString = azurite.ConnectionString, TablePrefix = prefix },
            Ingestion = new IngestionOptions { InstanceTouchInterval = touchInterval },
        });
        var storage = new TelemetryStorage(options, new StorageRequestCounter(), []);
        var calendar = new ReportingCalendar(options);
        var statusLog = new InstanceStatusLog(storage, new ActivityStore(storage, new TableBatchWriter(NullLogger<TableBatchWriter>.Instance), new DirtyDays(storage, calendar, TimeProvider.System), TimeProvider.System, Options.Create(new TelemetryOptions())), calendar);
        return (
            () => new InstanceRegistry(storage, new InactivityIndex(storage, options), statusLog, options, TimeProvider.System, NullLogger<InstanceRegistry>.Instance),
            new StorageProbe(azurite.ConnectionString, prefix));
    }

    [Fact]
    public async Task A_late_observation_never_moves_last_seen_backwards_nor_overwrites_newer_attributes()
    {
        var (newHost, probe) = Registries();
        var registry = newHost();

        await registry.RecordAsync([new InstanceObservation("ab" + new string('1', 30), "server", T0.AddHours(2), T0.AddHours(2), "2.0.0", "linux", null, SharingLevel.Advanced)], TestContext.Current.CancellationToken);
        await newHost().RecordAsync([new InstanceObservation("ab" + new string('1', 30), "server", T0, T0, "1.0.0", "windows", null, null)], TestContext.Current.CancellationToken);

        var row = InstanceRegistry.FromEntity(Assert.Single(await probe.RowsAsync(TableNames.Instances)));
        Assert.Equal(T0.AddHours(2), row.LastSeen);
        Assert.Equal(T0, row.FirstSeen);
        Assert.Equal("2.0.0", row.Version);
        Assert.Equal("linux", row.Os);
        Assert.Equal("advanced", row.SharingLevel);
    }

    [Fact]
    public async Task Concurrent_updates_of_one_instance_from_many_hosts_lose_no_update()
    {
        var (newHost, probe) = Registries();
        var key = "cd" + new string('2', 30);
        var hosts = Enumerable.Range(0, 8).Select(_ => newHost()).ToList();

        // Each host reports a different receive time; the latest one (host 5) carries version 9.9.9.
        await Task.WhenAll(hosts.Select((host, i) => host.RecordAsync(
            [new InstanceObservation(key, "server", T0.AddMinutes(i == 5 ? 100 : i), T0.AddMinutes(i == 5 ? 100 : i), i == 5 ? "9.9.9" : $"1.0.{i}", "linux", null, null)],
            TestContext.Current.CancellationToken)));

        var row = InstanceRegistry.FromEntity(Assert.Single(await probe.RowsAsync(TableNames.Instances)));
        Assert.Equal(T0.AddMinutes(100), row.LastSeen);
        Assert.Equal(T0, row.FirstSeen);
        Assert.Equal("9.9.9", row.Version);
    }

    [Fact]
    public async Task A_host_with_a_stale_cached_row_rereads_it_after_another_host_wrote()
    {
        var (newHost, probe) = Registries();
        var key = "ef" + new string('3', 30);
        var first = newHost();
        var second = newHost();

        await first.RecordAsync([new InstanceObservation(key, "server", T0, T0, "1.0.0", null, null, null)], TestContext.Current.CancellationToken);
        await second.RecordAsync([new InstanceObservation(key, "server", T0.AddHours(1), T0.AddHours(1), "1.1.0", null, null, null)], TestContext.Current.CancellationToken);
        await first.RecordAsync([new InstanceObservation(key, "server", T0.AddHours(2), T0.AddHours(2), null, "linux", null, null)], TestContext.Current.CancellationToken);

        var row = InstanceRegistry.FromEntity(Assert.Single(await probe.RowsAsync(TableNames.Instances)));
        Assert.Equal(T0.AddHours(2), row.LastSeen);
        Assert.Equal("1.1.0", row.Version);
        Assert.Equal("linux", row.Os);
    }

    [Fact]
    public async Task A_late_event_dated_before_a_newer_heartbeat_leaves_its_attributes_and_a_later_event_still_updates_them()
    {
        var (newHost, probe) = Registries();
        var key = "a1" + new string('4', 30);
        var ct = TestContext.Current.CancellationToken;

        await newHost().RecordAsync([new InstanceObservation(key, "server", T0, T0, "2.0.0", "linux", "enterprise", SharingLevel.Basic)], ct);

        // Queued for two days by an offline client, received an hour after the heartbeat.
        await newHost().RecordAsync([new InstanceObservation(key, "server", T0.AddHours(1), T0.AddDays(-2), "1.0.0", "windows", "community", SharingLevel.Advanced)], ct);

        var row = await RowAsync(probe);
        Assert.Equal(T0.AddHours(1), row.LastSeen);
        Assert.Equal(("2.0.0", "linux", "enterprise", "basic"), (row.Version, row.Os, row.Edition, row.SharingLevel));
        Assert.Equal(T0, row.AttributesObservedAt);

        await newHost().RecordAsync([new InstanceObservation(key, "server", T0.AddHours(2), T0.AddHours(2), "3.0.0", null, null, null)], ct);

        row = await RowAsync(probe);
        Assert.Equal(("3.0.0", "linux", "enterprise", "basic"), (row.Version, row.Os, row.Edition, row.SharingLevel));
        Assert.Equal(T0.AddHours(2), row.AttributesObservedAt);
    }

    [Fact]
    public async Task A_late_event_still_fills_an_attribute_the_row_lacks()
    {
        var (newHost, probe) = Registries();
        var key = "a2" + new string('5', 30);
        var ct = TestContext.Current.CancellationToken;

        await newHost().RecordAsync([new InstanceObservation(key, "server", T0, T0, "2.0.0", null, null, null)], ct);
        await newHost().RecordAsync([new InstanceObservation(key, "server", T0.AddHours(1), T0.AddDays(-2), "1.0.0", "windows", null, SharingLevel.Basic)], ct);

        var row = await RowAsync(probe);
        Assert.Equal(("2.0.0", "windows", "basic"), (row.Version, row.Os, row.SharingLevel));
        Assert.Equal(T0, row.AttributesObservedAt);
    }

    [Fact]
    public async Task Within_one_request_the_attributes_of_the_latest_event_win_whatever_their_order()
    {
        var (newHost, probe) = Registries();
        var key = "a3" + new string('6', 30);

        await newHost().RecordAsync(
            [
                new InstanceObservation(key, "server", T0, T0.AddMinutes(-1), "2.0.0", "linux", null, null),
                new InstanceObservation(key, "server", T0, T0.AddDays(-3), "1.0.0", "windows", "community", null),
            ],
            TestContext.Current.CancellationToken);

        var row = await RowAsync(probe);
        Assert.Equal(("2.0.0", "linux", "community"), (row.Version, row.Os, row.Edition));
        Assert.Equal(T0.AddMinutes(-1), row.AttributesObservedAt);

        // Of events dated alike, the later in the request wins.
        var tie = Assert.Single(InstanceRegistry.Merge(
        [
            new InstanceObservation(key, "server", T0, T0, "2.0.0", null, null, null),
            new InstanceObservation(key, "server", T0, T0, "2.1.0", null, null, null),
        ]));
        Assert.Equal("2.1.0", tie.Version);
    }

    [Fact]
    public async Task Within_one_request_an_attribute_given_only_by_an_event_dated_before_the_row_does_not_replace_it()
    {
        var (newHost, probe) = Registries();
        var key = "a7" + new string('9', 30);
        var ct = TestContext.Current.CancellationToken;

        await newHost().RecordAsync([new InstanceObservation(key, "server", T0, T0, "2.0.0", "Ubuntu 24.04", null, null)], ct);

        // The later event gives the version; the OS comes only from an event dated before the stored one, the edition
        // only from it too (which the row lacks, so it fills it).
        await newHost().RecordAsync(
            [
                new InstanceObservation(key, "server", T0.AddHours(1), T0.AddDays(-1), "1.0.0", "Ubuntu 22.04", "community", null),
                new InstanceObservation(key, "server", T0.AddHours(1), T0.AddHours(1), "2.1.0", null, null, null),
            ],
            ct);

        var row = await RowAsync(probe);
        Assert.Equal(("2.1.0", "Ubuntu 24.04", "community"), (row.Version, row.Os, row.Edition));
        Assert.Equal(T0.AddHours(1), row.AttributesObservedAt);
    }

    [Fact]
    public async Task A_row_written_without_an_attribute_time_takes_the_next_observation_received_after_it_and_is_dated_by_it()
    {
        var (newHost, probe) = Registries();
        var key = "a4" + new string('7', 30);
        var ct = TestContext.Current.CancellationToken;
        var legacy = InstanceRegistry.ToEntity(new InstanceRecord(key, T0, T0, "1.0.0", "linux", null, null, null, InstanceRegistry.Active, T0, "server", default));
        legacy.Remove("AttributesObservedAt");
        var table = probe.Table(TableNames.Instances);
        await table.CreateIfNotExistsAsync(ct);
        await table.AddEntityAsync(legacy, ct);

        // Received after the row's last seen, though dated before it: as before, it sets the attributes.
        await newHost().RecordAsync([new InstanceObservation(key, "server", T0.AddHours(1), T0.AddHours(-1), "2.0.0", null, null, null)], ct);

        var row = await RowAsync(probe);
        Assert.Equal(("2.0.0", "linux"), (row.Version, row.Os));
        Assert.Equal(T0.AddHours(-1), row.AttributesObservedAt);

        await newHost().RecordAsync([new InstanceObservation(key, "server", T0.AddHours(2), T0.AddHours(-2), "1.5.0", null, null, null)], ct);

        Assert.Equal("2.0.0", (await RowAsync(probe)).Version);
    }

    [Fact]
    public async Task An_event_that_only_confirms_the_attributes_does_not_rewrite_the_row_within_the_touch_interval()
    {
        var (newHost, probe) = Registries(TimeSpan.FromMinutes(1));
        var key = "a5" + new string('8', 30);
        var ct = TestContext.Current.CancellationToken;
        var registry = newHost();

        await registry.RecordAsync([new InstanceObservation(key, "server", T0, T0, "2.0.0", "linux", null, null)], ct);
        var written = await RowAsync(probe);
        await registry.RecordAsync([new InstanceObservation(key, "server", T0.AddSeconds(10), T0.AddSeconds(10), "2.0.0", "linux", null, null)], ct);

        var row = await RowAsync(probe);
        Assert.Equal(written.ETag, row.ETag);
        Assert.Equal(T0, row.AttributesObservedAt);

        await registry.RecordAsync([new InstanceObservation(key, "server", T0.AddSeconds(20), T0.AddSeconds(20), "2.1.0", "linux", null, null)], ct);

        row = await RowAsync(probe);
        Assert.Equal(("2.1.0", T0.AddSeconds(20)), (row.Version, row.AttributesObservedAt));
    }

    private static async Task<InstanceRecord> RowAsync(StorageProbe probe) =>
        InstanceRegistry.FromEntity(Assert.Single(await probe.RowsAsync(TableNames.Instances)));
}
