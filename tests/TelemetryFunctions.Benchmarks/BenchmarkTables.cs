using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Benchmarks;

/// <summary>The benchmarks' own table chores: counting what a run stored, and removing a run's tables.</summary>
internal static class BenchmarkTables
{
    /// <summary>
    /// Rows in a table, counted over 16 row-key ranges at once: the emulator sorts a query's whole result for every
    /// page, so one query over a large table costs time quadratic in its size.
    /// </summary>
    public static async Task<long> CountRowsAsync(TableClient table, CancellationToken cancellationToken)
    {
        const string Bounds = "123456789abcdef";
        var ranges = new List<string> { $"RowKey lt '{Bounds[0]}'" };
        for (var i = 1; i < Bounds.Length; i++)
        {
            ranges.Add($"RowKey ge '{Bounds[i - 1]}' and RowKey lt '{Bounds[i]}'");
        }

        ranges.Add($"RowKey ge '{Bounds[^1]}'");
        var counts = new List<long>();
        await Parallel.ForEachAsync(ranges, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (filter, token) =>
        {
            long rows = 0;
            try
            {
                await foreach (var page in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey"], cancellationToken: token).AsPages())
                {
                    rows += page.Values.Count;
                }
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Never created: nothing was written.
            }

            lock (counts)
            {
                counts.Add(rows);
            }
        });
        return counts.Sum();
    }

    /// <summary>Deletes every table of a run (its unique prefix) from a storage account the run did not start.</summary>
    public static async Task DeleteAsync(TableServiceClient service, string prefix)
    {
        foreach (var table in TableNames.All.Append("Ceiling"))
        {
            try
            {
                await service.DeleteTableAsync(prefix + table);
            }
            catch (RequestFailedException)
            {
                // Not created, or already gone.
            }
        }
    }
}
