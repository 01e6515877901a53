using System.Collections.Concurrent;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Storage;

/// <summary>A pipeline policy added to every storage client (tests inject faults with it; benchmarks count requests).</summary>
public sealed class StoragePipelinePolicy(HttpPipelinePolicy policy, HttpPipelinePosition position = HttpPipelinePosition.PerRetry)
{
    public HttpPipelinePolicy Policy { get; } = policy;
    public HttpPipelinePosition Position { get; } = position;
}

/// <summary>Counts every HTTP request sent to storage (retries included).</summary>
public sealed class StorageRequestCounter : HttpPipelineSynchronousPolicy
{
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public override void OnSendingRequest(HttpMessage message) => Interlocked.Increment(ref _count);
}

/// <summary>
/// The storage clients (thread-safe singletons) and the tables, created once per process on first use.
/// Locally a connection string; in Azure the service URIs with the app's managed identity.
/// </summary>
public sealed class TelemetryStorage
{
    private readonly ConcurrentDictionary<string, Lazy<Task<TableClient>>> _tables = new(StringComparer.Ordinal);
    private readonly string _prefix;

    public TelemetryStorage(IOptions<TelemetryOptions> options, StorageRequestCounter counter, IEnumerable<StoragePipelinePolicy> policies)
    {
        var storage = options.Value.Storage;
        _prefix = storage.TablePrefix;

        var tableOptions = new TableClientOptions();
        var blobOptions = new BlobClientOptions();
        tableOptions.AddPolicy(counter, HttpPipelinePosition.PerRetry);
        blobOptions.AddPolicy(counter, HttpPipelinePosition.PerRetry);
        foreach (var extra in policies)
        {
            tableOptions.AddPolicy(extra.Policy, extra.Position);
            blobOptions.AddPolicy(extra.Policy, extra.Position);
        }

        tableOptions.Retry.MaxRetries = 3;
        tableOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);

        if (!string.IsNullOrWhiteSpace(storage.ConnectionString))
        {
            TableService = new TableServiceClient(storage.ConnectionString, tableOptions);
            BlobService = new BlobServiceClient(storage.ConnectionString, blobOptions);
        }
        else
        {
            TokenCredential credential = new DefaultAzureCredential();
            TableService = new TableServiceClient(storage.TableServiceUri!, credential, tableOptions);
            BlobService = new BlobServiceClient(storage.BlobServiceUri!, credential, blobOptions);
        }
    }

    public TableServiceClient TableService { get; }

    public BlobServiceClient BlobService { get; }

    public string TableName(string table) => _prefix + table;

    /// <summary>A blob container name with the table prefix applied (lower-case, as containers require).</summary>
    public string ContainerName(string container) => _prefix.Length == 0 ? container : (_prefix + "-" + container).ToLowerInvariant();

    /// <summary>The client for one of <see cref="TableNames"/>; the table is created if missing, once per process.</summary>
    public Task<TableClient> GetTableAsync(string table, CancellationToken cancellationToken)
    {
        var lazy = _tables.GetOrAdd(table, name => new Lazy<Task<TableClient>>(() => CreateAsync(name)));
        if (lazy.Value is { IsFaulted: false, IsCanceled: false } task)
        {
            return task.WaitAsync(cancellationToken);
        }

        // The last attempt to create the table failed (storage was down): try again rather than repeat the failure.
        var retry = new Lazy<Task<TableClient>>(() => CreateAsync(table));
        _tables.TryUpdate(table, retry, lazy);
        return _tables[table].Value.WaitAsync(cancellationToken);
    }

    private async Task<TableClient> CreateAsync(string table)
    {
        var client = TableService.GetTableClient(TableName(table));
        var response = await client.CreateIfNotExistsAsync(CancellationToken.None);

        // CreateIfNotExists does not throw for a failure other than "already exists": it hands back the error
        // response (a 503 after its retries, say). Treat that as the failure it is, so the next call tries again.
        var status = response?.GetRawResponse()?.Status ?? 0;
        if (status >= 400 && status != 409)
        {
            throw new RequestFailedException(status, $"Creating table {client.Name} failed with status {status}.");
        }

        return client;
    }
}
