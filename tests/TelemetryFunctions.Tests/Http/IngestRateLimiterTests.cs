using System.Net;
using Microsoft.AspNetCore.Http;
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
        var refusal = limiter.TryAcquire("server", flooder, 50);

        Assert.Equal(new RateLimitRefusal(RateLimit.ClientAddress, TimeSpan.FromSeconds(5)), refusal);
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

        Assert.Equal(RateLimit.Source, limiter.TryAcquire("server", IPAddress.Parse("198.51.100.200"), 100)?.Limit);
        Assert.Null(limiter.TryAcquire("installer", IPAddress.Parse("198.51.100.201"), 100));
    }

    [Fact]
    public void A_request_its_source_limit_refuses_does_not_use_up_its_client_address_limit()
    {
        var time = new FakeTimeProvider();
        var limiter = Limiter(time);
        var client = IPAddress.Parse("192.0.2.20");
        for (var i = 0; i < 10; i++)
        {
            Assert.Null(limiter.TryAcquire("server", IPAddress.Parse($"198.51.100.{i}"), 100));
        }

        // The source is spent: the client's request is refused by the source's limit, as often as it is retried...
        for (var attempt = 0; attempt < 3; attempt++)
        {
            Assert.Equal(RateLimit.Source, limiter.TryAcquire("server", client, 100)?.Limit);
        }

        // ...and none of those refusals was charged to the client: with the source's bucket full again, the client's
        // own full burst of 100 passes at once.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(limiter.TryAcquire("server", client, 100));
    }

    [Fact]
    public void Behind_a_proxy_the_configured_header_names_the_client_so_clients_of_one_proxy_get_buckets_of_their_own()
    {
        var limiter = new IngestRateLimiter(
            Options.Create(new TelemetryOptions
            {
                Ingestion = new IngestionOptions { ClientEventsPerSecond = 10, ClientBurstEvents = 100, ClientAddressHeader = "X-Azure-ClientIP" },
            }),
            new FakeTimeProvider());
        var proxy = IPAddress.Parse("203.0.113.5");

        var flooder = limiter.ClientAddressOf(Request(proxy, "192.0.2.10"));
        var neighbour = limiter.ClientAddressOf(Request(proxy, " 2001:db8::7 "));

        Assert.Equal(IPAddress.Parse("192.0.2.10"), flooder);
        Assert.Equal(IPAddress.Parse("2001:db8::7"), neighbour);
        Assert.Null(limiter.TryAcquire("server", flooder, 100));
        Assert.NotNull(limiter.TryAcquire("server", flooder, 1));
        Assert.Null(limiter.TryAcquire("server", neighbour, 100));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("not an address")]
    [InlineData("192.0.2.10, 192.0.2.11")]
    public void Without_a_usable_proxy_header_the_connection_address_is_used(string? header)
    {
        var limiter = new IngestRateLimiter(
            Options.Create(new TelemetryOptions { Ingestion = new IngestionOptions { ClientAddressHeader = "X-Azure-ClientIP" } }),
            new FakeTimeProvider());
        var connection = IPAddress.Parse("203.0.113.5");

        Assert.Equal(connection, limiter.ClientAddressOf(Request(connection, header)));
    }

    [Fact]
    public void The_proxy_header_is_ignored_unless_configured()
    {
        var limiter = Limiter(new FakeTimeProvider());
        var connection = IPAddress.Parse("203.0.113.5");

        Assert.Equal(connection, limiter.ClientAddressOf(Request(connection, "192.0.2.10")));
    }

    private static DefaultHttpContext Request(IPAddress connection, string? clientHeader)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = connection;
        if (clientHeader is not null)
        {
            context.Request.Headers["X-Azure-ClientIP"] = clientHeader;
        }

        return context;
    }
}
