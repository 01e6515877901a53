using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.Tests.Reporting;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// Requests no route takes get the JSON error shape with a reason, as every other refusal does: 404 for a path no
/// route serves, 405 with <c>Allow</c> for a method its route does not take. Every GET route also answers HEAD, with
/// the status and headers of GET and no body.
/// </summary>
public sealed class RouteMethodTests(AzuriteFixture azurite)
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("GET", "/nope")]
    [InlineData("POST", "/v1/nope")]
    [InlineData("GET", "/api/stats/nope")]
    [InlineData("DELETE", "/v2/batch")]
    [InlineData("GET", "/api/instances/a/b")]
    [InlineData("OPTIONS", "/favicon.ico")]
    public async Task A_path_no_route_serves_answers_404_with_the_json_error_and_a_reason(string method, string path)
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Cancel);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await ErrorOfAsync(response);
        Assert.Equal("not_found", error.Code);
        Assert.Equal("No route serves this path. The OpenAPI document at /api/openapi.json lists every route.", error.Message);
    }

    [Theory]
    [InlineData("GET", "/api/stats/instances")]
    [InlineData("GET", "/api/usage")]
    [InlineData("POST", "/api/admin/sweep")]
    public async Task A_route_refusing_the_admin_key_answers_401_with_the_code_and_message_at_the_top_as_every_refusal(string method, string path)
    {
        await using var host = new LocalHostFactory(azurite);
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.Add("x-functions-key", LocalHostFactory.WriteKey);

        using var response = await host.CreateClient().SendAsync(request, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = await ErrorOfAsync(response);
        Assert.Equal("unauthorized", error.Code);
        var body = await Segment.ReadJsonAsync(response);
        Assert.Equal(error.Code, body.GetProperty("code").GetString());
        Assert.Equal(error.Message, body.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("GET", "/v1/batch", "OPTIONS, POST")]
    [InlineData("PUT", "/v1/t", "OPTIONS, POST")]
    [InlineData("GET", "/v1/preview", "OPTIONS, POST")]
    [InlineData("GET", "/v1/opt-out", "OPTIONS, POST")]
    [InlineData("GET", "/api/admin/sweep", "POST")]
    [InlineData("OPTIONS", "/api/admin/sweep", "POST")]
    [InlineData("OPTIONS", "/v1/usage-reports", "POST")]
    [InlineData("OPTIONS", "/api/stats/instances", "GET, HEAD")]
    [InlineData("DELETE", "/v1/usage-reports", "POST")]
    [InlineData("PUT", "/v1/usage-reports/r-1", "GET, HEAD")]
    [InlineData("DELETE", "/api/stats/instances", "GET, HEAD")]
    [InlineData("POST", "/api/instances/i-1", "GET, HEAD")]
    [InlineData("POST", "/api/openapi.json", "GET, HEAD")]
    [InlineData("POST", "/dashboard", "GET, HEAD")]
    [InlineData("PATCH", "/dashboard/dashboard.js", "GET, HEAD")]
    [InlineData("POST", "/health", "GET, HEAD")]
    public async Task A_method_its_route_does_not_take_answers_405_with_allow_and_the_json_error(string method, string path, string allowed)
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Cancel);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(allowed.Split(", ").Order(StringComparer.Ordinal), response.Content.Headers.Allow.Order(StringComparer.Ordinal));
        var error = await ErrorOfAsync(response);
        Assert.Equal("method_not_allowed", error.Code);
        Assert.Equal($"This route does not take {method}; it takes {allowed}.", error.Message);
    }

    [Fact]
    public async Task A_dashboard_file_that_does_not_exist_answers_404_with_the_json_error()
    {
        await using var host = new LocalHostFactory(azurite);

        using var response = await host.CreateClient().GetAsync("/dashboard/secrets.json", Cancel);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(("not_found", "The dashboard has no file of this name."), await ErrorOfAsync(response));
    }

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

    private static async Task<(string Code, string Message)> ErrorOfAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await Segment.ReadJsonAsync(response);
        Assert.False(body.GetProperty("success").GetBoolean());
        var error = body.GetProperty("error");
        return (error.GetProperty("code").GetString()!, error.GetProperty("message").GetString()!);
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
