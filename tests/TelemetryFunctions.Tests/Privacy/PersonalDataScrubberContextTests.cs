using System.Text.Json.Nodes;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Privacy;

namespace TelemetryFunctions.Tests.Privacy;

/// <summary>
/// Fragments that are personal or secret only in some places: a number that is an address as a URL's host, a name
/// that gives a secret only as a URL's parameter, a path under <c>/Users/</c> that is a home directory only when it
/// goes on into one, and a name whose value is a secret only when it looks like one.
/// </summary>
public sealed class PersonalDataScrubberContextTests
{
    private readonly PersonalDataScrubber _scrubber = new(new PrivacyOptions());

    private string? ScrubbedNote(string value)
    {
        var properties = new JsonObject { ["note"] = value };
        _scrubber.Scrub(properties, "properties");
        return properties["note"]?.GetValue<string>();
    }

    [Theory]
    [InlineData("GET http://3232235777/admin failed", "GET http://[redacted]/admin failed")]
    [InlineData("http://3232235777:8080/", "http://[redacted]:8080/")]
    [InlineData("open http://0xC0A80001/x", "open http://[redacted]/x")]
    [InlineData("open http://0xc0.0xa8.0x00.0x01/x", "open http://[redacted]/x")]
    [InlineData("http://0300.0250.0.1/ refused", "http://[redacted]/ refused")]
    [InlineData("http://192.168.1/ refused", "http://[redacted]/ refused")]
    [InlineData("https://admin:pw4711@0xc0a80001/", "https://[redacted]@[redacted]/")]
    [InlineData("open http%3A%2F%2F3232235777%2Fx", "open http%3A%2F%2F[redacted]%2Fx")]
    [InlineData("ping 0xc0.0xa8.0x00.0x01 failed", "ping [redacted] failed")]
    [InlineData("from 192.0xA8.0.1 today", "from [redacted] today")]
    public void An_ipv4_address_as_a_url_host_in_any_notation_or_dotted_in_hexadecimal_is_redacted(string value, string expected) =>
        Assert.Equal(expected, ScrubbedNote(value));

    [Theory]
    [InlineData("HRESULT 0x80070005, hash 0xdeadbeef, took 3232235777 ms")]
    [InlineData("commit 3f9a2c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f at https://example.com/v1.2.3")]
    [InlineData("http://localhost:8080/ and http://v1.example/ and https://api2.example.com/1234567")]
    [InlineData("flags 0x1.0x2.0x3.0x4.0x5 and svn://build7/trunk and https://1.2.3.4.5.example/")]
    public void Numbers_outside_a_url_host_and_hexadecimal_outside_a_dotted_quad_are_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("0xc0.0xa8.0x00.0x01")]
    [InlineData("0xC0.0xA8.0.1:8080")]
    public void Identifiers_that_are_ipv4_addresses_dotted_in_hexadecimal_are_recognised(string id) =>
        Assert.True(PersonalDataScrubber.LooksLikeIpAddress(id));

    [Theory]
    [InlineData("https://app.example.com/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj", "https://app.example.com/cb?code=[redacted]&state=af0ifjsldkj")]
    [InlineData("https://app.example.com/cb#state=x&session_state=5f0c8a7e.abc", "https://app.example.com/cb#state=x&session_state=[redacted]")]
    [InlineData("POST https://sp.example.com/acs?SAMLResponse=PHNhbWxwOlJlc3BvbnNl&RelayState=home", "POST https://sp.example.com/acs?SAMLResponse=[redacted]&RelayState=home")]
    [InlineData("https://cas.example.com/validate?service=x&ticket=ST-1856339-aA5Yuvrxzpv8Tau1cYQ7", "https://cas.example.com/validate?service=x&ticket=[redacted]")]
    [InlineData("https://app.example.com/login?next=%2Fcb%3Fcode%3Dabc123def", "https://app.example.com/login?next=%2Fcb%3Fcode%3D[redacted]")]
    [InlineData("https://app.example.com/cb?oauth_verifier=abc123&x=1", "https://app.example.com/cb?oauth_verifier=[redacted]&x=1")]
    [InlineData("<a href=\"/cb?state=x&amp;code=abc123def\">", "<a href=\"/cb?state=x&amp;code=[redacted]\">")]
    public void Authorization_codes_and_session_values_in_a_url_query_or_fragment_are_redacted(string value, string expected) =>
        Assert.Equal(expected, ScrubbedNote(value));

    [Theory]
    [InlineData("error code=E1234, exit code: 0, code=42")]
    [InlineData("support ticket=4711 opened, ticket: 4712")]
    [InlineData("https://example.com/help?topic=code&state=af0ifjsldkj&page=2")]
    public void Codes_and_tickets_outside_a_url_query_are_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value, ["code"] = "E1234", ["ticket"] = "4711" };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
        Assert.Equal("E1234", properties["code"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/Users/jane/Library/Logs/app.log", true)]
    [InlineData("Opened /Users/jane/Documents/report.pages", true)]
    [InlineData("/Users/jane/.zshrc", true)]
    [InlineData("Opened file:///Users/jane/notes.txt", true)]
    [InlineData("Read %2FUsers%2Fjane%2FDesktop%2Fa.txt", true)]
    [InlineData("/callback?code=abc123def", true)]
    [InlineData("/Users/settings", false)]
    [InlineData("GET /users/{id}", false)]
    [InlineData("/Users/Edit/42", false)]
    [InlineData("/Users/{id}/Documents", false)]
    [InlineData("/Users/Shared/Library", false)]
    [InlineData("/Users/jane/profile", false)]
    [InlineData("Error code=E1234", false)]
    public void An_event_name_with_a_macos_home_directory_or_a_url_code_is_personal_and_a_route_under_users_is_not(string name, bool personal) =>
        Assert.Equal(personal, _scrubber.IsPersonalInEventName(name));

    [Theory]
    [InlineData("GPIO pin: 17 is busy")]
    [InlineData("Erlang/OTP: 26 [erts-14.2]")]
    [InlineData("Erlang/OTP: 26.2.1")]
    [InlineData("child killed by sig=9, sig: SIGKILL")]
    [InlineData("{\"pin\": 17, \"sig\": 15}")]
    [InlineData("Unknown option 'token': use --help")]
    [InlineData("Unknown option \"password\": did you mean \"passwd\"?")]
    [InlineData("Missing parameter 'secret': see the setup guide")]
    public void Small_numbers_after_pin_otp_or_sig_and_a_quoted_name_in_a_sentence_are_kept(string value)
    {
        var properties = new JsonObject { ["note"] = value };

        Assert.Equal(0, _scrubber.Scrub(properties, "properties"));
        Assert.Equal(value, properties["note"]!.GetValue<string>());
        Assert.False(_scrubber.IsPersonalInEventName(value));
    }

    [Theory]
    [InlineData("pin: 4821", "pin: [redacted]")]
    [InlineData("otp=123456 rejected", "otp=[redacted] rejected")]
    [InlineData("GET /b?sig=Xk3mQ9pL2vB8nR4t%3D", "GET /b?sig=[redacted]")]
    [InlineData("sig=65 and sig=09", "sig=[redacted] and sig=[redacted]")]
    [InlineData("{\"pin\": 4821, \"x\": 1}", "{\"pin\": [redacted], \"x\": 1}")]
    [InlineData("Invalid value for 'password': hunter2", "Invalid value for 'password': [redacted]")]
    [InlineData("Invalid value for 'password': correcthorse", "Invalid value for 'password': [redacted]")]
    [InlineData("Invalid value for 'password': correct horse battery", "Invalid value for 'password': [redacted] horse battery")]
    [InlineData("login failed 'token': abc def", "login failed 'token': [redacted] def")]
    [InlineData("settings {'api_token': 'abc123def'}", "settings {'api_token': '[redacted]'}")]
    public void Values_of_pin_otp_sig_and_quoted_names_that_may_be_secrets_are_still_redacted(string value, string expected) =>
        Assert.Equal(expected, ScrubbedNote(value));
}
