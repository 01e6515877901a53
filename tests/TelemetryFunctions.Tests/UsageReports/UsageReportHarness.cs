using System.Text.Json;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;
using TelemetryFunctions.UsageReports;

namespace TelemetryFunctions.Tests.UsageReports;

/// <summary>The local host's services over a table and container prefix of their own, with the usage-report customers configured.</summary>
internal sealed class UsageReportHarness : IAsyncDisposable
{
    private readonly AzuriteFixture _azurite;

    public UsageReportHarness(AzuriteFixture azurite, FakeTimeProvider? time = null, HttpPipelinePolicy? storagePolicy = null, Dictionary<string, string?>? settings = null, CapturedLogs? logs = null)
    {
        _azurite = azurite;
        Time = time ?? new FakeTimeProvider(UsageReportSamples.Now);
        Host = new LocalHostFactory(azurite, Time, UsageReportSamples.Settings(settings), storagePolicy, logs);
    }

    public LocalHostFactory Host { get; }

    public FakeTimeProvider Time { get; }

    public UsageReportProcessor Processor => Host.Services.GetRequiredService<UsageReportProcessor>();

    public BlobContainerClient Reports => UsageReportSamples.Container(_azurite, Host.TablePrefix);

    public BlobContainerClient Quarantine => UsageReportSamples.Container(_azurite, Host.TablePrefix, "usage-reports-quarantine");

    public Task UploadAsync(string name, byte[] content) => UsageReportSamples.UploadAsync(_azurite, Host.TablePrefix, name, content);

    public Task<UsageReportOutcome> ProcessAsync(string name) => Processor.ProcessAsync(name, TestContext.Current.CancellationToken);

    public async Task<UsageReportOutcome> UploadAndProcessAsync(string name, byte[] content)
    {
        await UploadAsync(name, content);
        return await ProcessAsync(name);
    }

    public Task<List<TableEntity>> RowsAsync(string table) => Host.Tables.RowsAsync(table);

    /// <summary>The rows of the usage tables that readers count: reports and monthly totals (not the head rows).</summary>
    public async Task<List<TableEntity>> MonthlyAsync() =>
        [.. (await RowsAsync(TableNames.UsageMonthly)).Where(r => r.ContainsKey("Metric")).OrderBy(r => r.RowKey, StringComparer.Ordinal)];

    public async Task<List<TableEntity>> ReportRecordsAsync() =>
        [.. (await RowsAsync(TableNames.UsageReports)).Where(r => r.RowKey.StartsWith("r_", StringComparison.Ordinal))];

    public static async Task<List<string>> NamesAsync(BlobContainerClient container)
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(cancellationToken: TestContext.Current.CancellationToken))
        {
            names.Add(blob.Name);
        }

        return names;
    }

    public async Task<JsonElement> ErrorDocumentAsync(string blobName)
    {
        var content = await Quarantine.GetBlobClient(blobName + UsageReportContainers.ErrorSuffix).DownloadContentAsync(TestContext.Current.CancellationToken);
        return JsonDocument.Parse(content.Value.Content.ToMemory()).RootElement.Clone();
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>
/// Lets the first <see cref="Pass"/> matching storage requests through and fails the rest at once (a fault the SDK does
/// not retry), as when the process dies or storage stops answering in the middle of a report.
/// </summary>
internal sealed class FailAfter : HttpPipelinePolicy
{
    private int _seen;
    private int _injected;

    public Func<HttpMessage, bool>? Matches { get; set; }

    public int Pass { get; set; }

    public int Injected => Volatile.Read(ref _injected);

    public static bool IsTransaction(HttpMessage message) => message.Request.Uri.Path.EndsWith("$batch", StringComparison.Ordinal);

    public void Heal() => Matches = null;

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (Matches?.Invoke(message) == true && Interlocked.Increment(ref _seen) > Pass)
        {
            Interlocked.Increment(ref _injected);
            throw new InvalidOperationException("Injected fault: storage stopped answering.");
        }

        await ProcessNextAsync(message, pipeline);
    }
}

/// <summary>
/// Stops a run at the first matching storage request past <see cref="Pass"/>, as a host's timeout or a killed process stops
/// it: the run's token is cancelled and the request never reaches storage, so the run records nothing of what happened.
/// </summary>
internal sealed class StopRun : HttpPipelinePolicy, IDisposable
{
    private CancellationTokenSource? _run;
    private int _seen;

    public Func<HttpMessage, bool>? Matches { get; set; }

    public int Pass { get; set; }

    /// <summary>A token for the next run, counting matching requests afresh.</summary>
    public CancellationToken NextRun()
    {
        _run?.Dispose();
        _run = new CancellationTokenSource();
        Interlocked.Exchange(ref _seen, 0);
        return _run.Token;
    }

    public void Heal() => Matches = null;

    public void Dispose() => _run?.Dispose();

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        if (Matches?.Invoke(message) == true && _run is { } run && Interlocked.Increment(ref _seen) > Pass)
        {
            await run.CancelAsync();
            throw new OperationCanceledException(run.Token);
        }

        await ProcessNextAsync(message, pipeline);
    }
}
