using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Scheduling;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Http;

/// <summary>
/// Operator endpoints: recompute a range of days and return the figures, or run the sweep or retention now.
/// Authorization (the admin key) is the host's job: function keys in Azure, an endpoint filter in the local host.
/// </summary>
public sealed partial class AdminEndpoints(
    DailyRollup rollup,
    TelemetryJobs jobs,
    ReportingCalendar calendar,
    IOptions<TelemetryOptions> options,
    TimeProvider time,
    ILogger<AdminEndpoints> logger)
{

    /// <summary><c>POST /api/admin/rollup?from=YYYY-MM-DD&amp;to=YYYY-MM-DD</c>.</summary>
    public async Task<IResult> RollupAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (QueryParameters.FindRepeated(request, "from", "to") is { } repeated)
        {
            return JsonResponse.Error(repeated);
        }

        var (from, to, error) = ParseRange(request.Query["from"], request.Query["to"]);
        if (error is not null)
        {
            return JsonResponse.Error(error);
        }

        return await GuardAsync(async () =>
        {
            var days = await rollup.RunRangeAsync(from, to, progress: null, cancellationToken);
            return JsonResponse.Ok(new AdminRollupResponse(true, from, to, days), ResponseJsonContext.Default.AdminRollupResponse);
        }, cancellationToken);
    }

    /// <summary><c>POST /api/admin/sweep</c>.</summary>
    public Task<IResult> SweepAsync(CancellationToken cancellationToken) =>
        GuardAsync(async () => JsonResponse.Ok(new AdminJobResponse<Instances.SweepResult>(true, await jobs.SweepAsync(cancellationToken)), ResponseJsonContext.Default.AdminJobResponseSweepResult), cancellationToken);

    /// <summary><c>POST /api/admin/retention</c>.</summary>
    public Task<IResult> RetentionAsync(CancellationToken cancellationToken) =>
        GuardAsync(async () => JsonResponse.Ok(new AdminJobResponse<Retention.RetentionResult>(true, await jobs.RetentionAsync(cancellationToken)), ResponseJsonContext.Default.AdminJobResponseRetentionResult), cancellationToken);

    /// <summary>Validates a <c>from</c>/<c>to</c> pair of days: both given, in order, ended, not longer than allowed, and not reaching days whose activity retention deleted.</summary>
    public (DateOnly From, DateOnly To, IngestError? Error) ParseRange(string? fromText, string? toText)
    {
        if (!TryParseDay(fromText, out var from) || !TryParseDay(toText, out var to))
        {
            return (default, default, IngestError.BadRequest("invalid_range", "Give from and to as days in the form YYYY-MM-DD."));
        }

        if (from > to)
        {
            return (default, default, IngestError.BadRequest("invalid_range", "from must not be after to."));
        }

        var lastComplete = calendar.LastCompleteDay(time.GetUtcNow());
        if (to > lastComplete)
        {
            return (default, default, IngestError.BadRequest("invalid_range", string.Create(CultureInfo.InvariantCulture, $"to must be a day that has ended in {calendar.Zone.Id}: {lastComplete:yyyy-MM-dd} or earlier.")));
        }

        var maxDays = options.Value.Activity.MaxBackfillDays;
        if (to.DayNumber - from.DayNumber + 1 > maxDays)
        {
            return (default, default, IngestError.BadRequest("invalid_range", $"The range covers more than {maxDays} days; split it."));
        }

        var firstRecomputable = rollup.FirstRecomputableDay(time.GetUtcNow());
        if (from < firstRecomputable)
        {
            return (default, default, IngestError.BadRequest(
                "invalid_range",
                string.Create(CultureInfo.InvariantCulture, $"from must be {firstRecomputable:yyyy-MM-dd} or later: activity older than {options.Value.Activity.RawEventRetentionDays} days has been deleted by retention, ")
                + $"and a day is recomputed from its own activity and the {DailyRollup.MauWindowDays - 1} days before it (MAU), so an earlier day would overwrite its kept figures with incomplete ones."));
        }

        return (from, to, null);
    }

    private static bool TryParseDay(string? text, out DateOnly day) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);

    private async Task<IResult> GuardAsync(Func<Task<IResult>> run, CancellationToken cancellationToken)
    {
        try
        {
            return await run();
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(logger, e);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage unavailable during an admin request; answered 503")]
    private static partial void LogStorageUnavailable(ILogger logger, Exception exception);
}
