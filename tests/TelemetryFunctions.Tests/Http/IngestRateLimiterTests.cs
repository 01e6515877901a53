using System.Net;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Http;

namespace TelemetryFunctions.Tests.Http;

public sealed class IngestRateLimiterTests
{
    private static IngestRateLimiter Limiter(FakeTimeProvider time) => new(
        Options.Create(new TelemetryOptions
        {
            Ingestion = new IngestionOptions { SourceEventsPerSecond = 1000, SourceBurstEvents = 1000, ClientEventsPerSecond = 10, ClientBurstEvents = 100 },
        }),
        time);

    [Fact]
    public void One_flooding_client_address_is_limited_while_another_address_of_the_same_source_is_not()
    {
        var time = new FakeTimeProvider();
        var limiter = Limiter(time);
        var flooder = IPAddress.Parse("192.0.2.10");
        var neighbour = IPAddress.Parse("192.0.2.11");

        Assert.Null(limiter.TryAcquire("server", flooder, 100));
        var wait = limiter.TryAcquire("server", flooder, 50);

        Assert.Equal(TimeSpan.FromSeconds(5), wait);
        Assert.Null(limiter.TryAcquire("server", neighbour, 50));

        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Null(limiter.TryAcquire("server", flooder, 50));
    }

    [Fact]
    public void A_source_is_limited_across_all_its_client_addresses()
    {
        var time = new FakeTimeProvider();
        var limiter = Limiter(time);

        for (var i = 0; i < 10; i++)
        {
            Assert.Null(limiter.TryAcquire("server", IPAddress.Parse($"198.51.100.{i}"), 100));
        }

        Assert.NotNull(limiter.TryAcquire("server", IPAddress.Parse("198.51.100.200"), 100));
        Assert.Null(limiter.TryAcquire("installer", IPAddress.Parse("198.51.100.201"), 100));
    }
}
