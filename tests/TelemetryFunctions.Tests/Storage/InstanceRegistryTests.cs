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

    private (Func<InstanceRegistry> NewHost, StorageProbe Probe) Registries()
    {
        var prefix = AzuriteFixture.UniquePrefix();
        var options = Options.Create(new TelemetryOptions
        {
            Storage = new StorageOptions { ConnectionString = azurite.ConnectionString, TablePrefix = prefix },
            Ingestion = new IngestionOptions { InstanceTouchInterval = TimeSpan.Zero },
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

        await registry.RecordAsync([new InstanceObservation("ab" + new string('1', 30), "server", T0.AddHours(2), "2.0.0", "linux", null, SharingLevel.Advanced)], TestContext.Current.CancellationToken);
        await newHost().RecordAsync([new InstanceObservation("ab" + new string('1', 30), "server", T0, "1.0.0", "windows", null, null)], TestContext.Current.CancellationToken);

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
            [new InstanceObservation(key, "server", T0.AddMinutes(i == 5 ? 100 : i), i == 5 ? "9.9.9" : $"1.0.{i}", "linux", null, null)],
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

        await first.RecordAsync([new InstanceObservation(key, "server", T0, "1.0.0", null, null, null)], TestContext.Current.CancellationToken);
        await second.RecordAsync([new InstanceObservation(key, "server", T0.AddHours(1), "1.1.0", null, null, null)], TestContext.Current.CancellationToken);
        await first.RecordAsync([new InstanceObservation(key, "server", T0.AddHours(2), null, "linux", null, null)], TestContext.Current.CancellationToken);

        var row = InstanceRegistry.FromEntity(Assert.Single(await probe.RowsAsync(TableNames.Instances)));
        Assert.Equal(T0.AddHours(2), row.LastSeen);
        Assert.Equal("1.1.0", row.Version);
        Assert.Equal("linux", row.Os);
    }
}
