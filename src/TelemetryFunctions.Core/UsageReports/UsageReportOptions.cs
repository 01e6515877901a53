using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// Usage reports of Self-Managed customers, bound from <c>Telemetry:UsageReports</c> (app settings
/// <c>Telemetry__UsageReports__...</c>). docs/usage-reports.md explains each setting.
/// </summary>
public sealed partial class UsageReportOptions : IValidatableObject
{
    public const string SectionName = "Telemetry:UsageReports";

    /// <summary>Metrics combined by maximum when none are configured: distinct counts cannot be added.</summary>
    public static IReadOnlyList<string> DefaultDistinctCountMetrics { get; } = ["task-users"];

    /// <summary>The container reports are uploaded to (the blob trigger watches it). Prefixed like tables in tests.</summary>
    [Required]
    [RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,40}[a-z0-9]$", ErrorMessage = "Container is 3-42 characters of a-z, 0-9 and single '-'.")]
    public string Container { get; set; } = "usage-reports";

    /// <summary>Where rejected and failed reports go, each with <c>{name}.error.json</c> beside it.</summary>
    [Required]
    [RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,40}[a-z0-9]$", ErrorMessage = "QuarantineContainer is 3-42 characters of a-z, 0-9 and single '-'.")]
    public string QuarantineContainer { get; set; } = "usage-reports-quarantine";

    /// <summary>A report whose processing fails this many times (storage down, say) is quarantined as failed.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Largest report, in bytes of JSON after gzip decompression (a gzip bomb stops here).</summary>
    [Range(1024L, 4L * 1024 * 1024 * 1024)]
    public long MaxReportBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Largest <c>POST /v1/usage-reports</c> body as sent (compressed or not). Larger reports go straight to the container.</summary>
    [Range(1024L, 4L * 1024 * 1024 * 1024)]
    public long MaxUploadBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>
    /// How long a <c>POST /v1/usage-reports</c> body may take to arrive in full (wall clock); past it the upload is
    /// answered 408 and nothing is stored. Generous (a full-size upload needs about 57 KB/s): it only stops a sender
    /// that keeps just above the server's minimum data rate from holding a request for days.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MaxUploadReadTime { get; set; } = TimeSpan.FromMinutes(30);

    [Range(1, 1000)]
    public int MaxMetrics { get; set; } = 64;

    /// <summary>Distinct (metric, cluster, tenant) combinations a report may break its metrics down by; bounds the memory a report takes.</summary>
    [Range(1, 1_000_000)]
    public int MaxScopes { get; set; } = 50_000;

    /// <summary>The longest period one report may cover.</summary>
    [Range(1, 3660)]
    public int MaxPeriodDays { get; set; } = 370;

    /// <summary>How far in the future a report's generation time or period end may lie (clocks of air-gapped machines drift).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The reconciliation timer leaves blobs younger than this to their blob event.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan ReconcileMinimumAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long after a report failed the reconciliation pass deletes the rows its runs left: longer than any run can
    /// last (the Functions host stops a run after 30 minutes, host.json <c>functionTimeout</c>), so no run of the failed
    /// claim is still writing.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan AbandonedRowsMinimumAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often the local host looks for new blobs in the container.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan WatchInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Metrics that count distinct things (users): they cannot be added across days, clusters or reports, so they are
    /// combined by maximum. Null means <see cref="DefaultDistinctCountMetrics"/>; a configured list replaces it.
    /// </summary>
    public List<string>? DistinctCountMetrics { get; set; }

    public List<UsageCustomerOptions> Customers { get; set; } = [];

    public IReadOnlySet<string> EffectiveDistinctCountMetrics =>
        _distinct ??= new HashSet<string>(DistinctCountMetrics ?? [.. DefaultDistinctCountMetrics], StringComparer.Ordinal);

    private HashSet<string>? _distinct;

    public MetricAggregation AggregationOf(string metric) =>
        EffectiveDistinctCountMetrics.Contains(metric) ? MetricAggregation.Max : MetricAggregation.Sum;

    public UsageCustomerOptions? FindCustomer(string? id) =>
        id is null ? null : Customers.FirstOrDefault(c => string.Equals(c.Id, id, StringComparison.Ordinal));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        for (var i = 0; i < Customers.Count; i++)
        {
            var customer = Customers[i];
            var at = $"{nameof(Customers)}[{i}]";
            if (!CustomerIdPattern().IsMatch(customer.Id ?? ""))
            {
                yield return new ValidationResult($"{at}.Id must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit.", [at]);
            }

            if ((customer.SigningSecret ?? "").Length < 32)
            {
                yield return new ValidationResult($"{at}.SigningSecret must be at least 32 characters (Key Vault in Azure).", [at]);
            }

            if (customer.PreviousSigningSecret is { } previous && previous.Length < 32)
            {
                yield return new ValidationResult($"{at}.PreviousSigningSecret must be at least 32 characters when set.", [at]);
            }

            if ((customer.ReportKey ?? "").Length < 16)
            {
                yield return new ValidationResult($"{at}.ReportKey must be at least 16 characters.", [at]);
            }

            // A Bearer header with a comma reads as two credentials and is refused (AuthorizationCredentials), and a
            // key with blanks at its ends loses them when the header is trimmed: such a key could not be sent as a Bearer token.
            if (customer.ReportKey is { } reportKey && (reportKey.Contains(',', StringComparison.Ordinal) || reportKey.Trim().Length != reportKey.Length))
            {
                yield return new ValidationResult($"{at}.ReportKey must not contain a comma or start or end with a blank.", [at]);
            }

            // App Service passes the reference text itself when it cannot resolve a Key Vault reference: that text
            // names the vault and is no secret, so a customer configured that way must not start.
            foreach (var (name, value) in new[] { ("SigningSecret", customer.SigningSecret), ("PreviousSigningSecret", customer.PreviousSigningSecret), ("ReportKey", customer.ReportKey) })
            {
                if (TelemetryOptions.IsUnresolvedKeyVaultReference(value))
                {
                    yield return new ValidationResult(
                        $"{at}.{name} is an unresolved Key Vault reference: check the app's identity has 'Key Vault Secrets User' on the vault and the secret exists.",
                        [at]);
                }
            }

            foreach (var entitlement in customer.Entitlements)
            {
                if (MetricNameProblem(entitlement.Metric) is { } problem)
                {
                    yield return new ValidationResult($"{at}.Entitlements: {problem}.", [at]);
                }

                if (entitlement.MonthlyQuantity < 0)
                {
                    yield return new ValidationResult($"{at}.Entitlements: the quantity of {entitlement.Metric} must not be negative.", [at]);
                }
            }

            if (customer.Entitlements.GroupBy(e => e.Metric, StringComparer.Ordinal).Any(g => g.Count() > 1))
            {
                yield return new ValidationResult($"{at}.Entitlements names a metric more than once.", [at]);
            }
        }

        foreach (var metric in DistinctCountMetrics ?? [])
        {
            if (MetricNameProblem(metric) is { } problem)
            {
                yield return new ValidationResult($"{nameof(DistinctCountMetrics)}: {problem}.", [nameof(DistinctCountMetrics)]);
            }
        }

        if (Customers.GroupBy(c => c.Id, StringComparer.Ordinal).Any(g => g.Count() > 1))
        {
            yield return new ValidationResult("The same customer id is configured more than once.", [nameof(Customers)]);
        }

        if (Customers.Where(c => !string.IsNullOrEmpty(c.ReportKey)).GroupBy(c => c.ReportKey, StringComparer.Ordinal).Any(g => g.Count() > 1))
        {
            yield return new ValidationResult("The same report key is configured for more than one customer.", [nameof(Customers)]);
        }

        // Any customer's upload SAS may write into every customer's folder, so the signature alone tells customers
        // apart: a secret that two customers share lets either sign reports counted for the other. A customer's own
        // secret as both current and previous is the middle of a rotation (docs/deploy.md) and shares nothing.
        var secrets = Customers.Select(SigningSecretsOf).ToList();
        for (var i = 0; i < secrets.Count; i++)
        {
            for (var j = i + 1; j < secrets.Count; j++)
            {
                if (secrets[i].Overlaps(secrets[j]))
                {
                    yield return new ValidationResult(
                        $"Customers {NameOf(i)} and {NameOf(j)} share a signing secret (SigningSecret or PreviousSigningSecret): each customer needs its own, or one could sign reports counted for the other.",
                        [nameof(Customers)]);
                }
            }
        }

        if (Container == QuarantineContainer)
        {
            yield return new ValidationResult("Container and QuarantineContainer must differ.", [nameof(QuarantineContainer)]);
        }
    }

    private static HashSet<string> SigningSecretsOf(UsageCustomerOptions customer) =>
        new[] { customer.SigningSecret, customer.PreviousSigningSecret }.Where(s => !string.IsNullOrEmpty(s)).ToHashSet(StringComparer.Ordinal)!;

    /// <summary>How a validation message names customer <paramref name="index"/>: its id, or its place when it has none.</summary>
    private string NameOf(int index) =>
        string.IsNullOrEmpty(Customers[index].Id) ? $"{nameof(Customers)}[{index}]" : $"'{Customers[index].Id}'";

    // \z, not $: $ also matches before a final newline, so "acme\n" would pass.
    [GeneratedRegex(@"^[a-z0-9][a-z0-9-]{0,62}\z")]
    internal static partial Regex CustomerIdPattern();

    /// <summary>What a metric name is, as the reasons for refusing one say it.</summary>
    internal const string MetricNameRule = "a lowercase letter, then up to 63 lowercase letters, digits, '.', '_' or '-'";

    /// <summary>
    /// Why <paramref name="name"/> is not a metric name, or null when it is one. Metric names are lower case: names
    /// compare exactly everywhere (entitlements, distinct counts, monthly totals), so a name in other case would
    /// otherwise be another metric, outside its entitlement.
    /// </summary>
    internal static string? MetricNameProblem(string? name) =>
        MetricNamePattern().IsMatch(name ?? "") ? null
        : LowerCaseOf(name) is { } lower ? $"metric names are lower case: '{name}' is written '{lower}'"
        : $"'{name}' is not a metric name ({MetricNameRule})";

    /// <summary>The name in lower case, when that is a metric name (<paramref name="name"/> differs from one only in case).</summary>
    internal static string? LowerCaseOf(string? name) =>
        name?.ToLowerInvariant() is { } lower && MetricNamePattern().IsMatch(lower) ? lower : null;

    [GeneratedRegex(@"^[a-z][a-z0-9._-]{0,63}\z")]
    internal static partial Regex MetricNamePattern();
}

/// <summary>A Self-Managed customer allowed to send usage reports.</summary>
public sealed class UsageCustomerOptions
{
    /// <summary>The customer (organization) id reports carry in <c>customerId</c> and are uploaded under (<c>{Id}/...</c>).</summary>
    public string Id { get; set; } = "";

    /// <summary>HMAC-SHA256 key (its UTF-8 bytes) the customer's product signs reports with. Key Vault in Azure.</summary>
    public string SigningSecret { get; set; } = "";

    /// <summary>Also accepted while a customer's installations move to a new secret.</summary>
    public string? PreviousSigningSecret { get; set; }

    /// <summary>The key the customer's product presents to <c>POST /v1/usage-reports</c> (HTTP Basic user name or Bearer token).</summary>
    public string ReportKey { get; set; } = "";

    /// <summary>What the customer purchased, per metric.</summary>
    public List<UsageEntitlementOptions> Entitlements { get; set; } = [];

    public long? EntitlementOf(string metric) =>
        Entitlements.FirstOrDefault(e => string.Equals(e.Metric, metric, StringComparison.Ordinal))?.MonthlyQuantity;
}

public sealed class UsageEntitlementOptions
{
    public string Metric { get; set; } = "";

    /// <summary>Units included per calendar month (UTC); usage above it is overage.</summary>
    public long MonthlyQuantity { get; set; }
}
