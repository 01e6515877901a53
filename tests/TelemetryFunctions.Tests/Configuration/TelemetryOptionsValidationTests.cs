using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Tests.Configuration;

public sealed class TelemetryOptionsValidationTests
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["Telemetry:Storage:ConnectionString"] = "UseDevelopmentStorage=true",
        ["Telemetry:WriteKeys:0:Key"] = "a-write-key-1",
        ["Telemetry:WriteKeys:0:Source"] = "server",
        ["Telemetry:Privacy:PseudonymizationKey"] = new string('k', 40),
    };

    private static string? ValidationError(Dictionary<string, string?> overrides)
    {
        var settings = new Dictionary<string, string?>(Valid);
        foreach (var (key, value) in overrides)
        {
            settings[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddTelemetryFunctions(configuration).BuildServiceProvider();
        try
        {
            _ = services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
            return null;
        }
        catch (OptionsValidationException e)
        {
            return e.Message;
        }
    }

    [Fact]
    public void Valid_settings_pass() => Assert.Null(ValidationError([]));

    [Theory]
    [InlineData("Telemetry:Privacy:PseudonymizationKey", "short", "at least 32 characters")]
    [InlineData("Telemetry:Privacy:PseudonymizationKey", "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/pseudonymization-key/)", "unresolved Key Vault reference")]
    [InlineData("Telemetry:WriteKeys:0:Key", "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/write-key/)", "unresolved Key Vault reference")]
    [InlineData("Telemetry:AdminKey", "@Microsoft.KeyVault(VaultName=kv-abc;SecretName=admin-key)", "unresolved Key Vault reference")]
    [InlineData("Telemetry:WriteKeys:0:Source", "Server Team!", "source name")]
    [InlineData("Telemetry:WriteKeys:0:Revoked", "true", "not revoked")]
    [InlineData("Telemetry:Storage:ConnectionString", "", "Telemetry__Storage__ConnectionString")]
    [InlineData("Telemetry:ReportingTimeZone", "Mars/Olympus", "not a time zone")]
    [InlineData("Telemetry:Ingestion:MaxBatchEvents", "0", "MaxBatchEvents")]
    public void A_bad_setting_stops_start_up_with_a_message_naming_it(string key, string value, string expected)
    {
        var error = ValidationError(new() { [key] = value });

        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("Europe/Berlin")]
    [InlineData("W. Europe Standard Time")]
    public void The_reporting_time_zone_is_an_iana_or_a_windows_id(string zone)
    {
        Assert.Null(ValidationError(new() { ["Telemetry:ReportingTimeZone"] = zone }));
        Assert.True(TelemetryOptions.TryFindTimeZone(zone, out var found));
        Assert.Equal(
            (TimeSpan.FromHours(1), TimeSpan.FromHours(2)),
            (found.GetUtcOffset(new DateTimeOffset(2026, 1, 15, 12, 0, 0, TimeSpan.Zero)), found.GetUtcOffset(new DateTimeOffset(2026, 7, 15, 12, 0, 0, TimeSpan.Zero))));
    }

    [Theory]
    [InlineData("30", "30.00:00:00", "400", "Activity:RawEventRetentionDays (30) must be at least 61")]
    [InlineData("60", "30.00:00:00", "400", "Activity:RawEventRetentionDays (60) must be at least 61")]
    [InlineData("90", "60.00:00:00", "400", "Activity:RawEventRetentionDays (90) must be at least 91")]
    [InlineData("90", "30.00:00:00", "59", "Activity:MaxCatchUpDays (59) must be at least 60")]
    public void Retention_and_catch_up_too_short_for_the_accepted_late_events_stop_start_up(string retentionDays, string maxEventAge, string catchUpDays, string expected)
    {
        var error = ValidationError(new()
        {
            ["Telemetry:Activity:RawEventRetentionDays"] = retentionDays,
            ["Telemetry:Ingestion:MaxEventAge"] = maxEventAge,
            ["Telemetry:Activity:MaxCatchUpDays"] = catchUpDays,
        });

        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("61", "30.00:00:00", "60")]
    [InlineData("35", "3.00:00:00", "33")]
    public void Retention_and_catch_up_that_cover_the_accepted_late_events_pass(string retentionDays, string maxEventAge, string catchUpDays) =>
        Assert.Null(ValidationError(new()
        {
            ["Telemetry:Activity:RawEventRetentionDays"] = retentionDays,
            ["Telemetry:Ingestion:MaxEventAge"] = maxEventAge,
            ["Telemetry:Activity:MaxCatchUpDays"] = catchUpDays,
        }));

    [Fact]
    public void A_table_prefix_is_rejected_with_service_uris_because_the_blob_trigger_watches_the_unprefixed_container()
    {
        var azure = new Dictionary<string, string?>
        {
            ["Telemetry:Storage:ConnectionString"] = "",
            ["Telemetry:Storage:TableServiceUri"] = "https://st.table.core.windows.net/",
            ["Telemetry:Storage:BlobServiceUri"] = "https://st.blob.core.windows.net/",
        };

        Assert.Null(ValidationError(azure));
        var error = ValidationError(new(azure) { ["Telemetry:Storage:TablePrefix"] = "shared" });
        Assert.NotNull(error);
        Assert.Contains("Telemetry__Storage__TablePrefix must be empty", error, StringComparison.Ordinal);
        Assert.Null(ValidationError(new() { ["Telemetry:Storage:TablePrefix"] = "shared" }));
    }

    private static TelemetryOptions Bound(Dictionary<string, string?> overrides)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>(Valid).Concat(overrides)).Build();
        return new ServiceCollection().AddTelemetryFunctions(configuration).BuildServiceProvider()
            .GetRequiredService<IOptions<TelemetryOptions>>().Value;
    }

    [Fact]
    public void A_configured_list_replaces_its_defaults_so_an_operator_can_narrow_it()
    {
        var options = Bound(new()
        {
            ["Telemetry:Privacy:AllowedPropertyNames:0"] = "os",
            ["Telemetry:Privacy:AllowedPropertyNames:1"] = "version",
            ["Telemetry:Events:InstanceIdPaths:0"] = "properties.serverId",
            ["Telemetry:Events:HealthEvents:0"] = "Cluster Health",
        });

        Assert.Equal(["os", "version"], options.Privacy.AllowedPropertyNames);
        Assert.Equal(["properties.serverId"], options.Events.InstanceIdPaths);
        Assert.Equal(["Cluster Health"], options.Events.HealthEvents);
    }

    [Fact]
    public void A_list_that_is_not_configured_keeps_its_defaults()
    {
        var options = Bound([]);
        var defaults = new TelemetryOptions();

        Assert.Equal(defaults.Privacy.AllowedPropertyNames, options.Privacy.AllowedPropertyNames);
        Assert.Equal(defaults.Events.InstanceIdPaths, options.Events.InstanceIdPaths);
        Assert.Equal(defaults.Events.ErrorPaths, options.Events.ErrorPaths);
        Assert.Contains("timezone", options.Privacy.AllowedPropertyNames);
    }
}
