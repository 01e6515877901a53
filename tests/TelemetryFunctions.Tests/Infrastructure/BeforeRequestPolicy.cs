using Azure.Core;
using Azure.Core.Pipeline;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// Runs an action just before the first matching storage request after <see cref="Arm"/> is sent (or before each of the
/// next <c>times</c> ones): a write of another host or request that lands in the middle of a job, at a chosen point, or
/// concurrent writers that keep getting in first. Requests the action itself makes pass untouched.
/// </summary>
public sealed class BeforeRequestPolicy(Func<HttpMessage, bool> matches) : HttpPipelinePolicy
{
    private Func<Task>? _action;
    private int _timesLeft;
    private int _fired;

    public bool Fired => Volatile.Read(ref _fired) > 0;

    public int TimesFired => Volatile.Read(ref _fired);

    public void Arm(Func<Task> action, int times = 1)
    {
        Volatile.Write(ref _timesLeft, times);
        Volatile.Write(ref _action, action);
    }

    public void Disarm() => Volatile.Write(ref _action, null);

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (matches(message) && Volatile.Read(ref _action) is { } action && Interlocked.Decrement(ref _timesLeft) >= 0)
        {
            Interlocked.Increment(ref _fired);
            await action();
        }

        await ProcessNextAsync(message, pipeline);
    }
}
