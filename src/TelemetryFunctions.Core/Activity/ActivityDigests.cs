using System.Buffers.Binary;
using System.Globalization;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Activity;

/// <summary>
/// A day's active users as a sorted list of their 128-bit pseudonyms, one blob per day
/// (<c>activity-digests/{yyyyMMdd}/users</c>, 16 bytes per user). WAU and MAU are exact distinct counts over 7 and
/// 30 of these, computed by a streaming k-way merge: each day is read from the activity table once (to build its
/// digest), never 30 times, and memory holds one buffer per day, not the users.
/// </summary>
public sealed class ActivityDigests(TelemetryStorage storage)
{
    private const int BytesPerUser = 16;
    private const int MaxRewriteAttempts = 5;
    private const int MaxReadAttempts = 5;
    private BlobContainerClient? _container;

    /// <summary>Reads the day's user marks from the activity table, sorts them and stores the digest. Returns the count.</summary>
    public async Task<int> BuildAsync(DateOnly day, IEnumerable<string> userKeys, CancellationToken cancellationToken)
    {
        var users = new List<UInt128>();
        foreach (var key in userKeys)
        {
            users.Add(UInt128.Parse(key, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }

        users.Sort();
        var bytes = new byte[users.Count * BytesPerUser];
        var written = 0;
        UInt128? previous = null;
        foreach (var user in users)
        {
            if (user == previous)
            {
                continue;
            }

            BinaryPrimitives.WriteUInt128BigEndian(bytes.AsSpan(written, BytesPerUser), user);
            written += BytesPerUser;
            previous = user;
        }

        var container = await ContainerAsync(cancellationToken);
        await container.GetBlobClient(BlobName(day)).UploadAsync(new BinaryData(bytes.AsMemory(0, written)), overwrite: true, cancellationToken);
        return written / BytesPerUser;
    }

    /// <summary>Builds the digest of a day from its activity partition, reading only the user marks.</summary>
    public async Task<int> BuildFromActivityAsync(DateOnly day, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        var keys = new List<string>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {TableKeys.Day(day)} and RowKey ge {ActivityStore.UserPrefix} and RowKey lt {ActivityStore.UserMarksEnd}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, select: ["RowKey"], cancellationToken: cancellationToken))
        {
            keys.Add(row.RowKey[ActivityStore.UserPrefix.Length..]);
        }

        return await BuildAsync(day, keys, cancellationToken);
    }

    public async Task<bool> ExistsAsync(DateOnly day, CancellationToken cancellationToken)
    {
        var container = await ContainerAsync(cancellationToken);
        return await container.GetBlobClient(BlobName(day)).ExistsAsync(cancellationToken);
    }

    /// <summary>Distinct users over the given days; a day without a digest is built from its activity partition first.</summary>
    /// <remarks>
    /// A digest is read in chunks, each checked against the ETag of the first, so a digest rewritten during the read (a
    /// concurrent rollup or backfill rebuilding the day, an erasure removing a user) fails the read with 412 rather than
    /// mixing two versions. The count is then started again from fresh reads; a digest still changing after
    /// <see cref="MaxReadAttempts"/> attempts throws <see cref="StorageContentionException"/> (retry later).
    /// </remarks>
    public async Task<int> CountDistinctAsync(IEnumerable<DateOnly> days, CancellationToken cancellationToken)
    {
        var dayList = days.ToList();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await CountDistinctOnceAsync(dayList, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                if (attempt >= MaxReadAttempts)
                {
                    throw new StorageContentionException($"A digest of {TableKeys.Day(dayList[0])}..{TableKeys.Day(dayList[^1])} kept changing through {MaxReadAttempts} attempts to read it.");
                }
            }
        }
    }

    private async Task<int> CountDistinctOnceAsync(IReadOnlyList<DateOnly> days, CancellationToken cancellationToken)
    {
        var container = await ContainerAsync(cancellationToken);
        var readers = new List<DigestReader>();
        try
        {
            foreach (var day in days)
            {
                var blob = container.GetBlobClient(BlobName(day));
                Stream stream;
                try
                {
                    stream = await blob.OpenReadAsync(new Azure.Storage.Blobs.Models.BlobOpenReadOptions(allowModifications: false) { BufferSize = 64 * 1024 }, cancellationToken);
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    await BuildFromActivityAsync(day, cancellationToken);
                    stream = await blob.OpenReadAsync(new Azure.Storage.Blobs.Models.BlobOpenReadOptions(allowModifications: false) { BufferSize = 64 * 1024 }, cancellationToken);
                }

                readers.Add(new DigestReader(stream));
            }

            var queue = new PriorityQueue<DigestReader, UInt128>();
            foreach (var reader in readers)
            {
                if (await reader.MoveNextAsync(cancellationToken))
                {
                    queue.Enqueue(reader, reader.Current);
                }
            }

            var distinct = 0;
            UInt128? last = null;
            while (queue.TryDequeue(out var reader, out var value))
            {
                if (value != last)
                {
                    distinct++;
                    last = value;
                }

                if (await reader.MoveNextAsync(cancellationToken))
                {
                    queue.Enqueue(reader, reader.Current);
                }
            }

            return distinct;
        }
        finally
        {
            foreach (var reader in readers)
            {
                await reader.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Removes one user from a day's digest (an erasure), rewriting the blob with If-Match so a concurrent rebuild is
    /// never overwritten with older content. True if the user was in it.
    /// </summary>
    public async Task<bool> RemoveUserAsync(DateOnly day, string userKey, CancellationToken cancellationToken)
    {
        if (!UInt128.TryParse(userKey, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var user))
        {
            return false;
        }

        var blob = (await ContainerAsync(cancellationToken)).GetBlobClient(BlobName(day));
        for (var attempt = 1; attempt <= MaxRewriteAttempts; attempt++)
        {
            BlobDownloadResult digest;
            try
            {
                digest = (await blob.DownloadContentAsync(cancellationToken)).Value;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return false;
            }

            var bytes = digest.Content.ToMemory();
            var index = IndexOf(bytes.Span, user);
            if (index < 0)
            {
                return false;
            }

            var without = new byte[bytes.Length - BytesPerUser];
            bytes.Span[..(index * BytesPerUser)].CopyTo(without);
            bytes.Span[((index + 1) * BytesPerUser)..].CopyTo(without.AsSpan(index * BytesPerUser));
            try
            {
                await blob.UploadAsync(
                    new BinaryData(without),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = digest.Details.ETag } },
                    cancellationToken);
                return true;
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                // Rebuilt meanwhile: read it again.
            }
        }

        throw new StorageContentionException($"The digest of {TableKeys.Day(day)} kept changing through {MaxRewriteAttempts} attempts to remove a user.");
    }

    /// <summary>Binary search of a sorted digest for one pseudonym; its position, or -1.</summary>
    private static int IndexOf(ReadOnlySpan<byte> digest, UInt128 user)
    {
        int low = 0, high = (digest.Length / BytesPerUser) - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) / 2);
            var value = BinaryPrimitives.ReadUInt128BigEndian(digest.Slice(middle * BytesPerUser, BytesPerUser));
            if (value == user)
            {
                return middle;
            }

            if (value < user)
            {
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return -1;
    }

    /// <summary>Deletes digests of days before <paramref name="before"/> (they hold per-user data).</summary>
    public async Task<int> DeleteBeforeAsync(DateOnly before, CancellationToken cancellationToken)
    {
        var container = await ContainerAsync(cancellationToken);
        var deleted = 0;
        await foreach (var blob in container.GetBlobsAsync(cancellationToken: cancellationToken))
        {
            if (string.CompareOrdinal(blob.Name, TableKeys.Day(before)) < 0)
            {
                await container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken);
                deleted++;
            }
        }

        return deleted;
    }

    private static string BlobName(DateOnly day) => TableKeys.Day(day) + "/users";

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken cancellationToken)
    {
        if (_container is null)
        {
            var container = storage.BlobService.GetBlobContainerClient(storage.ContainerName(TableNames.ActivityDigestsContainer));
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _container = container;
        }

        return _container;
    }

    private sealed class DigestReader(Stream stream) : IAsyncDisposable
    {
        private readonly byte[] _buffer = new byte[BytesPerUser];

        public UInt128 Current { get; private set; }

        public async ValueTask<bool> MoveNextAsync(CancellationToken cancellationToken)
        {
            var read = 0;
            while (read < BytesPerUser)
            {
                var n = await stream.ReadAsync(_buffer.AsMemory(read), cancellationToken);
                if (n == 0)
                {
                    return false;
                }

                read += n;
            }

            Current = BinaryPrimitives.ReadUInt128BigEndian(_buffer);
            return true;
        }

        public ValueTask DisposeAsync() => stream.DisposeAsync();
    }
}
