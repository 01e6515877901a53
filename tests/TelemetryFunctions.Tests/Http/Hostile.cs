using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>One answer from the ingest API, read completely: status, headers and the JSON body.</summary>
internal sealed record IngestAnswer(HttpStatusCode Status, string? RetryAfter, string Text, JsonElement Body)
{
    /// <summary>The request-level reason and every per-event reason, one per line.</summary>
    public string Reasons
    {
        get
        {
            var reasons = new StringBuilder();
            if (Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("error", out var error) && error.TryGetProperty("message", out var message))
            {
                reasons.AppendLine(message.GetString());
            }

            foreach (var rejected in Rejected)
            {
                reasons.AppendLine(rejected.GetProperty("reason").GetString());
            }

            return reasons.ToString();
        }
    }

    public IReadOnlyList<JsonElement> Rejected =>
        Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("rejected", out var rejected) && rejected.ValueKind == JsonValueKind.Array
            ? rejected.EnumerateArray().ToList()
            : [];

    public int Accepted => Body.GetProperty("accepted").GetInt32();

    public override string ToString() => $"{(int)Status} {Text}";
}

/// <summary>Sends hostile requests and checks the two things every refusal must do: say why, and write nothing.</summary>
internal static class Hostile
{
    /// <summary>A fixed server clock for tests that reason about timestamps.</summary>
    public static readonly DateTimeOffset Now = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    public static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public static async Task<IngestAnswer> PostAsync(HttpClient client, string path, HttpContent content)
    {
        using var response = await client.PostAsync(path, content, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        JsonElement body;
        try
        {
            body = JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            Assert.Fail($"The answer ({(int)response.StatusCode}) is not JSON: {text}");
            throw;
        }

        return new IngestAnswer(response.StatusCode, response.Headers.RetryAfter?.ToString(), text, body);
    }

    public static Task<IngestAnswer> PostJsonAsync(HttpClient client, string path, string json) => PostAsync(client, path, Segment.Json(json));

    public static Task<IngestAnswer> PostJsonAsync(HttpClient client, string path, JsonNode json) => PostAsync(client, path, Segment.Json(json));

    public static Task<IngestAnswer> PostBytesAsync(HttpClient client, string path, byte[] body, string contentType = "application/json") =>
        PostAsync(client, path, Segment.Bytes(body, contentType));

    /// <summary>A whole-request refusal: the status, <c>success: false</c>, and a reason that names the problem.</summary>
    public static void AssertRefused(IngestAnswer answer, HttpStatusCode status, string reasonFragment)
    {
        Assert.True(answer.Status == status, $"Expected {(int)status}, got {answer}");
        Assert.False(answer.Body.GetProperty("success").GetBoolean(), answer.ToString());
        Assert.Contains(reasonFragment, answer.Reasons, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>An accepted request: 200, <c>success: true</c> and the number of events accepted.</summary>
    public static void AssertAccepted(IngestAnswer answer, int accepted)
    {
        Assert.True(answer.Status == HttpStatusCode.OK, $"Expected 200, got {answer}");
        Assert.True(answer.Body.GetProperty("success").GetBoolean(), answer.ToString());
        Assert.Equal(accepted, answer.Accepted);
    }

    public static async Task AssertNothingStoredAsync(LocalHostFactory host)
    {
        var all = await host.Tables.AllRowsAsync();
        var written = all.Where(t => t.Value.Count > 0).Select(t => $"{t.Key}: {t.Value.Count}").ToList();
        Assert.True(written.Count == 0, "Rows were written: " + string.Join(", ", written));
    }

    public static Task<List<TableEntity>> RawEventsAsync(LocalHostFactory host) => host.Tables.RowsAsync(TableNames.RawEvents);

    /// <summary>The stored event document of a RawEvents row.</summary>
    public static JsonObject Payload(TableEntity row) => JsonNode.Parse(row.GetBinary("Payload"))!.AsObject();

    public static async Task<JsonObject> SinglePayloadAsync(LocalHostFactory host) => Payload(Assert.Single(await RawEventsAsync(host)));

    /// <summary>A minimal valid track event as JSON text, with the given extra members (already JSON) appended.</summary>
    public static string TrackJson(string? messageId = null, string extra = "") =>
        $$"""{"type":"track","event":"Report Opened","userId":"user-1","messageId":"{{messageId ?? Guid.NewGuid().ToString()}}"{{(extra.Length == 0 ? "" : "," + extra)}}}""";

    public static string BatchJson(params string[] events) => $$"""{"batch":[{{string.Join(",", events)}}]}""";

    /// <summary>A track event padded with one ASCII property so its compact JSON is exactly <paramref name="bytes"/> long.</summary>
    public static JsonObject TrackOfSize(int bytes, string? messageId = null)
    {
        var e = Segment.Track("Report Opened", "user-1", messageId);
        e["properties"] = new JsonObject { ["pad"] = "" };
        var overhead = Encoding.UTF8.GetByteCount(e.ToJsonString());
        Assert.True(bytes >= overhead, $"An event cannot be smaller than {overhead} bytes.");
        e["properties"]!["pad"] = new string('a', bytes - overhead);
        Assert.Equal(bytes, Encoding.UTF8.GetByteCount(e.ToJsonString()));
        return e;
    }
}
