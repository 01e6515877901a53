using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.Tests.Reporting;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// Logs never hold personal data or keys: through the local host's pipeline, with every category (the host's own,
/// ASP.NET Core's, which logs request URLs, the Azure SDK's and HttpClient's) raised to Trace, the seed payloads, an
/// opt-out, instance lookups, rejected events and a support request with an e-mail address leave no raw id, e-mail
/// address, IP address or key in any log message, structured-log value or exception.
/// </summary>
public sealed class LogPrivacyTests(AzuriteFixture azurite)
{
    private const string RawInstanceId = "inst-raw-5f1c9a77e2";
    private const string UnknownRawInstanceId = "inst-raw-never-seen-48d2";
    private const string RawUserId = "user-raw-jane-8f31";
    private const string RawAnonymousId = "anon-raw-77ac0b19";
    private const string RejectedRawUserId = "user-raw-rejected-19e4";
    private const string SupportAnonymousId = "install-raw-support-3c5e";
    private const string SupportEmail = "jane.doe@example.com";
    private const string ClientIp = "198.51.100.23";

    /// <summary>Every category at Trace: Default, each category the hosts configure, and the ones that log request URLs.</summary>
    private static readonly Dictionary<string, string?> EverythingAtTrace = new()
    {
        ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "Trace",
        ["Logging:LogLevel:Microsoft.AspNetCore.Routing"] = "Trace",
        ["Logging:LogLevel:Default"] = "Trace",
        ["Logging:LogLevel:Microsoft"] = "Trace",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace",
        ["Logging:LogLevel:Azure"] = "Trace",
        ["Logging:LogLevel:System.Net.Http"] = "Trace",
        ["Logging:LogLevel:TelemetryFunctions"] = "Trace",
    };

    private static readonly string[] Keys =
    [
        LocalHostFactory.WriteKey, LocalHostFactory.InstallerKey, ReadApiTests.AdminKey,
        Convert.ToBase64String(Encoding.UTF8.GetBytes(LocalHostFactory.WriteKey + ":")),
        Convert.ToBase64String(Encoding.UTF8.GetBytes(LocalHostFactory.InstallerKey + ":")),
    ];

    [Fact]
    public async Task No_log_of_any_category_at_trace_holds_a_raw_id_an_email_an_ip_address_or_a_key()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var logs = new CapturedLogs();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2020-11-04T11:00:00Z", CultureInfo.InvariantCulture));
        await using var host = new LocalHostFactory(azurite, time, EverythingAtTrace, logs: logs);
        var client = host.CreateSegmentClient();

        // The seed payloads, verbatim: three accepted, two refused (a trailing comma; no Segment identity).
        await PostSeedAsync(host.CreateSegmentClient(LocalHostFactory.InstallerKey), "appsmith-installation-started.json", HttpStatusCode.OK);
        await PostSeedAsync(client, "appsmith-instance-active.json", HttpStatusCode.OK);
        await PostSeedAsync(client, "appsmith-client-page-load.json", HttpStatusCode.OK);
        time.SetUtcNow(DateTimeOffset.Parse("2021-08-24T08:00:00Z", CultureInfo.InvariantCulture));
        await PostSeedAsync(client, "appsmith-plugin-usage.json", HttpStatusCode.BadRequest);
        await PostSeedAsync(client, "camunda-modeler-deploy.json", HttpStatusCode.BadRequest);

        // A heartbeat that creates an instance, and a batch with a rejected event beside an accepted one.
        var heartbeat = Segment.Track("Instance Active", userId: RawUserId, properties: new JsonObject { ["instanceId"] = RawInstanceId, ["version"] = "1.0.0" });
        heartbeat["context"] = new JsonObject { ["ip"] = ClientIp };
        var rejected = Segment.Track("", userId: RejectedRawUserId, properties: new JsonObject { ["contact"] = SupportEmail });
        using (var batch = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(heartbeat, rejected)), cancellationToken))
        {
            var answer = await Segment.ReadJsonAsync(batch);
            Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
            Assert.Equal(1, answer.GetProperty("rejected").GetArrayLength());
        }

        // A support request with an e-mail address.
        var support = Segment.Track("Installation Support", userId: null, anonymousId: SupportAnonymousId, properties: new JsonObject { ["email"] = SupportEmail, ["os"] = "ubuntu" });
        using (var supported = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(support), cancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, supported.StatusCode);
        }

        // Instance lookups: found and not found, with the key as a header and as code in the URL.
        foreach (var (target, status) in new[]
        {
            ("/api/instances/" + RawInstanceId, HttpStatusCode.OK),
            ("/api/instances/" + UnknownRawInstanceId, HttpStatusCode.NotFound),
            ("/api/instances/" + RawInstanceId + "?code=" + ReadApiTests.AdminKey, HttpStatusCode.OK),
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, target);
            if (!target.Contains("code=", StringComparison.Ordinal))
            {
                request.Headers.Add("x-functions-key", ReadApiTests.AdminKey);
            }

            using var lookup = await host.CreateClient().SendAsync(request, cancellationToken);
            Assert.True(lookup.StatusCode == status, $"{target}: {(int)lookup.StatusCode}");
        }

        // An opt-out of the user, the anonymous id and the instance.
        var optOut = new JsonObject { ["userId"] = RawUserId, ["anonymousId"] = RawAnonymousId, ["instanceId"] = RawInstanceId };
        using (var optedOut = await client.PostAsync("/v1/opt-out", Segment.Json(optOut), cancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, optedOut.StatusCode);
        }

        var entries = logs.Entries;
        Assert.Contains(entries, e => e.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) && e.Level < LogLevel.Information); // Trace really reached the capture
        Assert.Contains(entries, e => e.Category.StartsWith("TelemetryFunctions", StringComparison.Ordinal));

        string[] personal =
        [
            RawInstanceId, UnknownRawInstanceId, RawUserId, RawAnonymousId, RejectedRawUserId, SupportAnonymousId, SupportEmail, ClientIp,
            .. SeedPayloadPrivacyTests.PersonalValuesInSeeds,
        ];
        var leaks = (
            from entry in entries
            from text in new[] { entry.Message }.Concat(entry.State.Select(p => Convert.ToString(p.Value, CultureInfo.InvariantCulture) ?? ""))
            from value in personal.Concat(Keys)
            where text.Contains(value, StringComparison.Ordinal)
            select $"{entry.Category} ({entry.Level}): '{value}' in \"{Shorten(text)}\"").Distinct().ToList();
        Assert.True(leaks.Count == 0, $"{leaks.Count} log values hold personal data or a key:\n" + string.Join("\n", leaks));
    }

    [Fact]
    public async Task The_host_on_kestrel_with_every_category_at_trace_writes_no_looked_up_instance_id_or_admin_key_to_its_console()
    {
        const string looked = "inst-raw-kestrel-3b9d41";
        const string malformed = "inst-raw-malformed-6c07e2";
        var settings = new Dictionary<string, string?>(EverythingAtTrace)
        {
            ["Logging:LogLevel:Microsoft.AspNetCore.Server.Kestrel"] = "Trace",
            ["TelemetryDisableTimers"] = "true",
        };
        await using var host = await LocalHostProcess.StartAsync(azurite, settings, TestContext.Current.CancellationToken);
        var heartbeat = Segment.Track("Instance Active", userId: "server", properties: new JsonObject { ["instanceId"] = looked, ["version"] = "1.0.0" });
        using (var seeded = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(heartbeat), TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, seeded.StatusCode);
        }

        // The target as written: found by header key and by code, and a request line Kestrel refuses itself (a NUL in the target).
        foreach (var request in new[]
        {
            new ReadRequest("/api/instances/" + looked, 200),
            new ReadRequest("/api/instances/" + looked + "?code=" + ReadApiTests.AdminKey, 200) { Key = null },
            new ReadRequest("/api/instances/" + malformed + "\u0000", 400) { Key = null },
        })
        {
            var answer = await ReadRequests.SendRawAsync(host, request);
            Assert.True(answer.Status == request.Status, $"{request}: {answer.Status}");
        }

        // The console logger writes its queue in order on its own thread: once the line of a later request (a batch of
        // three, whose ingestion is logged at Debug) is out, every line of the requests above is.
        var marker = new JsonObject { ["batch"] = new JsonArray(Enumerable.Range(0, 3).Select(_ => (JsonNode)Segment.Track("Feature Used")).ToArray()) };
        using (var last = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(marker), TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, last.StatusCode);
        }

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!host.Output.Contains("3 accepted", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        var output = host.Output;
        Assert.Contains("3 accepted", output, StringComparison.Ordinal);
        Assert.Contains("trce: ", output, StringComparison.Ordinal);
        foreach (var value in new[] { looked, malformed, ReadApiTests.AdminKey, LocalHostFactory.WriteKey })
        {
            Assert.False(output.Contains(value, StringComparison.Ordinal), $"'{value}' is in the host's console output:\n{output}");
        }
    }

    private static async Task PostSeedAsync(HttpClient client, string fixture, HttpStatusCode expected)
    {
        var text = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", "seeds", fixture), TestContext.Current.CancellationToken);
        using var response = await client.PostAsync("/v1/track", Segment.Json(text), TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == expected, $"{fixture}: {(int)response.StatusCode}");
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "...";
}
