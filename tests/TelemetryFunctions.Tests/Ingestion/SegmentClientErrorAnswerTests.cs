using System.Net;
using System.Text.Json;
using TelemetryFunctions.Tests.Http;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Ingestion;

/// <summary>
/// How Segment's libraries read a refusal. The Python library (analytics-python) raises its API error from the body's
/// top-level <c>code</c> and <c>message</c>, and gives up on a 4xx other than 429 only when it has that error: a body
/// without them makes it retry the refused batch as if the network had failed, for minutes, while its queue fills.
/// </summary>
public sealed class SegmentClientErrorAnswerTests(AzuriteFixture azurite)
{
    public static TheoryData<string, string, string, HttpStatusCode> Refusals => new()
    {
        { "/v1/batch", "{\"batch\":[", LocalHostFactory.WriteKey, HttpStatusCode.BadRequest },
        { "/v1/batch", "{\"batch\":[{\"type\":\"track\",\"userId\":\"user-1\"}]}", LocalHostFactory.WriteKey, HttpStatusCode.BadRequest },
        { "/v1/batch", "{\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"user-1\"}]}", "not-a-write-key", HttpStatusCode.Unauthorized },
        { "/v1/opt-out", "{}", LocalHostFactory.WriteKey, HttpStatusCode.BadRequest },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_refusal_carries_its_code_and_message_at_the_top_level_as_the_python_library_reads_them(string path, string body, string writeKey, HttpStatusCode status)
    {
        await using var host = new LocalHostFactory(azurite);

        var answer = await Hostile.PostJsonAsync(host.CreateSegmentClient(writeKey), path, body);

        Assert.Equal(status, answer.Status);
        var error = answer.Body.GetProperty("error");
        Assert.True(answer.Body.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String, answer.ToString());
        Assert.True(answer.Body.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String, answer.ToString());
        Assert.Equal(error.GetProperty("code").GetString(), code.GetString());
        Assert.Equal(error.GetProperty("message").GetString(), message.GetString());
    }
}
