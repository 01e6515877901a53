using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.Text;
using TelemetryFunctions.UsageReports;
using static TelemetryFunctions.Tests.UsageReports.UsageReportSamples;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>What docs/ publishes is true: the example is valid and signed, the schema describes what the service accepts, the shell recipe signs.</summary>
public sealed class UsageReportDocsTests
{
    private static readonly string Docs = Path.Combine(RepositoryPaths.Root, "docs");

    private static JsonElement Schema() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Docs, "usage-report.schema.json"))).RootElement;

    /// <summary>The local host's own configuration (src/TelemetryFunctions.LocalHost/appsettings.json), with its development customer.</summary>
    private static UsageReportOptions LocalHostOptions()
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.LocalHost", "appsettings.json"))
            .Build();
        return configuration.GetSection(UsageReportOptions.SectionName).Get<UsageReportOptions>()!;
    }

    private static Task<UsageReportReadResult> ReadAsync(byte[] content, UsageReportOptions options, string customer) =>
        new UsageReportReader(options, new FakeTimeProvider(Now))
            .ReadAsync(new MemoryStream(content), options.FindCustomer(customer)!, TestContext.Current.CancellationToken);

    [Fact]
    public async Task The_published_example_follows_the_schema_and_is_signed_with_the_local_hosts_development_secret()
    {
        var example = File.ReadAllBytes(Path.Combine(Docs, "usage-report.example.json"));

        var errors = SchemaErrors(JsonDocument.Parse(example).RootElement);
        var result = await ReadAsync(example, LocalHostOptions(), "dev-customer");

        Assert.Empty(errors);
        Assert.Empty(result.Reasons);
        Assert.Equal(1250, result.Report!.Metrics.Single(m => m.Name == "process-instances").Value);
    }

    /// <summary>The sample report moved to another period, with a metric that has no breakdown days to fall outside it.</summary>
    private static JsonObject Period(JsonObject report, string start, string end)
    {
        report["period"] = new JsonObject { ["start"] = start, ["end"] = end };
        report["metrics"] = new JsonArray(Metric("process-instances", 1));
        return report;
    }

    public static TheoryData<string, Func<JsonObject, JsonObject>> Breaks() => new()
    {
        { "negative count", r => { r["metrics"]![0]!["value"] = -1; return r; } },
        { "unknown property", r => { r["note"] = "x"; return r; } },
        { "missing period", r => { r.Remove("period"); return r; } },
        { "report id with a slash", r => { r["reportId"] = "a/b"; return r; } },
        { "timestamp without offset", r => { r["generatedAt"] = "2026-02-01T00:05:00"; return r; } },
        { "period in year 1", r => Period(r, "0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z") },
        { "period in 1999", r => Period(r, "1999-12-01T00:00:00Z", "2000-01-01T00:00:00Z") },
        { "fraction", r => { r["metrics"]![0]!["value"] = 1.5; return r; } },
        { "period end finer than a millisecond", r => Period(r, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00.0000001Z") },
        { "period start finer than a millisecond", r => Period(r, "2026-01-01T00:00:00.0001Z", "2026-02-01T00:00:00Z") },
        { "schema version 2", r => { r["schemaVersion"] = 2; return r; } },
        { "no metrics", r => { r["metrics"] = new JsonArray(); return r; } },
        { "control character", r => { r["installationId"] = "a\u0001b"; return r; } },
        { "metric name with capitals", r => { r["metrics"]![0]!["name"] = "Process-Instances"; return r; } },
        { "installation id with a trailing space", r => { r["installationId"] = "inst-1 "; return r; } },
        { "installation id with a leading no-break space", r => { r["installationId"] = "\u00A0inst-1"; return r; } },
        { "installation id with a zero-width space inside", r => { r["installationId"] = "inst\u200B-1"; return r; } },
        { "installation id with a soft hyphen", r => { r["installationId"] = "in\u00ADst-1"; return r; } },
        { "installation id with a variation selector", r => { r["installationId"] = "inst-1\uFE0F"; return r; } },
        { "installation id with a tag character", r => { r["installationId"] = "inst-1\U000E0031"; return r; } },
        { "installation id with a C1 control", r => { r["installationId"] = "inst\u0085-1"; return r; } },
        { "time without seconds", r => { r["generatedAt"] = "2026-02-01T00:10+00:00"; return r; } },
        { "time with a space before its offset", r => { r["generatedAt"] = "2026-02-01T00:10:00 Z"; return r; } },
        { "period end with a comma before its fraction", r => Period(r, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00,000Z") },
        { "offset beyond 14 hours", r => { r["generatedAt"] = "2026-02-02T15:10:00+15:00"; return r; } },
        { "leap second", r => { r["generatedAt"] = "2026-02-01T23:59:60Z"; return r; } },
        { "product name of only a byte order mark", r => { r["product"]!["name"] = "\uFEFF"; return r; } },
        { "cluster name of 257 characters outside the Basic Multilingual Plane", r => { r["metrics"]![0]!["breakdown"]![0]!["cluster"] = string.Concat(Enumerable.Repeat("\U0001F600", 257)); return r; } },
    };

    public static TheoryData<string, Func<JsonObject, JsonObject>> Follows() => new()
    {
        { "product name of 256 characters outside the Basic Multilingual Plane", r => { r["product"]!["name"] = string.Concat(Enumerable.Repeat("\U0001F600", 256)); return r; } },
        { "installation id of 256 characters outside the Basic Multilingual Plane", r => { r["installationId"] = string.Concat(Enumerable.Repeat("\U0001D49C", 256)); return r; } },
        { "cluster name of a next-line character (U+0085), not white space in JSON Schema", r => { r["metrics"]![0]!["breakdown"]![0]!["cluster"] = "\u0085"; return r; } },
        { "times with a lower-case t and z", r => { r["generatedAt"] = "2026-02-01t00:10:00z"; return r; } },
        { "time with an offset of 14 hours", r => { r["generatedAt"] = "2026-02-01T14:10:00+14:00"; return r; } },
        { "period end with an offset of -00:00 and zeros past the millisecond", r => Period(r, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00.000000000-00:00") },
        { "count written with a zero fraction", r => { r["metrics"]![0]!["value"] = JsonNode.Parse("1200.0"); return r; } },
        { "count written with an exponent", r => { r["metrics"]![0]!["value"] = JsonNode.Parse("1.2e3"); return r; } },
        { "schema version written with a zero fraction", r => { r["schemaVersion"] = JsonNode.Parse("1.0"); return r; } },
    };

    [Theory]
    [MemberData(nameof(Follows))]
    public async Task The_schema_and_the_service_both_accept_what_follows_the_format(string what, Func<JsonObject, JsonObject> change)
    {
        var content = Signed(change(Report()));

        var errors = SchemaErrors(JsonDocument.Parse(content).RootElement);
        var result = await ReadAsync(content, new UsageReportOptions { Customers = [new() { Id = Customer, SigningSecret = Secret, ReportKey = ReportKey }] }, Customer);

        Assert.True(errors.Count == 0, $"{what}: the schema refuses it: {string.Join("; ", errors)}");
        Assert.True(result.Report is not null, $"{what}: the service refuses it: {string.Join(" ", result.Reasons)}");
    }

    [Theory]
    [MemberData(nameof(Breaks))]
    public async Task The_schema_and_the_service_both_refuse_what_breaks_the_format(string what, Func<JsonObject, JsonObject> change)
    {
        var content = Signed(change(Report()));

        var errors = SchemaErrors(JsonDocument.Parse(content).RootElement);
        var result = await ReadAsync(content, new UsageReportOptions { Customers = [new() { Id = Customer, SigningSecret = Secret, ReportKey = ReportKey }] }, Customer);

        Assert.True(errors.Count > 0, $"{what}: the schema accepts it");
        Assert.True(result.Report is null, $"{what}: the service accepts it");
    }

    [Fact]
    public void The_schema_refuses_exactly_the_invisible_characters_the_service_refuses_in_an_installation_id()
    {
        var report = Schema().GetProperty("$defs").GetProperty("report").GetProperty("properties").GetProperty("installationId");
        var text = new Regex(Schema().GetProperty("$defs").GetProperty("text").GetProperty("pattern").GetString()!, RegexOptions.None, TimeSpan.FromSeconds(1));
        var installation = new Regex(report.GetProperty("pattern").GetString()!, RegexOptions.None, TimeSpan.FromSeconds(1));
        var disagreements = new List<string>();

        for (var value = 0; value <= 0x10FFFF; value++)
        {
            if (!Rune.IsValid(value))
            {
                continue;
            }

            var rune = new Rune(value);
            var id = $"a{rune}b";
            var schemaRefuses = !text.IsMatch(id) || !installation.IsMatch(id);
            var serviceRefuses = value is < 0x20 or 0x7F || InvisibleText.IsInvisible(rune);
            if (schemaRefuses != serviceRefuses)
            {
                disagreements.Add($"U+{value:X4}: the schema {(schemaRefuses ? "refuses" : "accepts")} it, the service {(serviceRefuses ? "refuses" : "accepts")} it");
            }
        }

        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(50)));
    }

    [Fact]
    public async Task The_sample_report_follows_the_schema()
    {
        Assert.Empty(SchemaErrors(JsonDocument.Parse(Signed(Report())).RootElement));
        Assert.Empty((await ReadAsync(Signed(Report()), new UsageReportOptions { Customers = [new() { Id = Customer, SigningSecret = Secret, ReportKey = ReportKey }] }, Customer)).Reasons);
    }

    [Fact]
    public async Task The_shell_signing_script_signs_what_the_service_verifies()
    {
        Assert.SkipUnless(ExternalCommand.IsOnPath("bash") && ExternalCommand.IsOnPath("openssl"), "bash and openssl are needed to run scripts/sign-usage-report.sh.");
        var file = Path.Combine(Path.GetTempPath(), $"usage-report-{Guid.NewGuid():N}.json");
        var pretty = "\n  " + Report().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n\n";
        await File.WriteAllTextAsync(file, pretty, TestContext.Current.CancellationToken);
        try
        {
            var run = await ExternalCommand.RunAsync(
                "bash",
                [Path.Combine(RepositoryPaths.Root, "scripts", "sign-usage-report.sh"), file],
                RepositoryPaths.Root,
                new Dictionary<string, string?> { ["USAGE_REPORT_SECRET"] = Secret },
                cancellationToken: TestContext.Current.CancellationToken);
            Assert.True(run.ExitCode == 0, run.Describe());

            var signed = Encoding.UTF8.GetBytes(run.StandardOutput);
            var result = await ReadAsync(signed, new UsageReportOptions { Customers = [new() { Id = Customer, SigningSecret = Secret, ReportKey = ReportKey }] }, Customer);

            Assert.Empty(result.Reasons);
            var embedded = Encoding.UTF8.GetBytes(pretty.Trim());
            Assert.Equal(Hmac(embedded, Secret), JsonDocument.Parse(signed).RootElement.GetProperty("signature").GetProperty("value").GetString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>ECMAScript's <c>\s</c> (JSON Schema's regular expressions are ECMAScript's), spelled out for .NET, whose <c>\s</c> differs.</summary>
    private const string EcmaScriptSpaces = @"\t\n\v\f\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF";

    /// <summary>
    /// A pattern of the schema as .NET reads an ECMAScript one: <c>\s</c> (used only inside character classes there) as
    /// ECMAScript's white space, and a final <c>$</c> as the very end (.NET's <c>$</c> also matches before a final newline).
    /// </summary>
    private static string EcmaScriptPattern(string pattern)
    {
        var translated = pattern.Replace(@"\s", EcmaScriptSpaces, StringComparison.Ordinal);
        return translated.EndsWith('$') ? translated[..^1] + @"\z" : translated;
    }

    /// <summary>Checks a document against docs/usage-report.schema.json (the keywords that schema uses, with JSON Schema's meaning).</summary>
    private static List<string> SchemaErrors(JsonElement document)
    {
        var root = Schema();
        var errors = new List<string>();
        Validate(document, root, root, "$", errors);
        return errors;
    }

    private static void Validate(JsonElement value, JsonElement schema, JsonElement root, string path, List<string> errors)
    {
        if (schema.TryGetProperty("$ref", out var reference))
        {
            var target = root;
            foreach (var part in reference.GetString()!.TrimStart('#', '/').Split('/'))
            {
                target = target.GetProperty(part);
            }

            Validate(value, target, root, path, errors);
        }

        if (schema.TryGetProperty("const", out var constant) && !JsonElement.DeepEquals(value, constant))
        {
            errors.Add($"{path}: must be {constant}");
        }

        if (schema.TryGetProperty("type", out var type))
        {
            var matches = type.GetString() switch
            {
                "object" => value.ValueKind == JsonValueKind.Object,
                "array" => value.ValueKind == JsonValueKind.Array,
                "string" => value.ValueKind == JsonValueKind.String,
                // JSON Schema's integer is a number with no fractional part, however it is written (1.0 and 1e3 are integers).
                "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var number) && number == decimal.Truncate(number),
                _ => throw new InvalidOperationException($"The schema uses type {type}, which this check does not know."),
            };
            if (!matches)
            {
                errors.Add($"{path}: must be of type {type.GetString()}");
                return;
            }
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var required in schema.TryGetProperty("required", out var r) ? r.EnumerateArray() : default)
                {
                    if (!value.TryGetProperty(required.GetString()!, out _))
                    {
                        errors.Add($"{path}: missing {required.GetString()}");
                    }
                }

                var properties = schema.TryGetProperty("properties", out var p) ? p : default;
                foreach (var property in value.EnumerateObject())
                {
                    if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(property.Name, out var propertySchema))
                    {
                        Validate(property.Value, propertySchema, root, $"{path}.{property.Name}", errors);
                    }
                    else if (schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False)
                    {
                        errors.Add($"{path}: {property.Name} is not allowed");
                    }
                }

                break;

            case JsonValueKind.Array:
                var count = value.GetArrayLength();
                if (schema.TryGetProperty("minItems", out var minItems) && count < minItems.GetInt32())
                {
                    errors.Add($"{path}: fewer than {minItems} items");
                }

                if (schema.TryGetProperty("maxItems", out var maxItems) && count > maxItems.GetInt32())
                {
                    errors.Add($"{path}: more than {maxItems} items");
                }

                if (schema.TryGetProperty("items", out var items))
                {
                    var i = 0;
                    foreach (var item in value.EnumerateArray())
                    {
                        Validate(item, items, root, $"{path}[{i++}]", errors);
                    }
                }

                break;

            case JsonValueKind.String:
                var text = value.GetString()!;
                var characters = text.EnumerateRunes().Count();
                if ((schema.TryGetProperty("minLength", out var minLength) && characters < minLength.GetInt32())
                    || (schema.TryGetProperty("maxLength", out var maxLength) && characters > maxLength.GetInt32())
                    || (schema.TryGetProperty("pattern", out var pattern) && !Regex.IsMatch(text, EcmaScriptPattern(pattern.GetString()!), RegexOptions.None, TimeSpan.FromSeconds(1))))
                {
                    errors.Add($"{path}: '{text}' does not match the schema");
                }

                break;

            case JsonValueKind.Number:
                var number = value.GetDecimal();
                if ((schema.TryGetProperty("minimum", out var minimum) && number < minimum.GetDecimal())
                    || (schema.TryGetProperty("maximum", out var maximum) && number > maximum.GetDecimal()))
                {
                    errors.Add($"{path}: {number} is out of range");
                }

                break;
        }
    }
}
