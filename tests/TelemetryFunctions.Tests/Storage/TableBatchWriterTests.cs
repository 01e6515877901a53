using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Storage;

/// <summary>Fault F4: one entity storage refuses inside a batch transaction, against real Azurite.</summary>
public sealed class TableBatchWriterTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task One_refused_entity_fails_the_whole_transaction_writes_none_of_its_rows_and_logs_its_index_without_the_payload()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniquePrefix() + "Batch");
        await table.CreateAsync(TestContext.Current.CancellationToken);
        var secret = "payload-" + new string('x', 40_000); // over the 32K-character limit of a string property: Azurite refuses it
        TableEntity[] entities =
        [
            new("p", "a") { ["Text"] = "fine" },
            new("p", "b") { ["Text"] = secret },
            new("p", "c") { ["Text"] = "fine" },
        ];
        var logs = new CapturedLogs();
        var writer = new TableBatchWriter(logs.CreateLogger<TableBatchWriter>());

        var refused = await Assert.ThrowsAnyAsync<RequestFailedException>(() =>
            writer.SubmitAsync(table, entities.Select(e => new TableTransactionAction(TableTransactionActionType.UpsertReplace, e)), TestContext.Current.CancellationToken));

        Assert.Empty(table.Query<TableEntity>(cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(1, Assert.IsType<TableTransactionFailedException>(refused).FailedTransactionActionIndex);
        var entry = Assert.Single(logs.Entries);
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.Equal(1, entry.Value("FailedActionIndex"));
        Assert.Equal(3, entry.Value("Actions"));
        Assert.DoesNotContain("payload-", entry.Message, StringComparison.Ordinal);
        Assert.Contains(table.Name, entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transaction_submitted_whole_is_logged_with_its_failed_index_unless_its_status_is_one_the_caller_expects()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniquePrefix() + "Whole");
        await table.CreateAsync(TestContext.Current.CancellationToken);
        await table.AddEntityAsync(new TableEntity("p", "taken"), TestContext.Current.CancellationToken);
        TableTransactionAction[] actions =
        [
            new(TableTransactionActionType.Add, new TableEntity("p", "new")),
            new(TableTransactionActionType.Add, new TableEntity("p", "taken")),
        ];
        var logs = new CapturedLogs();
        var writer = new TableBatchWriter(logs.CreateLogger<TableBatchWriter>());

        var expected = await Assert.ThrowsAsync<TableTransactionFailedException>(() =>
            writer.SubmitTransactionAsync(table, actions, [409, 412], TestContext.Current.CancellationToken));
        var unexpected = await Assert.ThrowsAsync<TableTransactionFailedException>(() =>
            writer.SubmitTransactionAsync(table, actions, [412], TestContext.Current.CancellationToken));

        Assert.Equal((409, 1), (expected.Status, expected.FailedTransactionActionIndex));
        Assert.Equal((409, 1), (unexpected.Status, unexpected.FailedTransactionActionIndex));
        var entry = Assert.Single(logs.Entries);
        Assert.Equal((1, 2, 409), ((int?)entry.Value("FailedActionIndex"), (int)entry.Value("Actions")!, (int)entry.Value("Status")!));
        Assert.Equal(["taken"], table.Query<TableEntity>(cancellationToken: TestContext.Current.CancellationToken).Select(e => e.RowKey));
    }

    [Fact]
    public async Task A_store_other_than_raw_events_logs_its_refused_transaction_with_the_failed_index_through_the_shared_writer()
    {
        var logs = new CapturedLogs();
        await using var host = new LocalHostFactory(azurite, logs: logs);
        var suppressions = host.Services.GetRequiredService<SuppressionList>();
        var tooLong = "key-" + new string('k', 40_000); // a pending erasure's key that Azurite refuses as a property
        string[] subjects = [SuppressionList.UserSubject("a"), SuppressionList.UserSubject("b"), SuppressionList.UserSubject("c")];
        var erasures = new Dictionary<string, ErasureSubject>
        {
            [subjects[0]] = new("a", null, null),
            [subjects[1]] = new(tooLong, null, null),
            [subjects[2]] = new("c", null, null),
        };

        var refused = await Assert.ThrowsAnyAsync<RequestFailedException>(() =>
            suppressions.AddAsync(subjects, SuppressionReasons.OptOut, TestContext.Current.CancellationToken, erasures));

        Assert.Equal(1, Assert.IsType<TableTransactionFailedException>(refused).FailedTransactionActionIndex);
        Assert.Empty(await host.Tables.RowsAsync(TableNames.Suppressions));
        var entry = Assert.Single(logs.Of<TableBatchWriter>());
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.Equal(1, entry.Value("FailedActionIndex"));
        Assert.Equal(3, entry.Value("Actions"));
        Assert.Contains(host.TablePrefix + TableNames.Suppressions, entry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("key-", entry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(subjects[1], entry.Message, StringComparison.Ordinal);
    }
}
