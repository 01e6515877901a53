using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// The report container (<c>usage-reports</c>) and the quarantine container (<c>usage-reports-quarantine</c>), created
/// on first use. A quarantined report keeps its name, with <c>{name}.error.json</c> beside it saying why, in words. Nothing
/// in quarantine is ever overwritten: where an earlier report already holds the name (a report uploaded again under the
/// same name and refused again, say), the report goes under <c>{name}~{tag}.json</c> (<see cref="UsageReportKeys.Tagged"/>;
/// the tag is derived from the blob's name and ETag) with its error document beside it under the matching name.
/// </summary>
public sealed class UsageReportContainers(TelemetryStorage storage, IOptions<UsageReportOptions> options, TimeProvider time)
{
    private Task<BlobContainerClient>? _reports;
    private Task<BlobContainerClient>? _quarantine;

    public const string ErrorSuffix = ".error.json";

    /// <summary>
    /// Metadata of the copy and of the error document in quarantine: the blob they are of, as it was judged (a hash of its
    /// name and ETag). A quarantine name that holds anything else belongs to another report.
    /// </summary>
    private const string JudgedMetadata = "judgedblob";

    /// <summary>How many names in quarantine are tried for one blob (its own, then tagged ones).</summary>
    private const int MaxNames = 10;

    /// <summary>The longest blob name Azure Storage accepts.</summary>
    private const int MaxBlobName = 1024;

    public Task<BlobContainerClient> ReportsAsync(CancellationToken cancellationToken) =>
        EnsureAsync(ref _reports, options.Value.Container, cancellationToken);

    public Task<BlobContainerClient> QuarantineAsync(CancellationToken cancellationToken) =>
        EnsureAsync(ref _quarantine, options.Value.QuarantineContainer, cancellationToken);

    /// <summary>
    /// Writes the error document, copies the blob to quarantine (streamed, never held in memory), records the outcome
    /// through <paramref name="record"/>, then deletes the original if it is still the blob that was judged. Each step
    /// is safe to repeat, so a move interrupted by a crash is finished by the next attempt: the name in quarantine is
    /// the first one free or already holding this very blob, so a repeated move finds its own copy again and never
    /// overwrites another report's.
    /// </summary>
    public async Task QuarantineAsync(string blobName, ETag judged, JsonObject errorDocument, Func<Task> record, CancellationToken cancellationToken)
    {
        var reports = await ReportsAsync(cancellationToken);
        var quarantine = await QuarantineAsync(cancellationToken);
        var mark = UsageReportKeys.Hash(blobName + "\u001F" + UsageBlobLedger.Normalize(judged));
        var name = await QuarantineNameAsync(quarantine, blobName, mark, cancellationToken);
        errorDocument["quarantinedAt"] = time.GetUtcNow();
        await WriteErrorDocumentAsync(
            quarantine.GetBlobClient(name + ErrorSuffix),
            BinaryData.FromString(errorDocument.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })),
            mark,
            cancellationToken);

        var source = reports.GetBlobClient(blobName);
        try
        {
            var properties = await source.GetPropertiesAsync(new BlobRequestConditions { IfMatch = judged }, cancellationToken);
            await using var content = await source.OpenReadAsync(
                new BlobOpenReadOptions(allowModifications: false) { BufferSize = 1024 * 1024, Conditions = new BlobRequestConditions { IfMatch = judged } },
                cancellationToken);
            await CopyAsync(
                quarantine.GetBlobClient(name),
                content,
                new BlobUploadOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = properties.Value.ContentType, ContentEncoding = properties.Value.ContentEncoding },
                    Metadata = new Dictionary<string, string>(properties.Value.Metadata, StringComparer.OrdinalIgnoreCase) { [JudgedMetadata] = mark },
                    Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                },
                mark,
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

    /// <summary>
    /// The blob's own name if it is free in quarantine (or holds this very blob, moved there before), else the first free
    /// tagged one. A name too long to have its error document beside it (Azure allows 1,024 characters) is shortened
    /// and tagged; the error document names the blob as it was.
    /// </summary>
    private static async Task<string> QuarantineNameAsync(BlobContainerClient quarantine, string blobName, string mark, CancellationToken cancellationToken)
    {
        for (var i = 0; i < MaxNames; i++)
        {
            var name = i == 0 && blobName.Length + ErrorSuffix.Length <= MaxBlobName
                ? blobName
                : TaggedWithin(blobName, i <= 1 ? mark[..16] : $"{mark[..16]}-{i}", MaxBlobName - ErrorSuffix.Length);
            if (await IsFreeOrOwnAsync(quarantine.GetBlobClient(name), mark, cancellationToken)
                && await IsFreeOrOwnAsync(quarantine.GetBlobClient(name + ErrorSuffix), mark, cancellationToken))
            {
                return name;
            }
        }

        throw new InvalidOperationException($"Every name tried in the quarantine container for a usage report blob is taken ({MaxNames} names).");
    }

    /// <summary><see cref="UsageReportKeys.Tagged"/>, with as much of the name's start cut as it takes to stay within <paramref name="maxLength"/>.</summary>
    internal static string TaggedWithin(string name, string tag, int maxLength)
    {
        var tagged = UsageReportKeys.Tagged(name, tag);
        var excess = tagged.Length - maxLength;
        if (excess <= 0)
        {
            return tagged;
        }

        // Cut from the part before the tag, keeping the customer's folder at the start and the ending after the tag,
        // never between the two halves of a surrogate pair.
        var beforeTag = tagged.LastIndexOf('~');
        var keep = beforeTag - excess;
        if (keep > 0 && char.IsHighSurrogate(tagged[keep - 1]))
        {
            keep--;
        }

        return tagged[..keep] + tagged[beforeTag..];
    }

    private static async Task<bool> IsFreeOrOwnAsync(BlobClient blob, string mark, CancellationToken cancellationToken) =>
        await MarkOfAsync(blob, cancellationToken) is not { } held || held == mark;

    /// <summary>The <see cref="JudgedMetadata"/> of a blob in quarantine: null when there is no such blob, empty when it has none.</summary>
    private static async Task<string?> MarkOfAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
            return properties.Value.Metadata.TryGetValue(JudgedMetadata, out var mark) ? mark : "";
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Creates the copy; finds it already there when an earlier attempt made it. Another report's blob under the name is never replaced.</summary>
    private static async Task CopyAsync(BlobClient target, Stream content, BlobUploadOptions upload, string mark, CancellationToken cancellationToken)
    {
        try
        {
            await target.UploadAsync(content, upload, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            var held = await MarkOfAsync(target, cancellationToken);
            if (held is null)
            {
                // The name is free: the condition that failed was the source's (replaced or deleted meanwhile).
                throw;
            }

            if (held != mark)
            {
                throw new StorageContentionException("Another usage report took the name in quarantine meanwhile; the next attempt chooses another.");
            }
        }
    }

    /// <summary>Creates the error document, or rewrites this blob's own (an earlier attempt's); another report's is never replaced.</summary>
    private static async Task WriteErrorDocumentAsync(BlobClient target, BinaryData document, string mark, CancellationToken cancellationToken)
    {
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/json; charset=utf-8" },
            Metadata = new Dictionary<string, string> { [JudgedMetadata] = mark },
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
        };
        try
        {
            await target.UploadAsync(document, upload, cancellationToken);
            return;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
        }

        var existing = await target.GetPropertiesAsync(cancellationToken: cancellationToken);
        if (!existing.Value.Metadata.TryGetValue(JudgedMetadata, out var held) || held != mark)
        {
            throw new StorageContentionException("Another usage report took the name in quarantine meanwhile; the next attempt chooses another.");
        }

        upload.Conditions = new BlobRequestConditions { IfMatch = existing.Value.ETag };
        await target.UploadAsync(document, upload, cancellationToken);
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
