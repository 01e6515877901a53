using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// Makes storage really refuse one action of the next entity-group transactions on a table (named without the test's
/// prefix): the entity of action
/// <c>actionIndex</c> gets a string property longer than storage allows (32K characters), so Azurite refuses the whole
/// transaction and names that action, as it would for any entity it cannot store. The padding holds no test data, so a
/// log that leaked the entity would show it. Transactions of other tables, and other requests, pass untouched.
/// </summary>
public sealed class OversizedTransactionAction(string table, int actionIndex, int times = int.MaxValue) : HttpPipelinePolicy
{
    public const string Padding = "oversized-";

    private static readonly string[] AfterTableName = ["(", "?", " "];

    private int _timesLeft = times;

    public int Injected { get; private set; }

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (message.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal) && message.Request.Content is { } content && Volatile.Read(ref _timesLeft) > 0)
        {
            using var buffer = new MemoryStream();
            await content.WriteToAsync(buffer, message.CancellationToken);
            var body = Encoding.UTF8.GetString(buffer.ToArray());
            if (Pad(body) is { } padded && Interlocked.Decrement(ref _timesLeft) >= 0)
            {
                Injected++;
                message.Request.Content = RequestContent.Create(Encoding.UTF8.GetBytes(padded));
            }
            else
            {
                message.Request.Content = RequestContent.Create(buffer.ToArray());
            }
        }

        await ProcessNextAsync(message, pipeline);
    }

    /// <summary>The body with the entity of the chosen action padded, or null if the transaction is not on the table or that action has no entity.</summary>
    private string? Pad(string body)
    {
        // Each action is one part of the changeset: "--changeset_..." then MIME headers, a blank line, the request line
        // and headers, a blank line, and the entity's JSON.
        var parts = body.Split("--changeset_");
        if (actionIndex + 1 >= parts.Length - 1)
        {
            return null;
        }

        var part = parts[actionIndex + 1];
        var requestLine = part.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        // The request line names the table, then the entity's keys, the query or the protocol: "POST .../{prefix}{table}?..."
        var target = part[requestLine..].Split("\r\n")[0];
        if (!AfterTableName.Any(next => target.Contains(table + next, StringComparison.Ordinal)))
        {
            return null;
        }

        var entity = part.IndexOf("\r\n\r\n", requestLine, StringComparison.Ordinal) + 4;
        if (entity < 4 || entity >= part.Length || part[entity] != '{')
        {
            return null;
        }

        parts[actionIndex + 1] = string.Concat(part.AsSpan(0, entity + 1), $"\"Padding\":\"{Padding}{new string('x', 40_000)}\",", part.AsSpan(entity + 1));
        return string.Join("--changeset_", parts);
    }
}
