using System.ComponentModel.DataAnnotations;

namespace TelemetryFunctions.Configuration;

/// <summary>
/// Root options, bound from the <c>Telemetry</c> configuration section (app settings <c>Telemetry__...</c>).
/// </summary>
public sealed class TelemetryOptions : IValidatableObject
{
    public const string SectionName = "Telemetry";

    [Required]
    public StorageOptions Storage { get; set; } = new();

    [Required]
    public IngestionOptions Ingestion { get; set; } = new();

    [Required]
    public PrivacyOptions Privacy { get; set; } = new();

    [Required]
    public EventNamesOptions Events { get; set; } = new();

    [Required]
    public ActivityOptions Activity { get; set; } = new();

    /// <summary>Keys that authenticate senders. Each names the source its events are attributed to.</summary>
    public List<WriteKeyOptions> WriteKeys { get; set; } = [];

    /// <summary>The key for the admin and read API (<c>x-functions-key</c> header or <c>code</c> query parameter). In Azure, function keys do this.</summary>
    [MinLength(8, ErrorMessage = "AdminKey must be at least 8 characters when set.")]
    public string? AdminKey { get; set; }

    /// <summary>The time zone whose calendar days bound "a day" for activity and reports: an IANA id (such as Europe/Berlin) or a Windows id (such as W. Europe Standard Time), which ICU maps to its IANA zone.</summary>
    [Required]
    public string ReportingTimeZone { get; set; } = "UTC";

    /// <summary>
    /// An event accepted up to <c>Ingestion:MaxEventAge</c> late marks a day the rollup must recompute with its whole
    /// MAU window (the day and the 29 before it), and the rollup recomputes only days whose window is still kept: raw
    /// events and activity must be kept for the late days plus that window plus one (the reporting day may start a
    /// day before the UTC one), and the nightly catch-up must reach back as far as events arrive late.
    /// </summary>
    private void CheckLateEventsCanBeRecomputed(List<ValidationResult> results)
    {
        var lateDays = (int)Math.Ceiling(Ingestion.MaxEventAge.TotalDays);
        var retentionNeeded = lateDays + global::TelemetryFunctions.Activity.DailyRollup.MauWindowDays + 1;
        if (Activity.RawEventRetentionDays < retentionNeeded)
        {
            results.Add(new ValidationResult(
                $"Activity:RawEventRetentionDays ({Activity.RawEventRetentionDays}) must be at least {retentionNeeded}: events are accepted up to {lateDays} days late (Ingestion:MaxEventAge), and the day such an event lands on can only be recomputed while its 30-day MAU window is kept. Keep raw events longer, or accept late events for fewer days.",
                [$"{nameof(Activity)}.{nameof(ActivityOptions.RawEventRetentionDays)}"]));
        }

        var catchUpNeeded = lateDays + global::TelemetryFunctions.Activity.DailyRollup.MauWindowDays;
        if (Activity.MaxCatchUpDays < catchUpNeeded)
        {
            results.Add(new ValidationResult(
                $"Activity:MaxCatchUpDays ({Activity.MaxCatchUpDays}) must be at least {catchUpNeeded}: the nightly rollup must reach back to the days that events accepted up to {lateDays} days late (Ingestion:MaxEventAge) land on, and the 30 days whose WAU/MAU include them.",
                [$"{nameof(Activity)}.{nameof(ActivityOptions.MaxCatchUpDays)}"]));
        }
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Collect(Storage, nameof(Storage), results);
        Collect(Ingestion, nameof(Ingestion), results);
        Collect(Privacy, nameof(Privacy), results);
        Collect(Events, nameof(Events), results);
        Collect(Activity, nameof(Activity), results);

        if (!WriteKeys.Any(k => !k.Revoked))
        {
            results.Add(new ValidationResult(
                "At least one write key that is not revoked must be configured (Telemetry__WriteKeys__0__Key and Telemetry__WriteKeys__0__Source).",
                [nameof(WriteKeys)]));
        }

        for (var i = 0; i < WriteKeys.Count; i++)
        {
            Collect(WriteKeys[i], $"{nameof(WriteKeys)}[{i}]", results);
        }

        var duplicateKey = WriteKeys.GroupBy(k => k.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicateKey is not null)
        {
            results.Add(new ValidationResult("The same write key is configured more than once.", [nameof(WriteKeys)]));
        }

        CheckLateEventsCanBeRecomputed(results);

        // App Service hands the app the reference text itself when it cannot resolve a Key Vault reference; that
        // text is public knowledge (it names the vault), so it must never pass for a secret.
        var unresolved = new List<string>();
        if (IsUnresolvedKeyVaultReference(Privacy.PseudonymizationKey))
        {
            unresolved.Add("Privacy.PseudonymizationKey");
        }

        if (IsUnresolvedKeyVaultReference(AdminKey))
        {
            unresolved.Add(nameof(AdminKey));
        }

        unresolved.AddRange(WriteKeys.Select((k, i) => (k, i)).Where(x => IsUnresolvedKeyVaultReference(x.k.Key)).Select(x => $"WriteKeys[{x.i}].Key"));
        foreach (var name in unresolved)
        {
            results.Add(new ValidationResult(
                $"{name} is an unresolved Key Vault reference: check the app's identity has 'Key Vault Secrets User' on the vault and the secret exists.",
                [name]));
        }

        if (!TryFindTimeZone(ReportingTimeZone, out _))
        {
            results.Add(new ValidationResult(
                $"ReportingTimeZone '{ReportingTimeZone}' is not a time zone known to this machine (use an IANA id such as 'Europe/Berlin' or 'UTC', or a Windows id such as 'W. Europe Standard Time').",
                [nameof(ReportingTimeZone)]));
        }

        return results;
    }

    internal static bool IsUnresolvedKeyVaultReference(string? value) =>
        value is not null && value.TrimStart().StartsWith("@Microsoft.KeyVault(", StringComparison.OrdinalIgnoreCase);

    internal static bool TryFindTimeZone(string id, out TimeZoneInfo zone)
    {
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            return true;
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException)
        {
            zone = TimeZoneInfo.Utc;
            return false;
        }
    }

    private static void Collect(object section, string prefix, List<ValidationResult> results)
    {
        var inner = new List<ValidationResult>();
        Validator.TryValidateObject(section, new ValidationContext(section), inner, validateAllProperties: true);
        if (section is IValidatableObject validatable)
        {
            inner.AddRange(validatable.Validate(new ValidationContext(section)));
        }

        foreach (var result in inner)
        {
            results.Add(new ValidationResult(
                result.ErrorMessage,
                result.MemberNames.Select(m => $"{prefix}.{m}").DefaultIfEmpty(prefix).ToArray()));
        }
    }
}

public sealed class WriteKeyOptions
{
    [Required]
    [MinLength(8, ErrorMessage = "A write key must be at least 8 characters long.")]
    public string Key { get; set; } = "";

    /// <summary>The source the key's events are attributed to: installer, server, client...</summary>
    [Required]
    [RegularExpression("^[a-z0-9][a-z0-9-]{0,31}$", ErrorMessage = "A source name is 1-32 characters of a-z, 0-9 and '-'.")]
    public string Source { get; set; } = "";

    /// <summary>A revoked key is refused with 401 but kept in configuration so its history is explained.</summary>
    public bool Revoked { get; set; }
}

public sealed class StorageOptions : IValidatableObject
{
    /// <summary>A storage connection string (Azurite: <c>UseDevelopmentStorage=true</c>). Used when set.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Table endpoint used with managed identity when no connection string is set.</summary>
    public Uri? TableServiceUri { get; set; }

    /// <summary>Blob endpoint used with managed identity when no connection string is set.</summary>
    public Uri? BlobServiceUri { get; set; }

    /// <summary>
    /// Prepended to every table and blob container name, so test runs and local hosts can share an emulator. Only with a
    /// connection string: in Azure (service URIs) the blob trigger, the Event Grid subscription and the Bicep template
    /// use the unprefixed <c>usage-reports</c> container, which a prefix would silently move away from.
    /// </summary>
    [RegularExpression("^([A-Za-z][A-Za-z0-9]{0,20})?$", ErrorMessage = "TablePrefix is empty or up to 21 letters and digits, starting with a letter.")]
    public string TablePrefix { get; set; } = "";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(ConnectionString) && (TableServiceUri is null || BlobServiceUri is null))
        {
            yield return new ValidationResult(
                "Set Telemetry__Storage__ConnectionString (locally: UseDevelopmentStorage=true) or both Telemetry__Storage__TableServiceUri and Telemetry__Storage__BlobServiceUri (managed identity).",
                [nameof(ConnectionString)]);
        }

        if (TablePrefix.Length > 0 && string.IsNullOrWhiteSpace(ConnectionString))
        {
            yield return new ValidationResult(
                "Telemetry__Storage__TablePrefix must be empty with service URIs (Azure): it prefixes blob containers too, and the blob trigger, the Event Grid subscription and the deployment use the unprefixed usage-reports container. Give each deployment its own storage account.",
                [nameof(TablePrefix)]);
        }
    }
}

public sealed class IngestionOptions
{
    /// <summary>Largest single event, in bytes of JSON.</summary>
    [Range(1024, 1024 * 1024)]
    public int MaxEventBytes { get; set; } = 32 * 1024;

    /// <summary>Largest request body, in bytes, after gzip decompression (and before it).</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxRequestBytes { get; set; } = 500 * 1024;

    /// <summary>How long a request body may take to arrive in full before the request is answered 408 and its connection closed.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan MaxBodyReadTime { get; set; } = TimeSpan.FromSeconds(30);

    [Range(1, 10_000)]
    public int MaxBatchEvents { get; set; } = 2500;

    [Range(4, 128)]
    public int MaxJsonDepth { get; set; } = 32;

    [Range(1, 10_000)]
    public int MaxPropertiesPerEvent { get; set; } = 250;

    [Range(1, 4096)]
    public int MaxPropertyNameLength { get; set; } = 255;

    [Range(1, 1024 * 1024)]
    public int MaxStringValueBytes { get; set; } = 64 * 1024;

    [Range(1, 4096)]
    public int MaxIdentifierLength { get; set; } = 1024;

    [Range(1, 1024)]
    public int MaxMessageIdLength { get; set; } = 100;

    [Range(1, 1024)]
    public int MaxEventNameLength { get; set; } = 200;

    /// <summary>Events whose corrected timestamp is older than this are rejected.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan MaxEventAge { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Events whose corrected timestamp is further in the future than this are rejected.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00")]
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Events a single source may send per second before it gets 429 (token bucket, per host).</summary>
    [Range(1, 10_000_000)]
    public int SourceEventsPerSecond { get; set; } = 20_000;

    /// <summary>Burst size of the per-source token bucket, in events.</summary>
    [Range(1, 100_000_000)]
    public int SourceBurstEvents { get; set; } = 100_000;

    /// <summary>
    /// A header a proxy in front of the app sets to the client's address (Front Door: <c>X-Azure-ClientIP</c>), used
    /// for the per-client-address limit instead of the connection's address. Trusted as sent: set it only when the
    /// app is reachable through that proxy alone. Unset (the default): the connection's address.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9-]{1,64}$", ErrorMessage = "Telemetry__Ingestion__ClientAddressHeader must be a header name (letters, digits and '-').")]
    public string? ClientAddressHeader { get; set; }

    /// <summary>Events one client address may send per second before it gets 429 (token bucket, per host, in memory only).</summary>
    [Range(1, 10_000_000)]
    public int ClientEventsPerSecond { get; set; } = 5_000;

    /// <summary>Burst size of the per-client-address token bucket, in events.</summary>
    [Range(1, 100_000_000)]
    public int ClientBurstEvents { get; set; } = 25_000;

    /// <summary>Raw-event partitions per source and day. More spreads load past one partition's ~2,000 entities/s, at the cost of more transactions per batch.</summary>
    [Range(1, 64)]
    public int RawEventShards { get; set; } = 1;

    /// <summary>
    /// An instance row's last-seen time is rewritten at most this often by one host when nothing else changed. The
    /// stored time may thus lag the instance's last event by up to this much, which its inactivity deadline allows for.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan InstanceTouchInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long the opt-out list is cached before it is read from storage again.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan SuppressionRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a host trusts an instance row it read or wrote before reading it again: the longest a sharing level
    /// changed on another host (a downgrade to basic) goes unapplied here.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan InstanceRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class PrivacyOptions
{
    /// <summary>HMAC-SHA256 key for pseudonymizing identifiers. Keep it secret (Key Vault in Azure); changing it breaks continuity of DAU/MAU.</summary>
    [Required(ErrorMessage = "Telemetry__Privacy__PseudonymizationKey is required (at least 32 characters; Key Vault in Azure).")]
    [MinLength(32, ErrorMessage = "Telemetry__Privacy__PseudonymizationKey must be at least 32 characters.")]
    public string PseudonymizationKey { get; set; } = "";

    /// <summary>Property names (case-insensitive, ignoring '_', '-', '$', '.') that are removed wherever they appear, added to the built-in list.</summary>
    public List<string> DeniedPropertyNames { get; set; } = [];

    /// <summary>Property names that are kept even when their name or an IPv4-like value would otherwise scrub them (os, version, ...).</summary>
    public List<string> AllowedPropertyNames { get; set; } = ["os", "osVersion", "version", "productVersion", "appVersion", "edition", "clusterVersion", "libraryVersion", "sharingLevel", "arch", "platform", "locale", "timezone"];

    /// <summary>Sharing level assumed when neither the event nor its instance declares one.</summary>
    [RegularExpression("^(disabled|basic|advanced)$", ErrorMessage = "DefaultSharingLevel is disabled, basic or advanced.")]
    public string DefaultSharingLevel { get; set; } = "advanced";

    [Range(1, 3650)]
    public int SupportRequestRetentionDays { get; set; } = 30;
}

public sealed class EventNamesOptions
{
    [Required] public string InstallationStarted { get; set; } = "Installation Started";
    [Required] public string InstallationSucceeded { get; set; } = "Installation Success";
    [Required] public string InstallationFailed { get; set; } = "Installation Errors";
    [Required] public string InstallationSupport { get; set; } = "Installation Support";
    [Required] public string Heartbeat { get; set; } = "Instance Active";

    /// <summary>Track events kept at sharing level "basic" besides installation and heartbeat events.</summary>
    public List<string> HealthEvents { get; set; } = ["Instance Health", "Instance Error"];

    /// <summary>Where an event's instance id is read from, in order (dot paths).</summary>
    [MinLength(1)]
    public List<string> InstanceIdPaths { get; set; } = ["properties.instanceId", "context.instanceId"];

    /// <summary>Where an event's sharing level is read from, in order (dot paths).</summary>
    public List<string> SharingLevelPaths { get; set; } = ["context.sharingLevel", "properties.sharingLevel"];

    /// <summary>Where product version, OS and edition are read from, in order (dot paths).</summary>
    public List<string> VersionPaths { get; set; } = ["properties.version", "context.app.version", "properties.appVersion"];
    public List<string> OsPaths { get; set; } = ["properties.os", "context.os.name"];
    public List<string> EditionPaths { get; set; } = ["properties.edition", "context.app.edition"];

    /// <summary>Where "Installation Support" carries the contact address.</summary>
    public List<string> SupportEmailPaths { get; set; } = ["properties.email", "context.traits.email", "traits.email"];
    public List<string> ErrorPaths { get; set; } = ["properties.error", "properties.errorMessage", "properties.reason"];
}

public sealed class ActivityOptions
{
    /// <summary>An instance silent for longer than this (plus <see cref="HeartbeatGrace"/>) is marked inactive.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan InactiveAfter { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Slack for an on-time heartbeat that arrives a little late, so it does not flap the status.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan HeartbeatGrace { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Raw events older than this many days are deleted by the retention job; aggregates are kept.</summary>
    [Range(1, 3650)]
    public int RawEventRetentionDays { get; set; } = 90;

    /// <summary>How many days back the rollup catches up at most when runs were missed.</summary>
    [Range(1, 3650)]
    public int MaxCatchUpDays { get; set; } = 400;

    /// <summary>The longest range the backfill endpoint accepts in one call.</summary>
    [Range(1, 3650)]
    public int MaxBackfillDays { get; set; } = 366;
}
