using Azure.Core;
using Azure.Core.Pipeline;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// Runs an action once, just before the first matching storage request after <see cref="Arm"/> is sent: a write of
/// another host or request that lands in the middle of a job, at a chosen point.
/// </summary>
public sealed class BeforeRequestPolicy(Func<HttpMessage, bool> matches) : HttpPipelinePolicy
{
    private Func<Task>? _action;

    public bool Fired { get; private set; }

    public void Arm(Func<Task> action) => _action = action;

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (matches(message) && Interlocked.Exchange(ref _action, null) is { } action)
        {
            Fired = true;
            await action();
        }

        await ProcessNextAsync(message, pipeline);
    }
}
