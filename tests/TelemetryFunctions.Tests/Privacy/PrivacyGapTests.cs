using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Retention;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>Ways around opt-out, sharing levels and scrubbing that ingestion must close.</summary>
public sealed class PrivacyGapTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    private static JsonObject InstanceProps(string instanceId, JsonNode? level = null)
    {
        var p = new JsonObject { ["instanceId"] = instanceId, ["version"] = "2.0.0" };
        if (level is not null)
        {
            p["sharingLevel"] = level;
        }

        return p;
    }

    [Fact]
    public async Task An_alias_whose_previousId_opted_out_is_dropped_as_opted_out()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("x", userId: "oo2-user")), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "oo2-user" }), TestContext.Current.CancellationToken);

        var alias = await client.PostAsync("/v1/alias", Segment.Json(new JsonObject { ["userId"] = "new2", ["previousId"] = "oo2-user" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        var body = await Segment.ReadJsonAsync(alias);
        Assert.Equal(0, body.GetProperty("accepted").GetInt32());
        Assert.Equal(1, body.GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task Erasing_a_person_deletes_the_alias_calls_that_named_their_earlier_id()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("x", userId: "oo3-old")), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/alias", Segment.Json(new JsonObject { ["userId"] = "oo3-new", ["previousId"] = "oo3-old" }), TestContext.Current.CancellationToken);
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("y", userId: "oo3-new")), TestContext.Current.CancellationToken);
        Assert.Equal(3, (await host.Tables.RowsAsync(TableNames.RawEvents)).Count);

        var optOut = await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = "oo3-old" }), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, optOut.StatusCode);
        var left = Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        Assert.Equal("track", left.GetString("Type"));
        Assert.Null(left.GetString("PreviousKey"));
    }

    [Fact]
    public async Task A_downgrade_declared_by_a_dropped_event_is_recorded_and_inherited()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-down", "advanced"))), TestContext.Current.CancellationToken);

        var downgrade = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-down", "basic"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(downgrade)).GetProperty("dropped").GetProperty("sharingBasic").GetInt32());
        Assert.Equal("basic", Assert.Single(await host.Tables.RowsAsync(TableNames.Instances)).GetString("SharingLevel"));

        var undeclared = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-down"))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(undeclared)).GetProperty("dropped").GetProperty("sharingBasic").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Fact]
    public async Task Conflicting_declarations_in_one_event_take_the_most_restrictive()
    {
        await using var host = new LocalHostFactory(azurite);
        var track = Segment.Track("Feature Used", properties: InstanceProps("inst-conflict", "disabled"));
        track["context"] = new JsonObject { ["sharingLevel"] = "advanced" };

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(track), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Theory]
    [InlineData("dis\u200Babled")]
    [InlineData("\uFF44\uFF49\uFF53\uFF41\uFF42\uFF4C\uFF45\uFF44")]
    [InlineData("\u00A0Disabled\u2060")]
    [InlineData("disabled\uFFFE")]
    public async Task Disabled_spelt_in_fullwidth_letters_or_with_invisible_characters_still_opts_out(string level)
    {
        await using var host = new LocalHostFactory(azurite);

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-spelt", level))), TestContext.Current.CancellationToken);

        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("dropped").GetProperty("sharingDisabled").GetInt32());
        Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
    }

    [Theory]
    [InlineData("Login failed password=hunter2", false)]
    [InlineData("Opened /home/jane/projects/report", false)]
    [InlineData("Fetched https://jane:pw@repo.example.com/x", false)]
    [InlineData("Signed in as jane@example.com", false)]
    [InlineData("Opened C:\\Users\\jane\\report.docx", false)]
    [InlineData("Opened /Users/jane/Library/Preferences", false)]
    [InlineData("/callback?code=SplxlOBeZQQYbYS6WxSbIA", false)]
    [InlineData("Email: Sent", true)]
    [InlineData("Login: Google", true)]
    [InlineData("Token: Refreshed", true)]
    [InlineData("/Users/Edit/42", true)]
    [InlineData("/Users/settings", true)]
    [InlineData("Password: Reset", true)]
    [InlineData("Dashboard Viewed", true)]
    public async Task An_event_name_holding_a_credential_or_a_home_directory_refuses_its_event_and_a_label_is_stored(string name, bool stored)
    {
        await using var host = new LocalHostFactory(azurite);
        var ct = TestContext.Current.CancellationToken;

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(Segment.Track(name, properties: InstanceProps("inst-named"))), ct);

        var rows = await host.Tables.DumpAllAsync();
        if (stored)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents));
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("contains personal data", await response.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
            Assert.Empty(await host.Tables.RowsAsync(TableNames.RawEvents));
            Assert.DoesNotContain(name, rows, StringComparison.Ordinal);
        }
    }

    public static TheoryData<string> UnrecognizedLevels => ["\"false\"", "5", "{}", "false", "\"\\ufffe\"", "\"\\ufffe\\uffff\""];

    [Theory]
    [MemberData(nameof(UnrecognizedLevels))]
    public async Task An_unrecognized_sharing_level_counts_as_basic_and_never_lifts_a_suppression(string level)
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();

        var feature = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Feature Used", properties: InstanceProps("inst-odd", JsonNode.Parse(level)))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(feature)).GetProperty("dropped").GetProperty("sharingBasic").GetInt32());
        var heartbeat = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-odd", JsonNode.Parse(level)))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(heartbeat)).GetProperty("accepted").GetInt32());
        Assert.Contains("unrecognized sharing level treated as basic", StorageProbe.Dump(await host.Tables.RowsAsync(TableNames.RawEvents)), StringComparison.Ordinal);
        Assert.Equal("basic", Assert.Single(await host.Tables.RowsAsync(TableNames.Instances)).GetString("SharingLevel"));

        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-odd", "disabled"))), TestContext.Current.CancellationToken);
        var odd = await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-odd", JsonNode.Parse(level)))), TestContext.Current.CancellationToken);
        Assert.Equal(1, (await Segment.ReadJsonAsync(odd)).GetProperty("dropped").GetProperty("optedOut").GetInt32());
        Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
    }

    [Fact]
    public async Task Personal_fragments_of_free_text_urls_and_device_ids_are_redacted_and_the_rest_kept()
    {
        await using var host = new LocalHostFactory(azurite);
        const string Error = "permission denied: /home/jane.doe/x (user jane.doe, password=S3cr3t!)";
        var failed = Segment.Track("Installation Errors", userId: null, anonymousId: "install-redact", properties: new JsonObject
        {
            ["error"] = Error,
            ["contact"] = "jöhn@exämple.de",
            ["url"] = "https://app.example/reset?token=abc123&email=a%40b.com&page=2",
            ["link"] = "https://x.example/?email=jane%40example.com",
            ["card"] = "paid with 4111 1111 1111 1111",
            ["pw"] = "hunter2",
            ["db_pwd"] = "hunter3",
            ["note"] = "login with passwd=hunter4 or pwd: hunter5",
        });
        failed["context"] = new JsonObject
        {
            ["page"] = new JsonObject { ["url"] = "https://app.example/reset?token=abc123&email=a%40b.com" },
            ["device"] = new JsonObject { ["id"] = "dev-123456", ["advertisingId"] = "ad-7890", ["model"] = "Pixel" },
        };

        var response = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(failed), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await Segment.ReadJsonAsync(response)).GetProperty("scrubbed").GetInt32() >= 11);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var secret in new[] { "jane", "S3cr3t", "jöhn", "exämple", "abc123", "a%40b.com", "jane%40example.com", "4111", "hunter", "dev-123456", "ad-7890" })
        {
            Assert.DoesNotContain(secret, everything, StringComparison.Ordinal);
        }

        Assert.Contains("permission denied: /home/[redacted]/x (user [redacted], password=[redacted])", everything, StringComparison.Ordinal);
        Assert.Contains("https://app.example/reset?token=[redacted]&email=[redacted]&page=2", everything, StringComparison.Ordinal);
        Assert.Contains("Pixel", everything, StringComparison.Ordinal);
        var installation = Assert.Single(await host.Tables.RowsAsync(TableNames.Installations));
        Assert.Equal("permission denied: /home/[redacted]/x (user [redacted], password=[redacted])", installation.GetString("LastError"));
    }

    [Fact]
    public async Task Ip_addresses_in_attributes_host_names_names_and_the_support_email_are_stored_nowhere()
    {
        await using var host = new LocalHostFactory(azurite);
        var ct = TestContext.Current.CancellationToken;
        var client = host.CreateSegmentClient();
        var active = Segment.Track("Instance Active", properties: new JsonObject
        {
            ["instanceId"] = "inst-ips",
            ["os"] = "Linux 203.0.113.77 5.15",
            ["edition"] = "fe80::1234",
            ["version"] = "2.0 (10.11.12.13)",
        });
        active["context"] = new JsonObject
        {
            ["app"] = new JsonObject { ["name"] = "Billing on 10.1.2.3", ["version"] = "3.1.0.7" },
            ["os"] = new JsonObject { ["name"] = "ip-10-0-0-9" },
        };
        var usage = Segment.Track("Feature Used", properties: new JsonObject
        {
            ["host"] = "ec2-54-12-3-4.compute-1.amazonaws.com",
            ["nodes"] = new JsonObject { ["ip-10-0-0-7.ec2.internal"] = "up" },
            ["gateway"] = "192.168.001.015",
            ["resolver"] = "x.10.0.0.17",
            ["instanceId"] = "10.20.30.40",
        });

        var batch = await client.PostAsync("/v1/batch", Segment.Json(Segment.Batch(active, usage)), ct);
        var page = await client.PostAsync("/v1/page", Segment.Json(new JsonObject { ["userId"] = "user-ips", ["name"] = "ip-10-0-0-8.ec2.internal" }), ct);
        var support = Segment.Track("Installation Support", userId: null, anonymousId: "install-ips", properties: new JsonObject { ["email"] = "help@example.com (from 198.51.100.23)" });
        var supportAnswer = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(support), ct);

        Assert.Equal(2, (await Segment.ReadJsonAsync(batch)).GetProperty("accepted").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
        Assert.Contains("contains personal data", await page.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, supportAnswer.StatusCode);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var address in new[]
        {
            "203.0.113.77", "fe80::1234", "10.11.12.13", "10.1.2.3", "10-0-0-9", "54-12-3-4", "10-0-0-7", "10-0-0-8",
            "192.168.001.015", "10.0.0.17", "10.20.30.40", "198.51.100.23",
        })
        {
            Assert.DoesNotContain(address, everything, StringComparison.Ordinal);
        }

        var instance = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Equal("3.1.0.7", instance.GetString("Version"));
        Assert.Null(instance.GetString("Os"));
        Assert.Null(instance.GetString("Edition"));
        Assert.Equal("help@example.com", Assert.Single(await host.Tables.RowsAsync(TableNames.SupportRequests)).GetString("Email"));
        Assert.Contains("ec2-[redacted].compute-1.amazonaws.com", everything, StringComparison.Ordinal);
        Assert.Contains("x.[redacted]", everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Addresses_and_passwords_in_url_encoded_text_are_stored_nowhere()
    {
        await using var host = new LocalHostFactory(azurite);
        var ct = TestContext.Current.CancellationToken;
        var active = Segment.Track("Instance Active", properties: new JsonObject
        {
            ["instanceId"] = "inst-encoded",
            ["os"] = "connect%2010.20.30.40 refused",
            ["search"] = "https://example.com/search?q=ping%20192.168.41.77",
            ["ping"] = "q=ping%20fe80::99",
            ["link"] = "http://%5B2a02:c7f:1234::7%5D/",
            ["next"] = "http%3A%2F%2F%5B2001%3Adb8%3A%3A78%5D%2F",
            ["db"] = "https://admin:hunter2pass@10.1.2.3/",
            ["local"] = "http://admin:hunter3pass@localhost:8080/",
            ["open"] = "https://x.example/open?path=%2Fhome%2Fjanedoe%2Fapp",
            ["login"] = "https://x.example/login?next=%2Fprofile%3Femail%3Djane.doe%2540example.com",
        });
        active["context"] = new JsonObject { ["page"] = new JsonObject { ["url"] = "http://%5Bfe80::1234%5D:8080/admin" } };
        var failed = Segment.Track("Installation Errors", userId: null, anonymousId: "install-encoded", properties: new JsonObject
        {
            ["error"] = "GET http://example.com/health?target=db%20172.31.9.14 failed",
        });

        var usage = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(active), ct);
        var install = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(failed), ct);

        Assert.Equal(HttpStatusCode.OK, usage.StatusCode);
        Assert.Equal(HttpStatusCode.OK, install.StatusCode);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var personal in new[]
        {
            "10.20.30.40", "192.168.41.77", "fe80::99", "2a02", "3A78", "fe80::1234", "172.31.9.14", "hunter2pass", "hunter3pass", "janedoe", "jane.doe",
        })
        {
            Assert.DoesNotContain(personal, everything, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Null(Assert.Single(await host.Tables.RowsAsync(TableNames.Instances)).GetString("Os"));
        Assert.Equal("GET http://example.com/health?target=db%20[redacted] failed", Assert.Single(await host.Tables.RowsAsync(TableNames.Installations)).GetString("LastError"));
    }

    [Fact]
    public async Task A_raw_id_inside_a_url_a_file_name_or_an_installation_error_is_stored_nowhere()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = new LocalHostFactory(azurite);
        var usage = Segment.Track("Export Downloaded", userId: "raw-user-4711", properties: new JsonObject
        {
            ["instanceId"] = "inst-raw-6633",
            ["url"] = "https://app.example.com/users/raw-user-4711/exports",
            ["file"] = "/var/lib/app/inst-raw-6633/export.csv",
        });
        var failed = Segment.Track("Installation Errors", userId: null, anonymousId: "install-raw-2718", properties: new JsonObject
        {
            ["error"] = "cannot create /opt/app/install-raw-2718/data: permission denied",
        });

        var stored = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(usage), ct);
        var install = await host.CreateSegmentClient(LocalHostFactory.InstallerKey).PostAsync("/v1/track", Segment.Json(failed), ct);

        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Equal(HttpStatusCode.OK, install.StatusCode);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var raw in new[] { "raw-user-4711", "inst-raw-6633", "install-raw-2718" })
        {
            Assert.DoesNotContain(raw, everything, StringComparison.Ordinal);
        }

        Assert.Contains("https://app.example.com/users/[redacted]/exports", everything, StringComparison.Ordinal);
        Assert.Equal("cannot create /opt/app/[redacted]/data: permission denied", Assert.Single(await host.Tables.RowsAsync(TableNames.Installations)).GetString("LastError"));
    }

    [Fact]
    public async Task A_raw_id_inside_a_version_os_edition_or_message_id_is_stored_nowhere_and_one_in_the_event_name_refuses_the_event()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = new LocalHostFactory(azurite);
        var kept = Segment.Track("Instance Active", userId: "raw-user-4711", messageId: "raw-user-4711-started", properties: new JsonObject
        {
            ["instanceId"] = "inst-raw-6633",
            ["version"] = "2.0-raw-user-4711",
            ["os"] = "Linux INST-RAW-6633",
            ["edition"] = "enterprise raw-user-4711",
        });
        var named = Segment.Track("Exported raw-user-4711", userId: "raw-user-4711");

        var response = await host.CreateSegmentClient().PostAsync("/v1/batch", Segment.Json(Segment.Batch(kept, named)), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await Segment.ReadJsonAsync(response);
        Assert.Equal(1, answer.GetProperty("accepted").GetInt32());
        Assert.Contains("own identifiers", Assert.Single(answer.GetProperty("rejected").EnumerateArray()).GetProperty("reason").GetString(), StringComparison.Ordinal);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var raw in new[] { "raw-user-4711", "inst-raw-6633" })
        {
            Assert.DoesNotContain(raw, everything, StringComparison.OrdinalIgnoreCase);
        }

        var instance = Assert.Single(await host.Tables.RowsAsync(TableNames.Instances));
        Assert.Null(instance.GetString("Version"));
        Assert.Null(instance.GetString("Os"));
        Assert.Null(instance.GetString("Edition"));
    }

    [Fact]
    public async Task An_identify_keeps_no_raw_user_id_in_traits_context_traits_or_external_ids()
    {
        await using var host = new LocalHostFactory(azurite);
        var identify = new JsonObject
        {
            ["userId"] = "raw-user-4711",
            ["anonymousId"] = "anon-raw-9812",
            ["traits"] = new JsonObject { ["id"] = "raw-user-4711", ["plan"] = "pro", ["owner"] = "anon-raw-9812" },
            ["context"] = new JsonObject
            {
                ["traits"] = new JsonObject { ["id"] = "raw-user-4711" },
                ["externalIds"] = new JsonArray(new JsonObject { ["id"] = "raw-user-4711", ["type"] = "user_id", ["collection"] = "users", ["encoding"] = "none" }),
                ["library"] = new JsonObject { ["name"] = "analytics.js", ["version"] = "next-1.70.0" },
            },
        };
        var group = new JsonObject { ["userId"] = "raw-user-4711", ["groupId"] = "raw-group-5150", ["traits"] = new JsonObject { ["id"] = "raw-group-5150", ["plan"] = "team" } };

        var first = await host.CreateSegmentClient().PostAsync("/v1/identify", Segment.Json(identify), TestContext.Current.CancellationToken);
        var second = await host.CreateSegmentClient().PostAsync("/v1/group", Segment.Json(group), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var everything = await host.Tables.DumpAllAsync();
        foreach (var raw in new[] { "raw-user-4711", "anon-raw-9812", "raw-group-5150" })
        {
            Assert.DoesNotContain(raw, everything, StringComparison.Ordinal);
        }

        Assert.Contains("user_id", everything, StringComparison.Ordinal);
        Assert.Contains("team", everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_short_raw_id_does_not_remove_ordinary_values_equal_to_it()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Step Completed", userId: "1", properties: new JsonObject { ["step"] = "1", ["role"] = "admin" });

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, (await Segment.ReadJsonAsync(response)).GetProperty("scrubbed").GetInt32());
        var properties = Http.Hostile.Payload(Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents)))["properties"]!;
        Assert.Equal("1", properties["step"]!.GetValue<string>());
        Assert.Equal("admin", properties["role"]!.GetValue<string>());
    }

    [Fact]
    public async Task E_mails_addresses_and_raw_ids_spelt_percent_encoded_or_fullwidth_are_stored_nowhere()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Export Failed", userId: "john.smith-42", properties: new JsonObject
        {
            ["message"] = "to jane%2Edoe%40example%2Ecom",
            ["twice"] = "to jane.doe%2540example%252Ecom",
            ["url"] = "/users/john%2Esmith%2D42/exports",
            ["peer"] = "from \uFF12\uFF10\uFF13.\uFF10.\uFF11\uFF11\uFF13.\uFF19\uFF11",
            ["reply"] = "to jane.doe\uFF20example.com",
            ["path"] = "/api/v1/users%2Fjane%2Fexports",
        });

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(5, (await Segment.ReadJsonAsync(response)).GetProperty("scrubbed").GetInt32());
        var properties = Http.Hostile.Payload(Assert.Single(await host.Tables.RowsAsync(TableNames.RawEvents)))["properties"]!;
        Assert.Equal("to [redacted]", properties["message"]!.GetValue<string>());
        Assert.Equal("to [redacted]", properties["twice"]!.GetValue<string>());
        Assert.Equal("/users/[redacted]/exports", properties["url"]!.GetValue<string>());
        Assert.Equal("from [redacted]", properties["peer"]!.GetValue<string>());
        Assert.Equal("to [redacted]", properties["reply"]!.GetValue<string>());
        Assert.Equal("/api/v1/users%2Fjane%2Fexports", properties["path"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_card_number_sent_as_a_json_number_is_stored_nowhere()
    {
        await using var host = new LocalHostFactory(azurite);
        var e = Segment.Track("Checkout", properties: new JsonObject { ["payment"] = 4111111111111111L, ["items"] = 3 });

        var response = await host.CreateSegmentClient().PostAsync("/v1/track", Segment.Json(e), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await Segment.ReadJsonAsync(response)).GetProperty("scrubbed").GetInt32());
        var everything = await host.Tables.DumpAllAsync();
        Assert.DoesNotContain("4111111111111111", everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retention_repeats_a_recent_erasure_once_and_then_never_again()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();
        for (var i = 0; i < 3; i++)
        {
            await client.PostAsync("/v1/opt-out", Segment.Json(new JsonObject { ["userId"] = $"leaver-{i}" }), TestContext.Current.CancellationToken);
        }

        Assert.All(await host.Tables.RowsAsync(TableNames.Suppressions), r => Assert.False(r.GetBoolean("ErasurePending")));
        var job = host.Services.GetRequiredService<RetentionJob>();

        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(3, (await job.RunAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.Equal(0, (await job.RunAsync(TestContext.Current.CancellationToken)).Erasures);
        time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(0, (await job.RunAsync(TestContext.Current.CancellationToken)).Erasures);
    }

    [Fact]
    public async Task An_instance_that_keeps_declaring_disabled_is_not_suppressed_and_erased_again()
    {
        var time = new FakeTimeProvider(T0);
        await using var host = new LocalHostFactory(azurite, time);
        var client = host.CreateSegmentClient();
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-quiet", "disabled"))), TestContext.Current.CancellationToken);
        var first = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));

        time.Advance(TimeSpan.FromHours(6));
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-quiet", "disabled"))), TestContext.Current.CancellationToken);

        var again = Assert.Single(await host.Tables.RowsAsync(TableNames.Suppressions));
        Assert.Equal(first.GetDateTimeOffset("CreatedAt"), again.GetDateTimeOffset("CreatedAt"));
        Assert.False(again.GetBoolean("ErasurePending"));
        var job = host.Services.GetRequiredService<RetentionJob>();
        Assert.Equal(1, (await job.RunAsync(TestContext.Current.CancellationToken)).Erasures);
        await client.PostAsync("/v1/track", Segment.Json(Segment.Track("Instance Active", properties: InstanceProps("inst-quiet", "disabled"))), TestContext.Current.CancellationToken);
        Assert.Equal(0, (await job.RunAsync(TestContext.Current.CancellationToken)).Erasures);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Instances));
    }
}
