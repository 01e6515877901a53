using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Installations;

/// <summary>
/// Keeps one record per installation (keyed by the pseudonymized anonymous id the install script sends):
/// when it started, succeeded or failed, its OS, version and last error. Updates are read, changed and written
/// with If-Match, so concurrent events of one installation do not overwrite each other.
/// </summary>
/// <remarks>
/// The record also decides what the daily figures count: the installation is counted once, on its start day (the
/// reporting day of its earliest Started, or of its earliest outcome when no Started is known), as started, and as
/// succeeded if it ever succeeded, else as failed if it ever failed. After each change the record's
/// <c>n_{installation}</c> activity mark on that day is written with those flags, the marks of days it was
/// attributed to before are cleared, and days that have ended are flagged dirty so the rollup recomputes them.
/// Each committed record has a higher <c>Revision</c>; a mark is only overwritten by a higher revision (read, then
/// written with If-Match), so a slow writer never puts back what a later one replaced.
/// </remarks>
public sealed class InstallationRecorder(TelemetryStorage storage, ReportingCalendar calendar, DirtyDays dirtyDays)
{
    private const int MaxAttempts = 8;

    public static string PartitionKeyOf(string installationKey) => TableKeys.Bucket(installationKey);

    public async Task RecordAsync(IReadOnlyList<PreparedEvent> events, CancellationToken cancellationToken)
    {
        var byInstallation = events
            .Where(e => e.InstallationKey is not null)
            .GroupBy(e => e.InstallationKey!, StringComparer.Ordinal)
            .ToList();
        if (byInstallation.Count == 0)
        {
            return;
        }

        var table = await storage.GetTableAsync(TableNames.Installations, cancellationToken);
        var activity = await storage.GetTableAsync(TableNames.Activity, cancellationToken);
        var markedDays = new HashSet<DateOnly>();
        foreach (var group in byInstallation)
        {
            var row = await RecordOneAsync(table, group.Key, group.OrderBy(e => e.Timestamp).ToList(), cancellationToken);
            markedDays.UnionWith(await WriteMarksAsync(activity, row, cancellationToken));
        }

        // After the marks, as DirtyDays requires: a recompute that clears a flag has seen every mark written before it.
        await dirtyDays.FlagEndedAsync(markedDays, cancellationToken);
    }

    private async Task<TableEntity> RecordOneAsync(TableClient table, string key, List<PreparedEvent> events, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var existing = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKeyOf(key), key, cancellationToken: cancellationToken);
            var row = Change(existing.HasValue ? existing.Value! : new TableEntity(PartitionKeyOf(key), key), events);

            try
            {
                if (existing.HasValue)
                {
                    await table.UpdateEntityAsync(row, row.ETag, TableUpdateMode.Replace, cancellationToken);
                }
                else
                {
                    await table.AddEntityAsync(row, cancellationToken);
                }

                return row;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412 or 404)
            {
                // A concurrent writer (or a retried write whose first response was lost): read again and reapply.
            }
        }

        throw new StorageContentionException($"The installation record could not be updated after {MaxAttempts} attempts because of concurrent writers.");
    }

    /// <summary>
    /// One committed change of a record: the events applied in time order, every day the installation was ever
    /// counted on listed (so the next write clears a day its start moved away from) and the revision raised.
    /// </summary>
    private TableEntity Change(TableEntity row, IEnumerable<PreparedEvent> events)
    {
        var attributedBefore = AttributedDays(row);
        foreach (var e in events)
        {
            Apply(row, e);
        }

        if (StartOf(row) is { } start)
        {
            attributedBefore.Add(calendar.DayOf(start));
        }

        row[AttributedDaysProperty] = string.Join(',', attributedBefore.Order().Select(TableKeys.Day));
        row[RevisionProperty] = (row.GetInt64(RevisionProperty) ?? 0) + 1;
        return row;
    }

    /// <summary>
    /// The rows these events would write for installations not recorded before (what a preview shows): the record and
    /// its activity marks, built as <see cref="RecordAsync"/> builds them.
    /// </summary>
    public IEnumerable<(string Table, TableEntity Row)> Plan(IReadOnlyList<PreparedEvent> events)
    {
        foreach (var group in events.Where(e => e.InstallationKey is not null).GroupBy(e => e.InstallationKey!, StringComparer.Ordinal))
        {
            var row = Change(new TableEntity(PartitionKeyOf(group.Key), group.Key), group.OrderBy(e => e.Timestamp));
            yield return (TableNames.Installations, row);
            foreach (var mark in MarksOf(row))
            {
                yield return (TableNames.Activity, mark);
            }
        }
    }

    /// <summary>The record property listing every reporting day (yyyyMMdd, comma-separated) the installation was counted on.</summary>
    public const string AttributedDaysProperty = "AttributedDays";

    /// <summary>The record property counting its committed changes; a mark carries the revision it was written from.</summary>
    public const string RevisionProperty = "Revision";

    /// <summary>When the installation started as far as is known: its earliest Started, else its earliest outcome.</summary>
    public static DateOnly? StartDayOf(TableEntity record, ReportingCalendar calendar) =>
        StartOf(record) is { } start ? calendar.DayOf(start) : null;

    private static DateTimeOffset? StartOf(TableEntity record)
    {
        if (record.GetDateTimeOffset("StartedAt") is { } started)
        {
            return started;
        }

        var succeeded = record.GetDateTimeOffset("SucceededAt");
        var failed = record.GetDateTimeOffset("FailedAt");
        return succeeded is null ? failed : failed is null ? succeeded : succeeded < failed ? succeeded : failed;
    }

    /// <summary>
    /// The days a record was counted on before: those it lists, and for a record written before they were listed,
    /// the days of its steps (where marks were written per event then).
    /// </summary>
    private SortedSet<DateOnly> AttributedDays(TableEntity record)
    {
        var days = new SortedSet<DateOnly>();
        if (record.GetString(AttributedDaysProperty) is { } listed)
        {
            foreach (var day in listed.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                days.Add(TableKeys.ParseDay(day));
            }
        }
        else
        {
            foreach (var step in (string[])["StartedAt", "SucceededAt", "FailedAt"])
            {
                if (record.GetDateTimeOffset(step) is { } at)
                {
                    days.Add(calendar.DayOf(at));
                }
            }
        }

        return days;
    }

    /// <summary>
    /// Writes the installation's mark on its start day and clears it on every other day it was counted on, each only
    /// if the mark there was written from an older revision of the record. Returns the days written.
    /// </summary>
    private async Task<List<DateOnly>> WriteMarksAsync(TableClient activity, TableEntity record, CancellationToken cancellationToken)
    {
        var written = new List<DateOnly>();
        foreach (var mark in MarksOf(record))
        {
            if (await WriteMarkAsync(activity, mark, cancellationToken))
            {
                written.Add(TableKeys.ParseDay(mark.PartitionKey));
            }
        }

        return written;
    }

    /// <summary>The record's mark on every day it was counted on: its flags on the start day, cleared on the others.</summary>
    private IEnumerable<TableEntity> MarksOf(TableEntity record)
    {
        var startDay = StartDayOf(record, calendar);
        return AttributedDays(record).Select(day => Mark(day, record, attributed: day == startDay));
    }

    private static async Task<bool> WriteMarkAsync(TableClient activity, TableEntity mark, CancellationToken cancellationToken)
    {
        var revision = mark.GetInt64(RevisionProperty) ?? 0;
        var counted = mark.GetBoolean("Started") == true;
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var existing = await activity.GetEntityIfExistsAsync<TableEntity>(mark.PartitionKey, mark.RowKey, cancellationToken: cancellationToken);
            if (existing.HasValue ? (existing.Value!.GetInt64(RevisionProperty) ?? 0) >= revision : !counted)
            {
                // Written from this revision or a later one already, or nothing to clear.
                return false;
            }

            try
            {
                if (existing.HasValue)
                {
                    // Merge keeps the SupportRequested flag, which support events set on the day they arrive.
                    await activity.UpdateEntityAsync(mark, existing.Value!.ETag, TableUpdateMode.Merge, cancellationToken);
                }
                else
                {
                    await activity.AddEntityAsync(mark, cancellationToken);
                }

                return true;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412 or 404)
            {
                // Another writer changed the mark meanwhile: read it again and compare revisions.
            }
        }

        throw new StorageContentionException($"The installation mark of {mark.PartitionKey} could not be written after {MaxAttempts} attempts because of concurrent writers.");
    }

    /// <summary>The installation's mark on a day: its flags if <paramref name="attributed"/> (the start day), else all cleared.</summary>
    private static TableEntity Mark(DateOnly day, TableEntity record, bool attributed)
    {
        var succeeded = record.GetDateTimeOffset("SucceededAt") is not null;
        var failed = record.GetDateTimeOffset("FailedAt") is not null;
        var mark = new TableEntity(TableKeys.Day(day), ActivityStore.InstallationPrefix + record.RowKey)
        {
            ["Started"] = attributed,
            ["Succeeded"] = attributed && succeeded,
            ["Failed"] = attributed && failed && !succeeded,
            [RevisionProperty] = record.GetInt64(RevisionProperty) ?? 0,
        };
        if (record.GetString("Os") is { } os)
        {
            mark["Os"] = os;
        }

        if (record.GetString("Version") is { } version)
        {
            mark["Version"] = version;
        }

        return mark;
    }

    /// <summary>Applying the same event twice gives the same row: times are the earliest seen for each step.</summary>
    private static void Apply(TableEntity row, PreparedEvent e)
    {
        var field = e.Category switch
        {
            EventCategory.InstallationStarted => "StartedAt",
            EventCategory.InstallationSucceeded => "SucceededAt",
            EventCategory.InstallationFailed => "FailedAt",
            EventCategory.InstallationSupport => "SupportRequestedAt",
            _ => null,
        };
        if (field is null)
        {
            return;
        }

        var previous = row.GetDateTimeOffset(field);
        if (previous is null || e.Timestamp < previous)
        {
            row[field] = e.Timestamp;
        }

        var succeeded = row.GetDateTimeOffset("SucceededAt");
        var failed = row.GetDateTimeOffset("FailedAt");
        row["Status"] = succeeded is not null && (failed is null || succeeded >= failed) ? "succeeded"
            : failed is not null ? "failed"
            : "started";

        if (e.Os is not null)
        {
            row["Os"] = e.Os;
        }

        if (e.Version is not null)
        {
            row["Version"] = e.Version;
        }

        if (e.Error is not null && e.Category == EventCategory.InstallationFailed)
        {
            row["LastError"] = e.Error;
        }

        var updated = row.GetDateTimeOffset("UpdatedAt");
        if (updated is null || e.ReceivedAt > updated)
        {
            row["UpdatedAt"] = e.ReceivedAt;
        }
    }
}
