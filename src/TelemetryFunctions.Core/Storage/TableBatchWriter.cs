using Azure.Data.Tables;

namespace TelemetryFunctions.Storage;

/// <summary>
/// Writes many entities with as few storage transactions as possible: grouped by partition (an entity-group
/// transaction must stay in one partition) and chunked at the service's 100 operations per transaction.
/// A transaction is all-or-nothing: a failed chunk leaves none of its rows written.
/// </summary>
public static class TableBatchWriter
{
    public const int MaxOperationsPerTransaction = 100;

    public static async Task<int> SubmitAsync(TableClient table, IEnumerable<TableTransactionAction> actions, CancellationToken cancellationToken, int maxParallel = 4)
    {
        var chunks = new List<List<TableTransactionAction>>();
        foreach (var partition in actions.GroupBy(a => a.Entity.PartitionKey, StringComparer.Ordinal))
        {
            var distinct = partition
                .GroupBy(a => a.Entity.RowKey, StringComparer.Ordinal)
                .Select(g => g.Last())
                .ToList();
            chunks.AddRange(distinct.Chunk(MaxOperationsPerTransaction).Select(c => c.ToList()));
        }

        if (chunks.Count == 1)
        {
            await SubmitChunkAsync(table, chunks[0], cancellationToken);
            return 1;
        }

        await Parallel.ForEachAsync(
            chunks,
            new ParallelOptions { MaxDegreeOfParallelism = maxParallel, CancellationToken = cancellationToken },
            async (chunk, token) => await SubmitChunkAsync(table, chunk, token));
        return chunks.Count;
    }

    private static async Task SubmitChunkAsync(TableClient table, List<TableTransactionAction> chunk, CancellationToken cancellationToken)
    {
        if (chunk.Count == 1)
        {
            var single = chunk[0];
            switch (single.ActionType)
            {
                case TableTransactionActionType.UpsertReplace:
                    await table.UpsertEntityAsync(single.Entity, TableUpdateMode.Replace, cancellationToken);
                    return;
                case TableTransactionActionType.UpsertMerge:
                    await table.UpsertEntityAsync(single.Entity, TableUpdateMode.Merge, cancellationToken);
                    return;
                case TableTransactionActionType.Delete:
                    await table.DeleteEntityAsync(single.Entity.PartitionKey, single.Entity.RowKey, single.Entity.ETag, cancellationToken);
                    return;
            }
        }

        await table.SubmitTransactionAsync(chunk, cancellationToken);
    }
}
