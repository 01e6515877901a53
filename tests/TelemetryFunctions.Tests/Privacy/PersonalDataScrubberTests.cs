using System.Text.Json.Nodes;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Tests.Privacy;

public sealed class PersonalDataScrubberTests
{
    private readonly PersonalDataScrubber _scrubber = new(new PrivacyOptions());

    [Theory]
    [InlineData("email")]
    [InlineData("Email_Address")]
    [InlineData("$email")]
    [InlineData("ip")]
    [InlineData("password")]
    [InlineData("apiToken")]
    [InlineData("phone_number")]
    [InlineData("firstName")]
    [InlineData("userId")]
    [InlineData("distinct_id")]
    [InlineData("$city")]
    [InlineData("userAgent")]
    [InlineData("instanceId")]
    [InlineData("10.1.2.3")]
    [InlineData("jane@example.com")]
    [InlineData("2001:db8::1")]
    [InlineData("ghp_0123456789abcdefghijABCDEFGHIJ012345")]
    [InlineData("ip-10-0-0-7.ec2.internal")]
    [InlineData("ec2-54-12-3-4.compute-1.amazonaws.com")]
    [InlineData("node.10.0.0.17")]
    [InlineData("pin")]
    [InlineData("OTP")]
    [InlineData("passcode")]
    [InlineData("stripeClientKey")]
    [InlineData("productLicenseKey")]
    [InlineData("ssh_privkey")]
    [InlineData("oauthKey")]
    [InlineData("licenseKey")]
    [InlineData("client_key")]
    [InlineData("authKey")]
    [InlineData("privKey")]
    public void Keys_that_name_or_are_personal_data_are_removed(string key)
    {
        var properties = new JsonObject { [key] = "anything", ["plan"] = "pro" };

        var removed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(1, removed);
        Assert.False(properties.ContainsKey(key));
        Assert.Equal("pro", properties["plan"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("privateKey")]
    [InlineData("private_key")]
    [InlineData("accessKey")]
    [InlineData("aws_access_key_id")]
    [InlineData("AccountKey")]
    [InlineData("sharedAccessKey")]
    [InlineData("signingKey")]
    [InlineData("encryptionKey")]
    [InlineData("masterKey")]
    [InlineData("sessionKey")]
    [InlineData("credentials")]
    [InlineData("connectionString")]
    [InlineData("sig")]
    public void Keys_that_name_credentials_are_removed(string key)
    {
        var properties = new JsonObject { [key] = "Zx9Q7m2LkP0a", ["plan"] = "pro" };

        var removed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(1, removed);
        Assert.False(properties.ContainsKey(key));
        Assert.Equal("pro", properties["plan"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("jane@example.com")]
    [InlineData("10.0.0.1")]
    [InlineData("2001:db8::8a2e:370:7334")]
    [InlineData("fe80::1")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")]
    [InlineData("ghp_0123456789abcdefghijABCDEFGHIJ012345")]
    [InlineData("Bearer abcdefghijklmnopqrstuvwxyz")]
    [InlineData("AKIAIOSFODNN7EXAMPLE")]
    public void Values_that_look_like_addresses_or_secrets_are_removed_under_any_key(string value)
    {
        var properties = new JsonObject { ["note"] = value, ["nested"] = new JsonObject { ["list"] = new JsonArray(value, "keep") } };

        var removed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(2, removed);
        Assert.False(properties.ContainsKey("note"));
        Assert.Equal(["keep"], properties["nested"]!["list"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Theory]
    [InlineData("contact me at jane@example.com", "contact me at [redacted]")]
    [InlineData("write to jöhn@exämple.de today", "write to [redacted] today")]
    [InlineData("paid with 4111 1111 1111 1111 on Monday", "paid with [redacted] on Monday")]
    [InlineData("failed: passwd=hunter2; retrying", "failed: passwd=[redacted]; retrying")]
    [InlineData("https://x.example/?email=jane%40example.com&page=2", "https://x.example/?email=[redacted]&page=2")]
    [InlineData("http://192.168.1.20:8080/app", "http://[redacted]:8080/app")]
    [InlineData("connect to 10.0.0.5 refused", "connect to [redacted] refused")]
    [InlineData("[2001:db8::1]:443 unreachable", "[[redacted]]:443 unreachable")]
    [InlineData("no route to fe80::1.", "no route to [redacted].")]
    [InlineData("via 2001:db8:1:2:3:4:10.0.0.1 failed", "via [redacted] failed")]
    [InlineData("from ::ffff:10.0.0.1 port 22", "from [redacted] port 22")]
    [InlineData("peer:fe80::1 lost", "peer:[redacted] lost")]
    [InlineData("link fe80::1%eth0 down", "link [redacted]%eth0 down")]
    [InlineData("https://x.example/?host=2001%3Adb8%3A%3A1&page=2", "https://x.example/?host=[redacted]&page=2")]
    [InlineData("http://%5B2001%3Adb8%3A%3A1%5D:8080/app", "http://%5B[redacted]%5D:8080/app")]
    [InlineData("timeout from ip-10-0-0-5.ec2.internal", "timeout from ip-[redacted].ec2.internal")]
    [InlineData("reset by c-73-22-1-5.hsd1.ca.example.net", "reset by c-[redacted].hsd1.ca.example.net")]
    [InlineData("host ec2-54-12-3-4.compute-1.amazonaws.com", "host ec2-[redacted].compute-1.amazonaws.com")]
    [InlineData("peer ip-10-0-0-7.ec2.internal:5432", "peer ip-[redacted].ec2.internal:5432")]
    [InlineData("gateway 192.168.001.015 down", "gateway [redacted] down")]
    [InlineData("dns x.10.0.0.17 lookup", "dns x.[redacted] lookup")]
    [InlineData("ping node1.10.0.0.17 failed", "ping node1.[redacted] failed")]
    [InlineData("db2.192.168.1.5:5432 refused", "db2.[redacted]:5432 refused")]
    [InlineData("web01.10.0.0.17 down", "web01.[redacted] down")]
    [InlineData("web-1.10.0.0.17 down", "web-1.[redacted] down")]
    [InlineData("dev1.10.0.0.17 down", "dev1.[redacted] down")]
    [InlineData("from 010.000.000.001.", "from [redacted].")]
    [InlineData("login failed, token=expired", "login failed, token=[redacted]")]
    [InlineData("login failed, password: hunter2", "login failed, password: [redacted]")]
    public void Personal_fragments_of_free_text_are_redacted_and_the_rest_kept(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value, ["nested"] = new JsonObject { ["list"] = new JsonArray(value, "keep") } };

        var scrubbed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(2, scrubbed);
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
        Assert.Equal([expected, "keep"], properties["nested"]!["list"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Theory]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=Zx9Q7m2L+kP0a/b==;EndpointSuffix=core.windows.net",
        "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=[redacted];EndpointSuffix=core.windows.net")]
    [InlineData("Endpoint=sb://bus.example.net/;SharedAccessKeyName=Root;SharedAccessKey=Zx9Q7m2LkP0a=",
        "Endpoint=sb://bus.example.net/;SharedAccessKeyName=[redacted];SharedAccessKey=[redacted]")]
    [InlineData("GET https://prod.blob.example.net/c/b.txt?sv=2022-11-02&sp=r&sig=Zx9Q7m2LkP0a failed",
        "GET https://prod.blob.example.net/c/b.txt?sv=2022-11-02&sp=r&sig=[redacted] failed")]
    [InlineData("GET https://b.s3.example.net/k?X-Amz-Expires=60&X-Amz-Signature=Zx9Q7m2LkP0a failed",
        "GET https://b.s3.example.net/k?X-Amz-Expires=60&X-Amz-Signature=[redacted] failed")]
    [InlineData("GET https://storage.example.net/b/o?X-Goog-Signature=Zx9Q7m2LkP0a&X-Goog-Expires=60",
        "GET https://storage.example.net/b/o?X-Goog-Signature=[redacted]&X-Goog-Expires=60")]
    [InlineData("deploy failed: private_key=Zx9Q7m2LkP0a", "deploy failed: private_key=[redacted]")]
    [InlineData("aws_access_key_id: Zx9Q7m2LkP0a rejected", "aws_access_key_id: [redacted] rejected")]
    [InlineData("credentials=Zx9Q7m2LkP0a", "credentials=[redacted]")]
    public void Credentials_named_in_free_text_are_redacted_and_the_rest_kept(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        var scrubbed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(1, scrubbed);
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("request body {\"password\":\"hunter2\",\"plan\":\"pro\"}", "request body {\"password\":\"[redacted]\",\"plan\":\"pro\"}")]
    [InlineData("config {\"db_password\": \"hunter2\"} rejected", "config {\"db_password\": \"[redacted]\"} rejected")]
    [InlineData("settings {'api_token': 'abc123def'}", "settings {'api_token': '[redacted]'}")]
    [InlineData("{\"email\":\"someone\",\"plan\":\"pro\"}", "{\"email\":\"[redacted]\",\"plan\":\"pro\"}")]
    [InlineData("request {\"password\":\"correct horse battery staple\"}", "request {\"password\":\"[redacted]\"}")]
    [InlineData("{\"password\":\"Tr0ub4dor&3\",\"plan\":\"pro\"}", "{\"password\":\"[redacted]\",\"plan\":\"pro\"}")]
    [InlineData("settings {'api_token': 'ab;cd (x)'}", "settings {'api_token': '[redacted]'}")]
    [InlineData("{\"password\":\"a\\\"b c\"} sent", "{\"password\":\"[redacted]\"} sent")]
    public void Quoted_names_of_json_in_free_text_redact_their_values(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        var scrubbed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(1, scrubbed);
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("Authorization: Bearer abcdefghijklmnopqrstuvwxyz")]
    [InlineData("request failed: Authorization: Bearer 8f7d6e5c4b3a29180716 (401)")]
    [InlineData("curl -H 'authorization: bearer 0123456789abcdefXYZ' https://api.example.com")]
    public void A_bearer_token_after_an_authorization_name_removes_its_value(string value)
    {
        var properties = new JsonObject { ["note"] = value, ["plan"] = "pro" };

        var scrubbed = _scrubber.Scrub(properties, "properties");

        Assert.Equal(1, scrubbed);
        Assert.False(properties.ContainsKey("note"));
        Assert.Null(_scrubber.ScrubText(value));
    }

    [Theory]
    [InlineData("request failed: Authorization: Basic dXNlcjpodW50ZXIy (401)", "request failed: Authorization: [redacted] (401)")]
    [InlineData("Authorization: Bearer s3cr3tT0ken", "Authorization: [redacted]")]
    [InlineData("authorization=Digest abc123; retrying", "authorization=[redacted]; retrying")]
    [InlineData("Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Proxy-Authorization: [redacted]")]
    [InlineData("auth: token ghx1234 rejected", "auth: [redacted] rejected")]
    public void The_credentials_after_an_authorization_scheme_are_redacted_with_it(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        _scrubber.Scrub(properties, "properties");

        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://example.com/search?q=ping%20192.168.41.77", "https://example.com/search?q=ping%20[redacted]")]
    [InlineData("connect%2010.20.30.40 refused", "connect%20[redacted] refused")]
    [InlineData("host%3D10.20.30.40%26x=1", "host%3D[redacted]%26x=1")]
    [InlineData("lookup%2010-20-30-40 failed", "lookup%20[redacted] failed")]
    [InlineData("q=ping%20fe80::99", "q=ping%20[redacted]")]
    [InlineData("http%3A%2F%2F%5B2001%3Adb8%3A%3A78%5D%2F", "http%3A%2F%2F%5B[redacted]%5D%2F")]
    [InlineData("http://%5Bfe80::1234%5D:8080/admin", "http://%5B[redacted]%5D:8080/admin")]
    [InlineData("http://%5B2a02:c7f:1234::7%5D/", "http://%5B[redacted]%5D/")]
    [InlineData("q=ping%20fe80%3A%3A1", "q=ping%20[redacted]")]
    [InlineData("hosts=a%2C2001%3Adb8%3A%3A1", "hosts=a%2C[redacted]")]
    public void Addresses_right_after_a_percent_escape_are_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://admin:hunter2pass@10.1.2.3/", "https://[redacted]@[redacted]/")]
    [InlineData("http://admin:hunter3pass@localhost:8080/", "http://[redacted]@localhost:8080/")]
    [InlineData("clone https://deploy:s3cret@example.com/repo.git failed", "clone https://[redacted]@example.com/repo.git failed")]
    [InlineData("redis://:p4ss@cache:6379/0", "redis://[redacted]@cache:6379/0")]
    [InlineData("https://jane@corp.com:pw4711@host/x?a=b@c", "https://[redacted]@host/x?a=b@c")]
    public void The_user_name_and_password_of_a_url_are_redacted_whatever_the_host(string value, string expected)
    {
        var properties = new JsonObject { ["url"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["url"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://x.example/login?next=%2Fprofile%3Femail%3Djane.doe%2540example.com", "jane.doe")]
    [InlineData("contact \"jane doe\"@example.com please", "jane doe")]
    [InlineData("mail sean.o'brien@example.com now", "sean.o")]
    [InlineData("mail jane.roe@[10.0.0.5] now", "jane.roe")]
    [InlineData("mail jane.roe@[IPv6:2001:db8::5] now", "jane.roe")]
    public void E_mail_addresses_double_encoded_quoted_with_an_apostrophe_or_at_an_address_literal_are_redacted(string value, string personal)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.DoesNotContain(personal, properties["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains(PersonalDataScrubber.Redacted, properties["note"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mail sean.o'brien@example.com now", "mail [redacted] now")]
    [InlineData("contact \"jane doe\"@example.com please", "contact [redacted] please")]
    [InlineData("reply to 'jane@example.com' today", "reply to '[redacted]' today")]
    [InlineData("https://x.example/open?path=%2Fhome%2Fjanedoe%2Fapp", "https://x.example/open?path=%2Fhome%2F[redacted]%2Fapp")]
    [InlineData("open C:%5CUsers%5Cjanedoe%5Capp", "open C:%5CUsers%5C[redacted]%5Capp")]
    public void Only_the_personal_fragment_is_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("contact jane%2Edoe%40example%2Ecom now", "contact [redacted] now")]
    [InlineData("contact jane.doe%2540example%252Ecom now", "contact [redacted] now")]
    [InlineData("?next=%252Fprofile%253Fmail%253Djane%252Edoe%252540example%252Ecom&x=1", "?next=%252Fprofile%253Fmail%253D[redacted]&x=1")]
    [InlineData("mail jane.doe\uFF20example.com now", "mail [redacted] now")]
    [InlineData("mail jane%EF%BC%A0example.com now", "mail [redacted] now")]
    [InlineData("from \uFF12\uFF10\uFF13.\uFF10.\uFF11\uFF11\uFF13.\uFF19\uFF11 today", "from [redacted] today")]
    [InlineData("host=10%2E0%2E0%2E77&x=1", "host=[redacted]&x=1")]
    [InlineData("peer %32%30%30%31:db8::5 down", "peer [redacted] down")]
    [InlineData("pay 4111%201111%201111%201111 now", "pay [redacted] now")]
    [InlineData("open https%3A%2F%2Fadmin%3Ahunter2x%40cache.internal%2Fq", "open https%3A%2F%2F[redacted]%40cache.internal%2Fq")]
    public void Personal_data_spelt_percent_encoded_or_in_fullwidth_forms_is_redacted_over_its_encoded_span(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("contact jane.doe@exa\u200Bmple.com today", "contact [redacted] today")]
    [InlineData("contact jane\u200B.doe@example.com today", "contact [redacted] today")]
    [InlineData("host 10.0\u00AD.0.5 down", "host [redacted] down")]
    [InlineData("host 10\u2060.0.0.5\u200D down", "host [redacted]\u200D down")]
    [InlineData("from 2001:db8::\u200C1 refused", "from [redacted] refused")]
    [InlineData("mail jane.doe\uFEFF\uFF20example.com now", "mail [redacted] now")]
    public void Personal_data_split_by_invisible_characters_is_redacted_over_its_whole_span(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("co\u00ADoper\u00ADa\u00ADtion")]
    [InlineData("\U0001F468\u200D\U0001F469\u200D\U0001F467 family")]
    [InlineData("\u202Eevil\u202C text\u200B")]
    public void Text_with_invisible_characters_and_no_personal_data_is_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/api/v1/users%2Fjane%2Fexports")]
    [InlineData("https://example.com/files/a%2Fb%40c")]
    [InlineData("open path%2Fto%2Fjane%40home%2Freport.txt")]
    [InlineData("100% done, 50%off, 20%2 left")]
    [InlineData("caf%C3%A9 menu %E2%82%AC")]
    [InlineData("\uFF37\uFF49\uFF4E\uFF44\uFF4F\uFF57\uFF53 \uFF11\uFF11 \u65E5\u672C\u8A9E")]
    [InlineData("version \uFF12.\uFF10.\uFF11 on \uFF12\uFF10\uFF12\uFF16-\uFF11\uFF12-\uFF10\uFF13")]
    [InlineData("v%31.2.3.4.5")]
    [InlineData("build-1-2-3-4-5")]
    [InlineData("v1.2.3.4.5")]
    [InlineData("\u2474 and \uFB01le")]
    public void Encoded_or_fullwidth_text_that_holds_no_personal_data_is_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://app.example.com/login?next=%2Fcb%3Ftoken%3Dabc123def456", "https://app.example.com/login?next=%2Fcb%3Ftoken%3D[redacted]")]
    [InlineData("redirect=%2Fx%3Fpassword%3Dhunter2", "redirect=%2Fx%3Fpassword%3D[redacted]")]
    [InlineData("?next=%2Fcb%3Ftoken%3Dabc123%26page%3D2&tab=1", "?next=%2Fcb%3Ftoken%3D[redacted]%26page%3D2&tab=1")]
    [InlineData("?next=%252Fcb%253Fapi_key%253Dabc123&x=1", "?next=%252Fcb%253Fapi_key%253D[redacted]&x=1")]
    [InlineData("back=%2Fa%3Fclient_secret%3Ds3cr3t%20then%20home", "back=%2Fa%3Fclient_secret%3D[redacted]%20then%20home")]
    [InlineData("pass%77ord=hunter2 sent", "pass%77ord=[redacted] sent")]
    public void The_value_of_a_secret_or_personal_name_value_pair_spelt_percent_encoded_is_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["url"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["url"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("?next=%2Fcb%3Fpage%3D2%26tab%3Dusage")]
    [InlineData("?next=%2Fhelp%3Ftopic%3Dtoken%20expiry")]
    [InlineData("redirect=%2Fsettings%2Fpassword")]
    public void Percent_encoded_name_value_pairs_with_harmless_names_are_kept(string value)
    {
        var properties = new JsonObject { ["url"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["url"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("at c:\\users\\alice\\AppData\\Local\\x.dll", "at c:\\users\\[redacted]\\AppData\\Local\\x.dll")]
    [InlineData("C:\\USERS\\ALICE\\Desktop", "C:\\USERS\\[redacted]\\Desktop")]
    [InlineData("{\"path\":\"C:\\\\Users\\\\alice\\\\AppData\"}", "{\"path\":\"C:\\\\Users\\\\[redacted]\\\\AppData\"}")]
    [InlineData("open c:/users/alice/Documents/a.txt", "open c:/users/[redacted]/Documents/a.txt")]
    [InlineData("open C:%5Cusers%5Calice%5CAppData", "open C:%5Cusers%5C[redacted]%5CAppData")]
    public void A_windows_home_directory_in_any_case_or_with_doubled_backslashes_loses_its_user_name(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/home/ed/app run by ed", "/home/[redacted]/app run by [redacted]")]
    [InlineData("C:\\Users\\act\\x.dll then /home/red/y", "C:\\Users\\[redacted]\\x.dll then /home/[redacted]/y")]
    public void A_user_name_found_in_the_redaction_marker_leaves_the_markers_whole(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Fact]
    public void Every_copy_of_user_names_repeated_thousands_of_times_is_redacted()
    {
        var value = string.Concat(Enumerable.Repeat("/home/jane/a jane C:\\Users\\bob\\b bob.txt janet ", 2000));
        var expected = string.Concat(Enumerable.Repeat("/home/[redacted]/a [redacted] C:\\Users\\[redacted]\\b [redacted].txt [redacted]t ", 2000));
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("contact alice&#64;example.com now", "contact [redacted] now")]
    [InlineData("contact alice&commat;example.com now", "contact [redacted] now")]
    [InlineData("contact alice&#x40;example&period;com now", "contact [redacted] now")]
    [InlineData("contact alice&#64example&#X2E;com now", "contact [redacted] now")]
    [InlineData("contact alice&#65312;example.com now", "contact [redacted] now")]
    [InlineData("contact alice%26%2364%3Bexample.com now", "contact [redacted] now")]
    [InlineData("from 10&#46;0&#46;0&#46;7 today", "from [redacted] today")]
    [InlineData("contact alice&#00000064;example.com now", "contact [redacted] now")]
    [InlineData("contact alice&#x0000000040;example&#x00002E;com now", "contact [redacted] now")]
    public void Personal_data_spelt_with_html_character_references_is_redacted_over_its_encoded_span(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("mail alice@example\u3002com now", "mail [redacted] now")]
    [InlineData("mail alice@example\uFF61com now", "mail [redacted] now")]
    [InlineData("mail alice\uFE6Bexample\u3002co\u3002uk now", "mail [redacted] now")]
    [InlineData("\u5C71\u7530\u3055\u3093\u3002 alice@example\u3002com\u3002", "\u5C71\u7530\u3055\u3093\u3002 [redacted]\u3002")]
    [InlineData("\u5C71\u7530\u3002 alice\uFF20example\uFF61com \u307E\u305F\u306D", "\u5C71\u7530\u3002 [redacted] \u307E\u305F\u306D")]
    public void An_e_mail_address_whose_domain_is_split_by_an_ideographic_full_stop_is_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("build%2D1-2-3-4-5")]
    [InlineData("id%3A1-2-3-4-5")]
    [InlineData("release%2Ex%2E1.2.3.4.5")]
    [InlineData("Tom &amp; Jerry &#169; 2026, a&b; ?a=1&b=2")]
    [InlineData("\u3053\u3093\u306B\u3061\u306F\u3002\u307E\u305F\u306D\u3002")]
    [InlineData("\u4ECA\u65E5\u306F\u6674\u308C\u3002\uC548\uB155\uD558\uC138\uC694\u3002\u30C6\u30B9\u30C8\uFF61")]
    [InlineData("Tom &#000000000000000000000038; Jerry &#99999999; &#x0000110000;")]
    [InlineData("GET /api/users/profile and the Users guide")]
    public void Encoded_text_with_numbers_runs_entities_or_ideographic_stops_and_no_personal_data_is_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value };
        var context = new JsonObject { ["app"] = new JsonObject { ["build"] = value } };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(0, _scrubber.Scrub(context, "context"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
        Assert.Equal(value, context["app"]!["build"]!.GetValue<string>());
    }

    [Fact]
    public void Text_with_noncharacters_or_a_lone_surrogate_is_scrubbed_without_failing()
    {
        var properties = new JsonObject { ["a"] = "\uFEFFx\uFFFE\uFFFF \uFDD0 \uFF11", ["b"] = "x\uD800y \uFF11", ["c"] = "jane.doe\uFF20example.com \uFFFF" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal("\uFEFFx\uFFFE\uFFFF \uFDD0 \uFF11", properties["a"]!.GetValue<string>());
        Assert.Equal("x\uD800y \uFF11", properties["b"]!.GetValue<string>());
        Assert.Equal("[redacted] \uFFFF", properties["c"]!.GetValue<string>());
    }

    [Fact]
    public void A_key_spelling_an_e_mail_address_percent_encoded_is_removed()
    {
        var properties = new JsonObject { ["jane%2Edoe%40example%2Ecom"] = true, ["plan"] = "pro" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal("""{"plan":"pro"}""", properties.ToJsonString());
    }

    [Fact]
    public void A_percent_encoded_bearer_token_removes_its_value()
    {
        var properties = new JsonObject { ["note"] = "Authorization%3A%20Bearer%20abcdefghijklmnopqrstuvwx", ["plan"] = "pro" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal("""{"plan":"pro"}""", properties.ToJsonString());
    }

    [Fact]
    public void A_card_number_sent_as_a_json_number_is_removed_and_other_numbers_kept()
    {
        // 4000787030010 (about 4 TB in bytes) and 5000000000000009 (16 digits starting 50) pass the Luhn test but have
        // no card network's prefix and length.
        var properties = (JsonObject)JsonNode.Parse("""{"payment":4111111111111111,"cards":[5500000000000004,378282246310005,3],"count":4111111111111112,"ts":1700000000000,"ratio":0.5,"disk":4000787030010,"id":5000000000000009}""")!;

        Assert.Equal(3, _scrubber.Scrub(properties, "properties"));
        Assert.False(properties.ContainsKey("payment"));
        Assert.Equal("""{"cards":[3],"count":4111111111111112,"ts":1700000000000,"ratio":0.5,"disk":4000787030010,"id":5000000000000009}""", properties.ToJsonString());
    }

    [Fact]
    public void Segment_ids_of_the_user_in_traits_and_external_ids_are_removed()
    {
        var traits = new JsonObject { ["id"] = "raw-user-4711", ["plan"] = "pro" };
        var context = new JsonObject
        {
            ["traits"] = new JsonObject { ["id"] = "raw-user-4711" },
            ["externalIds"] = new JsonArray(new JsonObject { ["id"] = "raw-user-4711", ["type"] = "user_id", ["collection"] = "users" }),
            ["page"] = new JsonObject { ["id"] = "page-1" },
        };

        Assert.Equal(1, _scrubber.Scrub(traits, "traits"));
        Assert.Equal(2, _scrubber.Scrub(context, "context"));
        Assert.Equal("""{"plan":"pro"}""", traits.ToJsonString());
        Assert.Equal("""{"traits":{},"externalIds":[{"type":"user_id","collection":"users"}],"page":{"id":"page-1"}}""", context.ToJsonString());
    }

    [Fact]
    public void A_value_or_key_equal_to_a_raw_identifier_of_the_event_is_removed()
    {
        var properties = new JsonObject
        {
            ["owner"] = "raw-user-4711",
            ["list"] = new JsonArray("anon-9812", "keep"),
            ["raw-user-4711"] = true,
            ["plan"] = "pro",
        };

        Assert.Equal(3, _scrubber.Scrub(properties, "properties", ["raw-user-4711", "anon-9812"]));
        Assert.Equal("""{"list":["keep"],"plan":"pro"}""", properties.ToJsonString());
    }

    [Theory]
    [InlineData("aaaaaaaa-1111-bbbbbbbbbbbb", "[redacted]")]
    [InlineData("x aaaaaaaa-1111-bbbbbbbbbbbb y", "x [redacted] y")]
    [InlineData("/users/AAAAAAAA-1111/a", "/users/[redacted]/a")]
    [InlineData("?u=jane%20doe%2042&v=1", "?u=[redacted]&v=1")]
    [InlineData("?u=jane+doe+42&v=1", "?u=[redacted]&v=1")]
    [InlineData("?u=JANE%20DOE%2042", "?u=[redacted]")]
    public void Overlapping_differently_cased_and_percent_encoded_copies_of_raw_identifiers_leave_nothing_of_them(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["aaaaaaaa-1111", "1111-bbbbbbbbbbbb", "jane doe 42"]));

        Assert.Equal(expected, properties["note"]?.GetValue<string>() ?? "[redacted]");
    }

    [Theory]
    [InlineData("/users/john%2Esmith%2D42/exports", "/users/[redacted]/exports")]
    [InlineData("?u=JOHN%2esmith%2d42&v=1", "?u=[redacted]&v=1")]
    [InlineData("?u=john%252Esmith%252D42&v=1", "?u=[redacted]&v=1")]
    [InlineData("user \uFF4A\uFF4F\uFF48\uFF4E.smith-\uFF14\uFF12 left", "user [redacted] left")]
    [InlineData("?u=john%2Esmith%2D421", "?u=[redacted]1")]
    [InlineData("user john&#46;smith&#x2D;42 left", "user [redacted] left")]
    public void A_raw_identifier_copied_with_any_character_percent_encoded_or_in_fullwidth_forms_is_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value, ["john%2Esmith%2D42"] = 1, ["plan"] = "pro" };

        Assert.Equal(2, _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["john.smith-42"])));

        Assert.Equal(expected, properties["note"]!.GetValue<string>());
        Assert.Equal(["note", "plan"], properties.Select(p => p.Key));
    }

    [Theory]
    [InlineData("user john\u200B.smith-42 left", "user [redacted] left")]
    [InlineData("user john.smith\u00AD-42 left", "user [redacted] left")]
    public void A_raw_identifier_copied_with_invisible_characters_inside_is_redacted(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["john.smith-42"])));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Fact]
    public void Percent_encoded_text_without_a_raw_identifier_is_kept()
    {
        var properties = new JsonObject { ["note"] = "/users/john%2Esmith%2D43/exports" };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["john.smith-42"])));
        Assert.Equal("/users/john%2Esmith%2D43/exports", properties["note"]!.GetValue<string>());
    }

    [Fact]
    public void A_number_whose_digits_are_a_raw_identifier_is_removed()
    {
        var properties = new JsonObject { ["owner"] = 1234567890123L, ["ids"] = new JsonArray(1234567890123L, 7), ["bytes"] = 1234567890124L };

        Assert.Equal(2, _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["1234567890123"])));
        Assert.Equal("""{"ids":[7],"bytes":1234567890124}""", properties.ToJsonString());
    }

    [Fact]
    public void A_raw_identifier_inside_longer_text_or_a_key_is_redacted_and_an_allow_listed_value_holding_one_is_removed()
    {
        var properties = new JsonObject
        {
            ["note"] = "raw-user-4711 and more",
            ["url"] = "https://app.example.com/users/raw-user-4711/settings?from=anon-9812x",
            ["files"] = new JsonArray("/exports/raw-user-4711.csv", "/exports/all.csv"),
            ["clicks_raw-user-4711"] = 3,
            ["os"] = "Linux raw-user-4711",
            ["version"] = "2.0.1",
            ["plan"] = "pro",
        };

        Assert.Equal(5, _scrubber.Scrub(properties, "properties", PersonalDataScrubber.CopiesToFind(["raw-user-4711", "anon-9812"])));
        Assert.Equal(
            """{"note":"[redacted] and more","url":"https://app.example.com/users/[redacted]/settings?from=[redacted]x","files":["/exports/[redacted].csv","/exports/all.csv"],"version":"2.0.1","plan":"pro"}""",
            properties.ToJsonString());
    }

    [Theory]
    [InlineData("clientKeyboardLayout")]
    [InlineData("masterKeyboard")]
    [InlineData("access_keyboard_shortcuts")]
    [InlineData("pinned")]
    public void Keys_that_name_keyboards_not_keys_are_kept(string key)
    {
        var properties = new JsonObject { [key] = "de-CH", ["plan"] = "pro" };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal("de-CH", properties[key]!.GetValue<string>());
    }

    [Theory]
    [InlineData("build 1700000000000 done")]
    [InlineData("4111 1111 1111 1112")]
    [InlineData("ratio=0.5 mode: fast")]
    [InlineData("session token: expired at 10:20:30")]
    [InlineData("Password: Required")]
    [InlineData("refresh failed, token: expired.")]
    [InlineData("Login: failed after 3 attempts, password: locked")]
    [InlineData("panicked at core::panicking::panic in std::vector")]
    [InlineData("ActiveRecord::RecordNotFound at 12:30:45")]
    [InlineData("release 2026-12-02, build 1-2-3-4-5, id 123e4567-e89b-12d3-a456-426614174000")]
    [InlineData("backup 2026-12-02-10-30 done")]
    [InlineData("ran from 2026-1-2-3-4 to 12-2-3-4-5")]
    [InlineData("ec2-54-12-3 and ip-10-0-0-256 and ip-10-0-0-07")]
    [InlineData("supports 1.2-1.5 and 2-3-4")]
    [InlineData("libfoo.so.1.2.3.4.5 loaded, OID 1.3.6.1.4.1.311")]
    [InlineData("x 1.2.3.4.5 and 1.2.3.4.5.6 and a.1.2.3.4.5")]
    [InlineData("release v1.2.3.4.5 and V1.2.3.4.5")]
    [InlineData("port 192.168.1.256 and 1.2.3.1000 are no addresses")]
    [InlineData("q=release%201.2.3.4.5%20notes")]
    [InlineData("path=%2Fusr%2Flib%2Fstd%3A%3Avector%20ok")]
    [InlineData("100%25 done, 50%20items")]
    [InlineData("ssh://git.example.com/repo and mailto:help")]
    [InlineData("it's o'clock")]
    [InlineData("deployed to sk-prod-cluster-eu-west-1-node-7 and task-abcdefghijklmnopqrstuvwxyz")]
    [InlineData("pinned: true, keyboard: us")]
    [InlineData("client.keyboard: de-CH, clientKeyboardLayout=00000407")]
    [InlineData("masterKeyboard: on, accessKeyboardShortcuts=true")]
    [InlineData("request {\"password\":\"\",\"plan\":\"pro\"} and password: '' was refused")]
    public void Text_without_personal_fragments_is_kept_as_it_is(string value)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
    }

    /// <summary>
    /// Four numbers of 0 to 255 with leading zeros are an address (<c>192.168.001.015</c>), and nothing tells them from
    /// a time written with dots: such text is redacted, as losing a time costs less than keeping an address.
    /// </summary>
    [Theory]
    [InlineData("backup at 12.05.00.00 done", "backup at [redacted] done")]
    [InlineData("took 00.00.01.50", "took [redacted]")]
    public void Time_like_text_with_leading_zeros_is_redacted_as_an_address(string value, string expected)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(expected, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("8.5.4")]
    [InlineData("Chrome/86.0.4240.111")]
    [InlineData("10:20:30")]
    [InlineData("00:1a:2b:3c:4d:5e")]
    [InlineData("612465f87b2230debedfc6")]
    [InlineData("https://modeler.example.io/diagrams/a8c077ae?v=736,217,1")]
    public void Ordinary_values_are_kept(string value)
    {
        var properties = new JsonObject { ["detail"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["detail"]!.GetValue<string>());
    }

    [Fact]
    public void Allow_listed_version_keeps_a_four_part_version_that_looks_like_an_ipv4_address()
    {
        var properties = new JsonObject { ["version"] = "10.2.0.1", ["build"] = "10.2.0.1" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Equal("10.2.0.1", properties["version"]!.GetValue<string>());
        Assert.False(properties.ContainsKey("build"));
    }

    [Theory]
    [InlineData("version", "1.2.3.4")]
    [InlineData("appVersion", "v10.2.0.1")]
    [InlineData("version", "1.2.3.4-beta.2")]
    [InlineData("version", "1.2.3.4.5")]
    [InlineData("osVersion", "10.0.19045.3803")]
    [InlineData("version", "2026-12-02")]
    [InlineData("os", "Ubuntu 22.04.3 LTS")]
    [InlineData("os", "Linux 5.15.0-91-generic")]
    [InlineData("edition", "Enterprise 2026-12-02")]
    [InlineData("platform", "linux-x64")]
    public void Allow_listed_values_without_an_address_are_kept_whole(string key, string value)
    {
        var properties = new JsonObject { [key] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties[key]!.GetValue<string>());
    }

    [Theory]
    [InlineData("os", "Linux 203.0.113.77 5.15")]
    [InlineData("edition", "fe80::1234")]
    [InlineData("version", "2.0 (10.11.12.13)")]
    [InlineData("version", "build 10.11.12.13")]
    [InlineData("version", "1.2.3.4-rc.10.0.0.1")]
    [InlineData("version", "1.2.3.4-ip-10-0-0-1")]
    [InlineData("version", "1.2.3.4 (10.0.0.1)")]
    [InlineData("appVersion", "2001:db8::1")]
    [InlineData("os", "10.1.2.3")]
    [InlineData("edition", "192.168.001.015")]
    [InlineData("platform", "ip-10-0-0-7.ec2.internal")]
    [InlineData("locale", "en password=hunter2")]
    [InlineData("version", "ghp_0123456789abcdefghijABCDEFGHIJ012345")]
    public void Allow_listed_values_holding_an_address_or_a_secret_are_removed_whole(string key, string value)
    {
        var properties = new JsonObject { [key] = value, ["plan"] = "pro" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.False(properties.ContainsKey(key));
    }

    [Fact]
    public void Allow_listed_paths_lose_a_value_that_holds_an_ipv4_address_inside_text()
    {
        var context = new JsonObject
        {
            ["app"] = new JsonObject { ["name"] = "Billing on 10.1.2.3", ["version"] = "10.2.0.1", ["build"] = "1.2.3.4" },
            ["library"] = new JsonObject { ["name"] = "analytics-node x.10.0.0.17", ["version"] = "2.1.1" },
            ["os"] = new JsonObject { ["name"] = "10.1.2.3", ["version"] = "6.1.7601.0" },
        };

        Assert.Equal(3, _scrubber.Scrub(context, "context"));
        Assert.False(context["app"]!.AsObject().ContainsKey("name"));
        Assert.False(context["library"]!.AsObject().ContainsKey("name"));
        Assert.False(context["os"]!.AsObject().ContainsKey("name"));
        Assert.Equal("10.2.0.1", context["app"]!["version"]!.GetValue<string>());
        Assert.Equal("1.2.3.4", context["app"]!["build"]!.GetValue<string>());
        Assert.Equal("6.1.7601.0", context["os"]!["version"]!.GetValue<string>());
    }

    [Fact]
    public void Allow_listed_paths_keep_a_library_name_while_other_names_go()
    {
        var context = new JsonObject
        {
            ["library"] = new JsonObject { ["name"] = "analytics-java", ["version"] = "2.1.1" },
            ["traits"] = new JsonObject { ["name"] = "Jane Doe" },
        };

        Assert.Equal(1, _scrubber.Scrub(context, "context"));
        Assert.Equal("analytics-java", context["library"]!["name"]!.GetValue<string>());
        Assert.False(context["traits"]!.AsObject().ContainsKey("name"));
    }

    [Fact]
    public void Allow_listed_key_still_loses_an_email_value()
    {
        var properties = new JsonObject { ["os"] = "jane@example.com" };

        Assert.Equal(1, _scrubber.Scrub(properties, "properties"));
        Assert.Empty(properties);
    }

    [Fact]
    public void Configured_denied_names_are_removed_too()
    {
        var scrubber = new PersonalDataScrubber(new PrivacyOptions { DeniedPropertyNames = ["customerNumber"] });
        var properties = new JsonObject { ["customer_number"] = "C-1", ["plan"] = "pro" };

        Assert.Equal(1, scrubber.Scrub(properties, "properties"));
        Assert.False(properties.ContainsKey("customer_number"));
    }
}
