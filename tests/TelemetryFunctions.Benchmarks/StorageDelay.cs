using Azure.Core;
using Azure.Core.Pipeline;

namespace TelemetryFunctions.Benchmarks;

/// <summary>
/// Adds a fixed wait before every storage request (each retry included): the round trip to a storage service that is
/// not on the same machine, which Azurite on loopback does not have. Used by <c>--storage-delay</c> for both the raw
/// ceiling's client and the host, so the ratio stays fair. It models distance only, not the service's own work.
/// </summary>
internal sealed class StorageDelay(TimeSpan delay) : HttpPipelinePolicy
{
    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        Thread.Sleep(delay);
        ProcessNext(message, pipeline);
    }

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        await Task.Delay(delay, message.CancellationToken);
        await ProcessNextAsync(message, pipeline);
    }
}
