using System.Globalization;
using System.Text.Json;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.EndToEnd;

/// <summary>What Fixtures/segment-node-client.mjs reports after sending its events with @segment/analytics-node.</summary>
internal sealed record SegmentClientSummary(int Sent, int Delivered, int Failed, IReadOnlyList<string> Errors, IReadOnlyList<string> MessageIds, int Requests);

/// <summary>Runs the official Segment Node client against a running host.</summary>
internal static class SegmentNodeClient
{
    public static async Task<(CommandResult Run, SegmentClientSummary? Summary)> SendAsync(
        LocalHostProcess host,
        int count,
        string identityPrefix,
        string? messageIdPrefix = null,
        int repeat = 1,
        int maxRetries = 5,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "segment-node-client.mjs");
        var arguments = new List<string>
        {
            script,
            "--host", host.BaseAddress.ToString().TrimEnd('/'),
            "--write-key", LocalHostProcess.WriteKey,
            "--count", count.ToString(CultureInfo.InvariantCulture),
            "--repeat", repeat.ToString(CultureInfo.InvariantCulture),
            "--flush-at", "20",
            "--max-retries", maxRetries.ToString(CultureInfo.InvariantCulture),
            "--flush-timeout-ms", ((int)(timeout ?? TimeSpan.FromSeconds(45)).TotalMilliseconds - 5_000).ToString(CultureInfo.InvariantCulture),
            "--identity-prefix", identityPrefix,
        };
        if (messageIdPrefix is not null)
        {
            arguments.AddRange(["--message-id-prefix", messageIdPrefix]);
        }

        var run = await ExternalCommand.RunAsync(
            "node",
            arguments,
            workingDirectory: RepositoryPaths.Root,
            environment: new Dictionary<string, string?> { ["TELEMETRY_REPO_ROOT"] = RepositoryPaths.Root },
            timeout: timeout ?? TimeSpan.FromSeconds(45),
            cancellationToken: cancellationToken);

        var lastLine = run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        SegmentClientSummary? summary = null;
        if (lastLine is not null && lastLine.StartsWith('{'))
        {
            var json = JsonDocument.Parse(lastLine).RootElement;
            summary = new SegmentClientSummary(
                json.GetProperty("sent").GetInt32(),
                json.GetProperty("delivered").GetInt32(),
                json.GetProperty("failed").GetInt32(),
                json.GetProperty("errors").EnumerateArray().Select(e => e.GetString() ?? "").ToList(),
                json.GetProperty("messageIds").EnumerateArray().Select(e => e.GetString() ?? "").ToList(),
                json.GetProperty("requests").GetInt32());
        }

        return (run, summary);
    }
}
