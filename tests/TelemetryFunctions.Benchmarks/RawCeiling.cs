using System.Diagnostics;
using System.Globalization;
using Azure.Data.Tables;

namespace TelemetryFunctions.Benchmarks;

internal sealed record CeilingResult(long Entities, long Transactions, int EntitiesPerTransaction, ResourceUse Resources, Latencies TransactionLatency)
{
    public double EntitiesPerSecond => Entities / Resources.Wall.TotalSeconds;

    public static CeilingResult Combine(IReadOnlyList<CeilingResult> rounds) => new(
        rounds.Sum(r => r.Entities),
        rounds.Sum(r => r.Transactions),
        rounds[0].EntitiesPerTransaction,
        rounds.Skip(1).Aggregate(rounds[0].Resources, (sum, r) => sum.Plus(r.Resources)),
        Latencies.Merge(rounds.Select(r => r.TransactionLatency)));
}

/// <summary>
/// The storage's own ceiling for what ingestion must do at least: raw-event rows written with Azure.Data.Tables
/// directly, in entity-group transactions (upsert-replace) of up to 100 rows, several in flight, spread over a handful
/// of partitions. No HTTP host, no JSON parsing, no privacy work: what is left is the storage's cost per row.
/// </summary>
internal static class RawCeiling
{
    /// <summary>Partitions the rows are spread over (a day's raw events of a few sources or shards).</summary>
    public const int Partitions = 4;

    /// <summary>Size of each row's binary payload: about a stored raw event's serialized document.</summary>
    public const int PayloadBytes = 1024;

    private static readonly byte[] Payload = CreatePayload();

    public static async Task WarmUpAsync(TableClient table, BenchmarkOptions options, Process? emulator, CancellationToken cancellationToken)
    {
        await table.CreateIfNotExistsAsync(cancellationToken);
        if (options.WarmupEvents > 0)
        {
            await WriteAsync(table, options, options.WarmupEvents, n => $"{Day()}_warmup_{n % Partitions:00}", "warm-up", emulator, cancellationToken);
        }
    }

    public static Task<CeilingResult> MeasureAsync(TableClient table, BenchmarkOptions options, int entities, Process? emulator, CancellationToken cancellationToken) =>
        WriteAsync(table, options, entities, n => $"{Day()}_server_{n % Partitions:00}", "ceiling", emulator, cancellationToken);

    private static string Day() => DateTime.UtcNow.ToString("yyyyMMdd", CultureInfo.InvariantCulture);

    private static async Task<CeilingResult> WriteAsync(
        TableClient table, BenchmarkOptions options, int entities, Func<long, string> partitionOf, string label, Process? emulator, CancellationToken cancellationToken)
    {
        var perTransaction = options.CeilingBatch;
        var transactions = (entities + perTransaction - 1) / perTransaction;
        var meter = new ProgressMeter(label, "entities", entities);
        var latencies = Enumerable.Range(0, options.Clients).Select(_ => new List<long>(transactions / options.Clients + 1)).ToArray();
        long next = -1;

        using var stopProgress = new CancellationTokenSource();
        var progress = meter.RunAsync(stopProgress.Token);
        var before = ResourceSnapshot.Take(emulator);
        await Task.WhenAll(Enumerable.Range(0, options.Clients).Select(worker => Task.Run(
            async () =>
            {
                while (true)
                {
                    var n = Interlocked.Increment(ref next);
                    if (n >= transactions)
                    {
                        return;
                    }

                    var size = (int)Math.Min(perTransaction, entities - (n * perTransaction));
                    var actions = Transaction(partitionOf(n), size, Payload);
                    var start = Stopwatch.GetTimestamp();
                    await table.SubmitTransactionAsync(actions, cancellationToken);
                    var elapsed = Stopwatch.GetTimestamp() - start;
                    latencies[worker].Add(elapsed);
                    meter.Add(size, elapsed);
                }
            },
            cancellationToken)));
        var used = ResourceSnapshot.Take(emulator).Since(before);
        await stopProgress.CancelAsync();
        await progress;

        return new CeilingResult(entities, transactions, perTransaction, used, new Latencies(latencies.SelectMany(l => l)));
    }

    private static byte[] CreatePayload()
    {
        var payload = new byte[PayloadBytes];
        new Random(17).NextBytes(payload);
        return payload;
    }

    /// <summary>Rows shaped like stored raw events: keyed hashes, a few short strings, two times and the payload.</summary>
    private static List<TableTransactionAction> Transaction(string partitionKey, int size, byte[] payload)
    {
        var now = DateTimeOffset.UtcNow;
        var actions = new List<TableTransactionAction>(size);
        for (var i = 0; i < size; i++)
        {
            var entity = new TableEntity(partitionKey, Guid.NewGuid().ToString("N"))
            {
                ["Source"] = "server",
                ["Type"] = "track",
                ["Event"] = "Dashboard Viewed",
                ["Category"] = "Usage",
                ["UserKey"] = Guid.NewGuid().ToString("N"),
                ["InstanceKey"] = Guid.NewGuid().ToString("N"),
                ["EventTime"] = now,
                ["ReceivedAt"] = now,
                ["SharingLevel"] = "Advanced",
                ["Payload"] = payload,
            };
            actions.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, entity));
        }

        return actions;
    }
}
