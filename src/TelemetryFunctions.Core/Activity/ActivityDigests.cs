using System.Buffers.Binary;
using System.Globalization;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Activity;

/// <summary>
/// A day's active users as a sorted list of their 128-bit pseudonyms, one blob per day
/// (<c>activity-digests/{yyyyMMdd}/users</c>, 16 bytes per user). WAU and MAU are exact distinct counts over 7 and
/// 30 of these, computed by a streaming k-way merge: each day is read from the activity table when its digest is
/// built (and its keys once more, see <see cref="TakeOutErasedAsync"/>), never 30 times, and memory holds one buffer
/// per day, not the users.
/// </summary>
public sealed class ActivityDigests(TelemetryStorage storage, SuppressionList suppressions)
{
    private const int BytesPerUser = 16;
    private const int MaxRewriteAttempts = 5;
    private const int MaxReadAttempts = 5;
    private BlobContainerClient? _container;

    /// <summary>
    /// Stores the digest of a day from the user keys its rollup read from the day's user marks, then takes out of it
    /// every user erased meanwhile (<see cref="TakeOutErasedAsync"/>). Returns how many users it holds.
    /// </summary>
    public Task<int> BuildFromMarksAsync(DateOnly day, IEnumerable<string> markedUserKeys, CancellationToken cancellationToken) =>
        BuildFromMarksAsync(day, Parse(markedUserKeys), cancellationToken);

    private async Task<int> BuildFromMarksAsync(DateOnly day, List<UInt128> markedUsers, CancellationToken cancellationToken)
    {
        var written = await UploadAsync(day, markedUsers, cancellationToken);
        return written.Count - await TakeOutErasedAsync(day, written, cancellationToken);
    }

    /// <summary>Stores the digest of the given user keys as a day's, as they are (a test or benchmark seeding digests). Returns the count.</summary>
    public async Task<int> BuildAsync(DateOnly day, IEnumerable<string> userKeys, CancellationToken cancellationToken) =>
        (await UploadAsync(day, Parse(userKeys), cancellationToken)).Count;

    private static List<UInt128> Parse(IEnumerable<string> userKeys) =>
        [.. userKeys.Select(key => UInt128.Parse(key, NumberStyles.HexNumber, CultureInfo.InvariantCulture))];

    /// <summary>Sorts the users, drops repeats and uploads the digest over any stored one. Returns them (sorted, distinct: the list given).</summary>
    private async Task<List<UInt128>> UploadAsync(DateOnly day, List<UInt128> users, CancellationToken cancellationToken)
    {
        users.Sort();
        var distinct = 0;
        for (var i = 0; i < users.Count; i++)
        {
            if (distinct == 0 || users[i] != users[distinct - 1])
            {
                users[distinct++] = users[i];
            }
        }

        users.RemoveRange(distinct, users.Count - distinct);
        var bytes = new byte[users.Count * BytesPerUser];
        for (var i = 0; i < users.Count; i++)
        {
            BinaryPrimitives.WriteUInt128BigEndian(bytes.AsSpan(i * BytesPerUser, BytesPerUser), users[i]);
        }

        var container = await ContainerAsync(cancellationToken);
        await container.GetBlobClient(BlobName(day)).UploadAsync(new BinaryData(bytes), overwrite: true, cancellationToken);
        return users;
    }

    /// <summary>
    /// Takes out of a digest just uploaded (holding <paramref name="written"/>) the users suppressed now and those whose
    /// mark of the day is gone now. Returns how many it took out.
    /// </summary>
    /// <remarks>
    /// <para>
    /// An erasure writes the subject's suppression, then takes the user out of the digests of the days their marks
    /// name, then deletes the marks (they are how a repeated or completed erasure finds those days). A rollup that read
    /// a mark before the erasure deleted it uploads a digest holding the user; if that upload comes after the
    /// erasure's edit of the digest, nothing else would take the user out again. So, after the upload, this reads the
    /// suppressed users from storage (not a host's cached list, which may be older than another host's opt-out), then
    /// the day's user marks, and rewrites the digest without any user suppressed or no longer marked.
    /// </para>
    /// <para>
    /// Every interleaving ends with the user out. If the erasure's edit reads the digest after the upload, it takes the
    /// user out itself (its write is conditional, so an upload between its read and its write makes it read again).
    /// Otherwise the suppression was written before that edit, so before the upload and before the read of the
    /// suppressions here: that read sees it, unless the suppression was lifted (sharing re-enabled) before it. A lift
    /// comes after the erasure deleted the marks, so the read of the marks here, which comes after, finds the user's
    /// mark gone; a mark the user has again is one written after the lift, for events they allowed, and is kept.
    /// The rewrite is conditional on the version of the digest it read, and is done again from a fresh read when the
    /// digest changed meanwhile (another run's upload, which then checks for itself too).
    /// </para>
    /// <para>
    /// Both reads are one query each, keys only: the suppression list is what every ingest host reads each refresh
    /// interval, and the marks are the partition the rollup has just read, read again for their keys (16 bytes a user
    /// in memory, as the digest).
    /// </para>
    /// </remarks>
    private async Task<int> TakeOutErasedAsync(DateOnly day, List<UInt128> written, CancellationToken cancellationToken)
    {
        if (written.Count == 0)
        {
            return 0;
        }

        var suppressed = (await suppressions.ReadSuppressedUsersAsync(cancellationToken)).Select(ParseKey).OfType<UInt128>().ToHashSet();
        var marked = await ReadMarkedUsersAsync(day, cancellationToken);
        marked.Sort();
        var erased = written.Where(u => suppressed.Contains(u) || marked.BinarySearch(u) < 0).ToHashSet();
        if (erased.Count == 0)
        {
            return 0;
        }

        return await RemoveUsersAsync(day, erased, cancellationToken);
    }

    private static UInt128? ParseKey(string key) =>
        UInt128.TryParse(key, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var user) ? user : null;

    /// <summary>Builds the digest of a day from its activity partition, reading only the user marks.</summary>
    public async Task<int> BuildFromActivityAsync(DateOnly day, CancellationToken cancellationToken) =>
        await BuildFromMarksAsync(day, await ReadMarkedUsersAsync(day, cancellationToken), cancellationToken);

    /// <summary>
    /// The users of a day's user marks, as stored now: the day's partition read by its key alone, keys only (the
    /// other marks are few beside the users'; a row-key range in the filter made Azurite, which evaluates the filter
    /// over every row for every page, several times slower).
    /// </summary>
    private async Task<List<UInt128>> ReadMarkedUsersAsync(DateOnly day, CancellationToken cancellationToken)
    {
        var table = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        var users = new List<UInt128>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {TableKeys.Day(day)}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, select: ["RowKey"], cancellationToken: cancellationToken))
        {
            if (row.RowKey.StartsWith(ActivityStore.UserPrefix, StringComparison.Ordinal) && ParseKey(row.RowKey[ActivityStore.UserPrefix.Length..]) is { } user)
            {
                users.Add(user);
            }
        }

        return users;
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
    public async Task<bool> RemoveUserAsync(DateOnly day, string userKey, CancellationToken cancellationToken) =>
        ParseKey(userKey) is { } user && await RemoveUsersAsync(day, new HashSet<UInt128> { user }, cancellationToken) > 0;

    /// <summary>
    /// Removes users from a day's digest, rewriting the blob with If-Match on the version read and reading it again
    /// when it changed meanwhile, so a concurrent rebuild is never overwritten with older content. Returns how many of
    /// them it held.
    /// </summary>
    private async Task<int> RemoveUsersAsync(DateOnly day, HashSet<UInt128> users, CancellationToken cancellationToken)
    {
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
                return 0;
            }

            var bytes = digest.Content.ToMemory();
            var kept = new byte[bytes.Length];
            var length = 0;
            for (var offset = 0; offset + BytesPerUser <= bytes.Length; offset += BytesPerUser)
            {
                var entry = bytes.Span.Slice(offset, BytesPerUser);
                if (!users.Contains(BinaryPrimitives.ReadUInt128BigEndian(entry)))
                {
                    entry.CopyTo(kept.AsSpan(length));
                    length += BytesPerUser;
                }
            }

            var removed = (bytes.Length - length) / BytesPerUser;
            if (removed == 0)
            {
                return 0;
            }

            try
            {
                await blob.UploadAsync(
                    new BinaryData(kept.AsMemory(0, length)),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = digest.Details.ETag } },
                    cancellationToken);
                return removed;
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                // Rebuilt meanwhile: read it again.
            }
        }

        throw new StorageContentionException($"The digest of {TableKeys.Day(day)} kept changing through {MaxRewriteAttempts} attempts to remove users.");
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
