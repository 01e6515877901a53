using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
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
        var logger = new CapturingLogger();

        var refused = await Assert.ThrowsAnyAsync<RequestFailedException>(() =>
            TableBatchWriter.SubmitAsync(table, entities.Select(e => new TableTransactionAction(TableTransactionActionType.UpsertReplace, e)), TestContext.Current.CancellationToken, logger: logger));

        Assert.Empty(table.Query<TableEntity>(cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(1, Assert.IsType<TableTransactionFailedException>(refused).FailedTransactionActionIndex);
        var entry = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.Equal(1, entry.State.Single(p => p.Key == "FailedActionIndex").Value);
        Assert.Equal(3, entry.State.Single(p => p.Key == "Actions").Value);
        Assert.DoesNotContain("payload-", entry.Message, StringComparison.Ordinal);
        Assert.Contains(table.Name, entry.Message, StringComparison.Ordinal);
    }

    private sealed record LogEntry(LogLevel Level, string Message, IReadOnlyList<KeyValuePair<string, object?>> State);

    private sealed class CapturingLogger : ILogger
    {
        public List<LogEntry> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add(new LogEntry(logLevel, formatter(state, exception) + exception, state as IReadOnlyList<KeyValuePair<string, object?>> ?? []));
            }
        }
    }
}
