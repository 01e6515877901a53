using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;

namespace TelemetryFunctions.Storage;

/// <summary>
/// Writes many entities with as few storage transactions as possible: grouped by partition (an entity-group
/// transaction must stay in one partition) and chunked at the service's 100 operations per transaction.
/// A transaction is all-or-nothing: a failed chunk leaves none of its rows written. Every refused transaction is
/// logged with its table, its size and the index of the action storage refused (never the entity or its keys), then
/// thrown on to the caller; a store that builds its own transaction submits it through
/// <see cref="SubmitTransactionAsync"/> to be logged the same way. One singleton serves every store.
/// </summary>
public sealed partial class TableBatchWriter(ILogger<TableBatchWriter> logger)
{
    public const int MaxOperationsPerTransaction = 100;

    public async Task<int> SubmitAsync(TableClient table, IEnumerable<TableTransactionAction> actions, CancellationToken cancellationToken, int maxParallel = 4)
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

    /// <summary>
    /// Deletes every row matching <paramref name="filter"/>, a partition's rows at a time in transactions of 100.
    /// Returns how many.
    /// </summary>
    public async Task<int> DeleteMatchingAsync(TableClient table, string filter, CancellationToken cancellationToken)
    {
        var deleted = 0;
        await foreach (var page in table.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken).AsPages())
        {
            deleted += await DeleteAsync(table, page.Values, cancellationToken);
        }

        return deleted;
    }

    /// <summary>
    /// Deletes the given rows (only their keys are used), a partition's rows at a time in transactions of 100; a row
    /// already gone is skipped. Returns how many rows were given.
    /// </summary>
    public async Task<int> DeleteAsync(TableClient table, IEnumerable<TableEntity> rows, CancellationToken cancellationToken)
    {
        var deleted = 0;
        foreach (var partition in rows.GroupBy(e => e.PartitionKey, StringComparer.Ordinal))
        {
            foreach (var chunk in partition.Chunk(MaxOperationsPerTransaction))
            {
                try
                {
                    await SubmitTransactionAsync(table, [.. chunk.Select(e => new TableTransactionAction(TableTransactionActionType.Delete, e, ETag.All))], [404], cancellationToken);
                }
                catch (TableTransactionFailedException e) when (e.Status == 404)
                {
                    // Someone deleted one of them meanwhile: delete the rest one by one.
                    foreach (var row in chunk)
                    {
                        await DeleteIfExistsAsync(table, row.PartitionKey, row.RowKey, cancellationToken);
                    }
                }

                deleted += chunk.Length;
            }
        }

        return deleted;
    }

    /// <summary>Deletes one row; 1 if it existed, 0 if not.</summary>
    public static async Task<int> DeleteIfExistsAsync(TableClient table, string partitionKey, string rowKey, CancellationToken cancellationToken)
    {
        try
        {
            var response = await table.DeleteEntityAsync(partitionKey, rowKey, ETag.All, cancellationToken);
            return response.Status == 404 ? 0 : 1;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return 0;
        }
    }

    private async Task SubmitChunkAsync(TableClient table, List<TableTransactionAction> chunk, CancellationToken cancellationToken)
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

        await SubmitTransactionAsync(table, chunk, [], cancellationToken);
    }

    /// <summary>
    /// Submits <paramref name="actions"/> as one entity-group transaction exactly as given (one partition, at most
    /// <see cref="MaxOperationsPerTransaction"/>; nothing grouped, deduplicated or chunked), for a store whose actions
    /// must succeed or fail together, such as rows with a head row under If-Match. A refusal is logged like any other
    /// and thrown on, except one whose status is in <paramref name="expectedStatuses"/>: a race or a condition the caller
    /// handles itself (409 or 412 from a concurrent writer, 404 from a row deleted meanwhile), thrown on unlogged.
    /// </summary>
    public async Task<Response<IReadOnlyList<Response>>> SubmitTransactionAsync(
        TableClient table, IReadOnlyCollection<TableTransactionAction> actions, IReadOnlyCollection<int> expectedStatuses, CancellationToken cancellationToken)
    {
        try
        {
            return await table.SubmitTransactionAsync(actions, cancellationToken);
        }
        catch (TableTransactionFailedException e) when (!expectedStatuses.Contains(e.Status))
        {
            LogTransactionRefused(logger, table.Name, actions.Count, e.FailedTransactionActionIndex, e.Status, e.ErrorCode);
            throw;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Storage refused a transaction of {Actions} actions on {Table} because of action {FailedActionIndex} ({Status} {ErrorCode}); none of its actions took effect")]
    private static partial void LogTransactionRefused(ILogger logger, string table, int actions, int? failedActionIndex, int status, string? errorCode);
}
