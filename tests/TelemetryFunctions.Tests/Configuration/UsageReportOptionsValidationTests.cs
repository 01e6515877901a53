using System.ComponentModel.DataAnnotations;
using System.Globalization;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.Configuration;

public sealed class UsageReportOptionsValidationTests
{
    private const string Unresolved = "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/usage-customer-acme-signing-secret/)";

    private static List<string> Errors(UsageCustomerOptions customer) =>
        [.. new UsageReportOptions { Customers = [customer] }.Validate(new ValidationContext(new object())).Select(r => r.ErrorMessage ?? "")];

    private static UsageCustomerOptions Acme() => new()
    {
        Id = "acme",
        SigningSecret = new string('s', 40),
        ReportKey = new string('r', 24),
    };

    [Fact]
    public void A_customer_with_real_secrets_passes() => Assert.Empty(Errors(Acme()));

    [Theory]
    [InlineData("SigningSecret")]
    [InlineData("PreviousSigningSecret")]
    [InlineData("ReportKey")]
    public void A_customer_secret_left_as_an_unresolved_key_vault_reference_stops_start_up(string setting)
    {
        var customer = Acme();
        switch (setting)
        {
            case "SigningSecret": customer.SigningSecret = Unresolved; break;
            case "PreviousSigningSecret": customer.PreviousSigningSecret = Unresolved; break;
            default: customer.ReportKey = Unresolved; break;
        }

        Assert.Contains(Errors(customer), e => e.Contains($"Customers[0].{setting} is an unresolved Key Vault reference", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("report-key-0001,report-key-0002")]
    [InlineData(" report-key-0001-padded")]
    [InlineData("report-key-0001-padded\t")]
    public void A_report_key_with_a_comma_or_a_blank_at_either_end_stops_start_up_as_a_bearer_header_could_not_carry_it(string reportKey)
    {
        var customer = Acme();
        customer.ReportKey = reportKey;

        Assert.Contains(Errors(customer), e => e.Contains("Customers[0].ReportKey must not contain a comma or start or end with a blank", StringComparison.Ordinal));
    }

    private static List<string> Errors(params UsageCustomerOptions[] customers) =>
        [.. new UsageReportOptions { Customers = [.. customers] }.Validate(new ValidationContext(new object())).Select(r => r.ErrorMessage ?? "")];

    private static UsageCustomerOptions Customer(string id, string signingSecret, string? previousSigningSecret = null) => new()
    {
        Id = id,
        SigningSecret = signingSecret,
        PreviousSigningSecret = previousSigningSecret,
        ReportKey = id + new string('r', 24),
    };

    [Theory]
    [InlineData("current", "current")]
    [InlineData("previous", "current")]
    [InlineData("current", "previous")]
    [InlineData("previous", "previous")]
    public void A_signing_secret_shared_by_two_customers_stops_start_up_naming_the_customers_not_the_secret(string acmeHas, string globexHas)
    {
        // Any customer's upload SAS may write into every customer's folder: only the signature keeps customers apart.
        var shared = new string('x', 40);
        var acme = acmeHas == "current" ? Customer("acme", shared) : Customer("acme", new string('a', 40), shared);
        var globex = globexHas == "current" ? Customer("globex", shared) : Customer("globex", new string('g', 40), shared);

        var errors = Errors(acme, globex);

        var error = Assert.Single(errors);
        Assert.Equal("Customers 'acme' and 'globex' share a signing secret (SigningSecret or PreviousSigningSecret): each customer needs its own, or one could sign reports counted for the other.", error);
        Assert.DoesNotContain(shared, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_signing_secret_shared_by_three_customers_names_each_pair_once()
    {
        var shared = new string('x', 40);

        var errors = Errors(Customer("acme", shared), Customer("globex", new string('g', 40), shared), Customer("initech", shared, shared));

        Assert.Equal(
        [
            "Customers 'acme' and 'globex' share a signing secret (SigningSecret or PreviousSigningSecret): each customer needs its own, or one could sign reports counted for the other.",
            "Customers 'acme' and 'initech' share a signing secret (SigningSecret or PreviousSigningSecret): each customer needs its own, or one could sign reports counted for the other.",
            "Customers 'globex' and 'initech' share a signing secret (SigningSecret or PreviousSigningSecret): each customer needs its own, or one could sign reports counted for the other.",
        ], errors);
    }

    [Fact]
    public void A_customer_whose_previous_signing_secret_is_its_current_one_passes_as_in_the_middle_of_a_rotation()
    {
        // docs/deploy.md, rotating a signing secret, step 2: the current version is pinned as the previous one too.
        var secret = new string('s', 40);

        Assert.Empty(Errors(Customer("acme", secret, secret), Customer("globex", new string('g', 40))));
    }

    [Fact]
    public void An_entitlement_or_distinct_count_metric_named_in_capitals_stops_start_up_as_it_would_never_match_a_report()
    {
        var customer = Acme();
        customer.Entitlements = [new() { Metric = "Process-Instances", MonthlyQuantity = 1000 }, new() { Metric = "process instances", MonthlyQuantity = 1 }];
        var options = new UsageReportOptions { Customers = [customer], DistinctCountMetrics = ["Task-Users", "task-users"] };

        var errors = options.Validate(new ValidationContext(new object())).Select(r => r.ErrorMessage ?? "").ToList();

        Assert.Contains("Customers[0].Entitlements: metric names are lower case: 'Process-Instances' is written 'process-instances'.", errors);
        Assert.Contains("Customers[0].Entitlements: 'process instances' is not a metric name (a lowercase letter, then up to 63 lowercase letters, digits, '.', '_' or '-').", errors);
        Assert.Contains("DistinctCountMetrics: metric names are lower case: 'Task-Users' is written 'task-users'.", errors);
        Assert.Equal(3, errors.Count);
    }

    [Theory]
    [InlineData("00:00:00", false)]
    [InlineData("00:00:01", true)]
    [InlineData("00:30:00", true)]
    [InlineData("1.00:00:00", true)]
    [InlineData("1.00:00:01", false)]
    public void The_upload_read_time_must_lie_between_a_second_and_a_day(string readTime, bool valid)
    {
        var options = new UsageReportOptions { MaxUploadReadTime = TimeSpan.Parse(readTime, CultureInfo.InvariantCulture) };
        var results = new List<ValidationResult>();

        var passes = Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);

        Assert.Equal(valid, passes);
        Assert.Equal(TimeSpan.FromMinutes(30), new UsageReportOptions().MaxUploadReadTime);
    }
}
