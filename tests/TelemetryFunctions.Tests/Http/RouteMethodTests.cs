using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.Tests.Reporting;

namespace TelemetryFunctions.Tests.Http;

/// <summary>Every GET route also answers HEAD, with the status and headers of GET and no body.</summary>
public sealed class RouteMethodTests(AzuriteFixture azurite)
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_route_that_answers_get_also_answers_head_and_no_other_does()
    {
        await using var host = new LocalHostFactory(azurite);

        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Select(e => (Route: e.RoutePattern.RawText!, Methods: e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []))
            .ToList();

        Assert.Contains(routes, r => r.Methods.Contains("GET"));
        Assert.All(routes, r => Assert.True(r.Methods.Contains("GET") == r.Methods.Contains("HEAD"), $"{r.Route}: {string.Join(", ", r.Methods)}"));
    }

    [Fact]
    public async Task Head_answers_with_the_status_and_headers_of_get_and_no_body_on_kestrel()
    {
        await using var host = await LocalHostProcess.StartAsync(azurite, cancellationToken: Cancel);
        using var client = host.CreateClient();
        var cases = new (string Path, string? AdminKey, HttpStatusCode Status)[]
        {
            ("/dashboard", null, HttpStatusCode.OK),
            ("/dashboard/dashboard.js", null, HttpStatusCode.OK),
            ("/api/openapi.json", null, HttpStatusCode.OK),
            ("/health", null, HttpStatusCode.OK),
            ("/api/stats/instances", ReadApiTests.AdminKey, HttpStatusCode.OK),
            ("/api/stats/active-users?format=csv", ReadApiTests.AdminKey, HttpStatusCode.OK),
            ("/api/instances/never-seen", ReadApiTests.AdminKey, HttpStatusCode.NotFound),
            ("/api/stats/instances", null, HttpStatusCode.Unauthorized),
            ("/dashboard/secrets.json", null, HttpStatusCode.NotFound),
            ("/nope", null, HttpStatusCode.NotFound),
        };

        foreach (var (path, adminKey, status) in cases)
        {
            using var get = new HttpRequestMessage(HttpMethod.Get, path);
            if (adminKey is not null)
            {
                get.Headers.Add("x-functions-key", adminKey);
            }

            using var getResponse = await client.SendAsync(get, Cancel);
            var getBody = await getResponse.Content.ReadAsByteArrayAsync(Cancel);
            var head = await SendHeadAsync(host.BaseAddress, path, adminKey);

            Assert.True(getResponse.StatusCode == status, $"GET {path}: {(int)getResponse.StatusCode}");
            Assert.True(head.Status == status, $"HEAD {path}: {(int)head.Status}");
            Assert.True(head.BodyBytes == 0, $"HEAD {path} sent {head.BodyBytes} bytes of body.");
            Assert.Equal(getResponse.Content.Headers.ContentType?.ToString(), head.Headers.GetValueOrDefault("content-type"));
            if (head.Headers.TryGetValue("content-length", out var length))
            {
                Assert.Equal(getBody.Length.ToString(CultureInfo.InvariantCulture), length);
            }
        }
    }

    /// <summary>
    /// A HEAD request over a plain socket, read until the host closes the connection, so that any byte sent after the
    /// headers is seen (an HTTP client reads no body for HEAD, whatever the server sends).
    /// </summary>
    private static async Task<(HttpStatusCode Status, Dictionary<string, string> Headers, int BodyBytes)> SendHeadAsync(Uri baseAddress, string path, string? adminKey)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port, Cancel);
        var stream = tcp.GetStream();
        var request = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"HEAD {path} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nConnection: close\r\n")
            .Append(adminKey is null ? "" : $"x-functions-key: {adminKey}\r\n")
            .Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), Cancel);
        using var received = new MemoryStream();
        await stream.CopyToAsync(received, Cancel);

        var text = Encoding.ASCII.GetString(received.ToArray());
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"HEAD {path}: no complete header block in {text}");
        var lines = text[..end].Split("\r\n");
        var status = (HttpStatusCode)int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1)
            .Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim(), StringComparer.Ordinal);
        return (status, headers, (int)received.Length - (end + 4));
    }
}
