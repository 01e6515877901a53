using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>Builders for Segment payloads and small HTTP helpers.</summary>
internal static class Segment
{
    public static JsonObject Track(string eventName, string? userId = "user-1", string? messageId = null, JsonObject? properties = null, DateTimeOffset? timestamp = null, string? anonymousId = null)
    {
        var e = new JsonObject
        {
            ["type"] = "track",
            ["event"] = eventName,
            ["messageId"] = messageId ?? Guid.NewGuid().ToString(),
            ["properties"] = properties ?? new JsonObject(),
        };
        if (userId is not null)
        {
            e["userId"] = userId;
        }

        if (anonymousId is not null)
        {
            e["anonymousId"] = anonymousId;
        }

        if (timestamp is not null)
        {
            e["timestamp"] = timestamp.Value.ToString("O");
        }

        return e;
    }

    public static JsonObject Batch(params JsonObject[] events) => new() { ["batch"] = new JsonArray(events) };

    public static StringContent Json(JsonNode body) => Json(body.ToJsonString());

    public static StringContent Json(string body)
    {
        var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    public static ByteArrayContent Bytes(byte[] body, string contentType = "application/json")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement;
    }
}
