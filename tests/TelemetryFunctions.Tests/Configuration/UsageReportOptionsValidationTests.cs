using System.ComponentModel.DataAnnotations;
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
}
