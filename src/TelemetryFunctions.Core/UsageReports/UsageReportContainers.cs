using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// The report container (<c>usage-reports</c>) and the quarantine container (<c>usage-reports-quarantine</c>), created
/// on first use. A quarantined report keeps its name; <c>{name}.error.json</c> beside it says why, in words.
/// </summary>
public sealed class UsageReportContainers(TelemetryStorage storage, IOptions<UsageReportOptions> options, TimeProvider time)
{
    private Task<BlobContainerClient>? _reports;
    private Task<BlobContainerClient>? _quarantine;

    public const string ErrorSuffix = ".error.json";

    public Task<BlobContainerClient> ReportsAsync(CancellationToken cancellationToken) =>
        EnsureAsync(ref _reports, options.Value.Container, cancellationToken);

    public Task<BlobContainerClient> QuarantineAsync(CancellationToken cancellationToken) =>
        EnsureAsync(ref _quarantine, options.Value.QuarantineContainer, cancellationToken);

    /// <summary>
    /// Writes the error document, copies the blob to quarantine (streamed, never held in memory), records the outcome
    /// through <paramref name="record"/>, then deletes the original if it is still the blob that was judged. Each step
    /// is safe to repeat, so a move interrupted by a crash is finished by the next attempt.
    /// </summary>
    public async Task QuarantineAsync(string blobName, ETag judged, JsonObject errorDocument, Func<Task> record, CancellationToken cancellationToken)
    {
        var reports = await ReportsAsync(cancellationToken);
        var quarantine = await QuarantineAsync(cancellationToken);
        errorDocument["quarantinedAt"] = time.GetUtcNow();
        await quarantine.GetBlobClient(blobName + ErrorSuffix).UploadAsync(
            BinaryData.FromString(errorDocument.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })),
            new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "application/json; charset=utf-8" } },
            cancellationToken);

        var source = reports.GetBlobClient(blobName);
        try
        {
            var properties = await source.GetPropertiesAsync(new BlobRequestConditions { IfMatch = judged }, cancellationToken);
            await using var content = await source.OpenReadAsync(
                new BlobOpenReadOptions(allowModifications: false) { BufferSize = 1024 * 1024, Conditions = new BlobRequestConditions { IfMatch = judged } },
                cancellationToken);
            await quarantine.GetBlobClient(blobName).UploadAsync(
                content,
                new BlobUploadOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = properties.Value.ContentType, ContentEncoding = properties.Value.ContentEncoding },
                    Metadata = properties.Value.Metadata,
                },
                cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            // Already moved (an earlier attempt got this far), or replaced by a new upload, which is judged on its own.
        }

        await record();

        try
        {
            await source.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, new BlobRequestConditions { IfMatch = judged }, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            // A new upload under the same name arrived meanwhile: it stays and is processed on its own.
        }
    }

    private async Task<BlobContainerClient> CreateAsync(string name, CancellationToken cancellationToken)
    {
        var container = storage.BlobService.GetBlobContainerClient(storage.ContainerName(name));
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        return container;
    }

    private Task<BlobContainerClient> EnsureAsync(ref Task<BlobContainerClient>? slot, string name, CancellationToken cancellationToken)
    {
        var current = slot;
        if (current is { IsCompletedSuccessfully: true } || current is { IsCompleted: false })
        {
            return current.WaitAsync(cancellationToken);
        }

        // First use, or the last creation failed (storage was down): try again.
        var created = CreateAsync(name, CancellationToken.None);
        slot = created;
        return created.WaitAsync(cancellationToken);
    }
}
