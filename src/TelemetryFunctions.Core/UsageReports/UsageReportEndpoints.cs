using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Reporting;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// <c>POST /v1/usage-reports</c> and <c>GET /v1/usage-reports/{id}</c> for customers (their report key, HTTP Basic
/// user name or Bearer token), and <c>GET /api/usage</c> for operators (the host checks the admin key). The upload
/// stores the report as sent, under <c>{customerId}/{reportId}.json[.gz]</c> (tagged with its content hash where a blob
/// of other content has that name), and answers 202: the blob event (or the local host's watcher) processes it like any
/// other upload, and the status URL tells how that ended.
/// </summary>
public sealed partial class UsageReportEndpoints
{
    private const int CopyChunk = 64 * 1024;
    private const int MaxMonths = 120;

    /// <summary>
    /// The last month <c>GET /api/usage</c> reads: the month after the range must exist (the read's exclusive end),
    /// and no report can reach it anyway (a period may not end in the future). A year short of the calendar's last,
    /// so that bound stays far from the end of <see cref="DateTime"/>.
    /// </summary>
    private static readonly DateOnly LastMonth = new(9998, 12, 1);

    /// <summary>Metadata of a blob the upload stored: the report's content hash (of the signed bytes only).</summary>
    private const string ContentHashMetadata = "contentsha256";

    /// <summary>
    /// Metadata of a blob the upload stored: the hash of the whole document, signature included, so a retried upload is
    /// known as the same upload. The content hash alone is not enough: the same report bytes with another signature
    /// (an unsigned or wrongly signed upload, then the correctly signed one) are another upload.
    /// </summary>
    private const string DocumentHashMetadata = "documentsha256";

    private readonly UsageReportOptions _options;
    private readonly UsageReportReader _reader;
    private readonly UsageReportContainers _containers;
    private readonly UsageReportStore _reports;
    private readonly UsageBlobLedger _ledger;
    private readonly UsageMonthlyTotals _monthly;
    private readonly TimeProvider _time;
    private readonly ReportingCalendar _calendar;
    private readonly ILogger<UsageReportEndpoints> _logger;
    private readonly Dictionary<string, UsageCustomerOptions> _keys;

    public UsageReportEndpoints(
        IOptions<UsageReportOptions> options,
        UsageReportReader reader,
        UsageReportContainers containers,
        UsageReportStore reports,
        UsageBlobLedger ledger,
        UsageMonthlyTotals monthly,
        ReportingCalendar calendar,
        TimeProvider time,
        ILogger<UsageReportEndpoints> logger)
    {
        _calendar = calendar;
        _options = options.Value;
        _reader = reader;
        _containers = containers;
        _reports = reports;
        _ledger = ledger;
        _monthly = monthly;
        _time = time;
        _logger = logger;
        _keys = _options.Customers.Where(c => c.ReportKey.Length > 0).ToDictionary(c => Digest(c.ReportKey), StringComparer.Ordinal);
    }

    public static string StatusPath(string reportId) => "/" + TelemetryRoutes.UsageReports + "/" + Uri.EscapeDataString(reportId);

    /// <summary><c>POST /v1/usage-reports</c>: a report as JSON, or gzip (<c>Content-Encoding: gzip</c> or <c>Content-Type: application/gzip</c>).</summary>
    public async Task<IResult> UploadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var (customer, authError) = Authenticate(request);
        if (authError is not null)
        {
            return JsonResponse.Error(authError);
        }

        var (compressed, typeError) = CheckContent(request);
        if (typeError is not null)
        {
            return JsonResponse.Error(typeError);
        }

        if (request.ContentLength > _options.MaxUploadBytes)
        {
            return JsonResponse.Error(IngestError.TooLarge($"The report is larger than the upload limit of {_options.MaxUploadBytes} bytes; compress it with gzip or upload it to the usage-reports container."));
        }

        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
        {
            sizeLimit.MaxRequestBodySize = _options.MaxUploadBytes + 1;
        }

        await using var spool = new FileStream(
            Path.Combine(Path.GetTempPath(), "usage-report-" + Guid.NewGuid().ToString("N")),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, CopyChunk, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        var (_, readError) = await SpoolAsync(request, spool, cancellationToken);
        if (readError is not null)
        {
            return JsonResponse.Error(readError);
        }

        spool.Position = 0;
        var read = await _reader.ReadAsync(spool, customer!, cancellationToken);
        if (read.Unreadable)
        {
            return JsonResponse.Error(IngestError.BadRequest("invalid_report", read.Reasons[0]));
        }

        if (read.ReportId is not { } reportId || read.ContentHash is not { } contentHash || read.DocumentHash is not { } documentHash)
        {
            return JsonResponse.Error(IngestError.BadRequest("invalid_report", "The report has no valid report.reportId, so it cannot be stored; " + string.Join(" ", read.Reasons)));
        }

        if (read.CustomerId is { } stated && stated != customer!.Id)
        {
            return JsonResponse.Error(new IngestError(403, "wrong_customer", "The report names another customer than the one the report key belongs to."));
        }

        try
        {
            // The same report processed or in progress is a duplicate, other content under its id a conflict. A report
            // that failed was never counted: the same report is stored again and processed afresh, and other content (a
            // regenerated report) is stored and takes its place; either is refused as overlapping if another report
            // covered the period meanwhile.
            var existing = await _reports.GetAsync(customer!.Id, reportId, cancellationToken);
            if (existing is { Status: not UsageReportStore.Failed })
            {
                return existing.ContentHash != contentHash
                    ? Conflict(reportId, existing.Status)
                    : Accepted(reportId, existing.Status == UsageReportStore.Processed ? "processed" : "processing", duplicate: true);
            }

            // Create-only, under the report's name; where a blob of other content has that name (a report an admin
            // uploaded straight into the container under it, or other content under this id, not processed yet), under
            // the name tagged with the document's hash (so a retry of this very upload finds it there), and failing that
            // one of its own. Whatever the name, the processor decides by report id and content whether it is new, a
            // duplicate or a conflict. Only this very document found under a name (an upload retried before its
            // processing) is answered as a duplicate here: the same report with another signature (a bad upload, then the
            // good one) is stored beside it and each is judged.
            var container = await _containers.ReportsAsync(cancellationToken);
            var name = UsageReportKeys.UploadBlobName(customer.Id, reportId, read.Compressed);
            foreach (var candidate in new[] { name, UsageReportKeys.Tagged(name, documentHash[..16]), UsageReportKeys.Tagged(name, Guid.NewGuid().ToString("N")) })
            {
                var blob = container.GetBlobClient(candidate);
                spool.Position = 0;
                try
                {
                    await blob.UploadAsync(spool, new BlobUploadOptions
                    {
                        Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                        HttpHeaders = new BlobHttpHeaders { ContentType = read.Compressed ? "application/gzip" : "application/json" },
                        Metadata = new Dictionary<string, string> { [ContentHashMetadata] = contentHash, [DocumentHashMetadata] = documentHash, ["uploadedvia"] = "api" },
                    }, cancellationToken);
                    LogUploaded(_logger, customer.Id, reportId, read.Bytes, read.Compressed);
                    return Accepted(reportId, "queued", duplicate: false);
                }
                catch (RequestFailedException e) when (e.Status is 409 or 412)
                {
                    if (await StoredDocumentHashAsync(blob, cancellationToken) == documentHash)
                    {
                        return Accepted(reportId, "queued", duplicate: true);
                    }
                }
            }

            throw new InvalidOperationException("Every blob name tried for an uploaded usage report was taken.");
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(_logger, e);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }
    }

    /// <summary>
    /// <c>GET /v1/usage-reports/{id}</c>: queued, processing, processed (with the figures, once committed), rejected or
    /// failed (with the reasons); like the read API's, no answer may be kept by a cache.
    /// </summary>
    public Task<IResult> StatusAsync(HttpRequest request, string id, CancellationToken cancellationToken) =>
        NoStoreResult.Of(ReadStatusAsync(request, id, cancellationToken));

    private async Task<IResult> ReadStatusAsync(HttpRequest request, string id, CancellationToken cancellationToken)
    {
        var (customer, authError) = Authenticate(request);
        if (authError is not null)
        {
            return JsonResponse.Error(authError);
        }

        if (!UsageReportKeys.IsValidReportId(id))
        {
            return NotFound(id);
        }

        try
        {
            var record = await _reports.GetAsync(customer!.Id, id, cancellationToken);
            var found = await _ledger.FindAsync(customer.Id, id, cancellationToken);
            // A blob that bears one of the id's upload names but held another report speaks for that report, not this id.
            var entries = found.Where(e => e.ReportId is null || e.ReportId == id).ToList();
            var conflicts = entries.Where(e => e.Status == BlobLedgerEntry.Conflict).SelectMany(e => e.Reasons).ToList();
            // "processed" once committed: the report is counted, whatever happens to the rest of its run. Until that run
            // has finished (the monthly totals recomputed; the reconciliation pass retries it) monthlyTotals says pending.
            var completed = entries.Any(e => e.Status is BlobLedgerEntry.Processed or BlobLedgerEntry.Duplicate);
            if (record is { Status: UsageReportStore.Processed })
            {
                var body = Status(id, "processed");
                if (!completed)
                {
                    body["monthlyTotals"] = "pending";
                }

                body["installationId"] = record.InstallationId;
                body["period"] = new JsonObject { ["start"] = record.PeriodStart, ["end"] = record.PeriodEnd };
                body["processedAt"] = record.ProcessedAt;
                body["contentSha256"] = record.ContentHash;
                body["metrics"] = record.Figures?["metrics"]?.DeepClone();
                body["months"] = record.Months?.DeepClone();
                if (conflicts.Count > 0)
                {
                    body["conflicts"] = Reasons(conflicts);
                }

                return new JsonNodeResult(200, body);
            }

            if (record is { Status: not UsageReportStore.Failed })
            {
                return new JsonNodeResult(200, Status(id, "processing"));
            }

            // No record, or a failed one: uploaded (again) and not yet processed is queued.
            if (await IsQueuedAsync(customer.Id, id, found, cancellationToken))
            {
                return new JsonNodeResult(200, Status(id, "queued"));
            }

            if (record is { Status: UsageReportStore.Failed })
            {
                // The latest judgement says why: failed, or rejected when it was brought back and refused (an overlap).
                var latest = entries.FirstOrDefault(e => e.Status is BlobLedgerEntry.Failed or BlobLedgerEntry.Rejected);
                var body = Status(id, latest?.Status == BlobLedgerEntry.Rejected ? "rejected" : "failed");
                body["reasons"] = Reasons(latest?.Reasons ?? record.Reasons);
                return new JsonNodeResult(200, body);
            }

            if (entries.FirstOrDefault(e => e.IsQuarantined) is { } judged)
            {
                var body = Status(id, judged.Status == BlobLedgerEntry.Failed ? "failed" : "rejected");
                body["reasons"] = Reasons(judged.Reasons);
                return new JsonNodeResult(200, body);
            }

            return NotFound(id);
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(_logger, e);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }
    }

    /// <summary>
    /// <c>GET /api/usage?customer=&amp;from=&amp;to=[&amp;format=csv]</c>: reported usage per customer, metric and month, with
    /// entitlement and overage. <c>from</c>/<c>to</c> are days (the months they touch, as the other read endpoints take
    /// ranges; neither means the last 30 complete days) or months (<c>YYYY-MM</c>). Only months with processed reports
    /// appear: nothing reported is not the same as nothing used.
    /// </summary>
    public Task<IResult> UsageAsync(HttpRequest request, CancellationToken cancellationToken) =>
        NoStoreResult.Of(ReadUsageAsync(request, cancellationToken));

    private async Task<IResult> ReadUsageAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (QueryParameters.FindRepeated(request, "customer", "from", "to", "format") is { } repeated)
        {
            return JsonResponse.Error(repeated);
        }

        var (format, formatError) = TableFormats.Negotiate(request);
        if (formatError is not null)
        {
            return JsonResponse.Error(formatError);
        }

        string? customerId = request.Query["customer"].ToString() is { Length: > 0 } c ? c : null;
        if (customerId is not null && !UsageReportOptions.CustomerIdPattern().IsMatch(customerId))
        {
            return JsonResponse.Error(IngestError.BadRequest("invalid_customer", "customer is a customer id (a-z, 0-9 and '-')."));
        }

        var (from, to, rangeError) = ParseMonths(request.Query["from"], request.Query["to"]);
        if (rangeError is not null)
        {
            return JsonResponse.Error(rangeError);
        }

        List<MonthlyUsage> stored;
        try
        {
            stored = await _monthly.ReadAsync(customerId, UsageReport.MonthKey(from), UsageReport.MonthKey(to), cancellationToken);
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(_logger, e);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }

        // Entitlement and overage follow the configuration as it is now.
        var rows = stored
            .OrderBy(r => r.CustomerId, StringComparer.Ordinal).ThenBy(r => r.Month, StringComparer.Ordinal).ThenBy(r => r.Metric, StringComparer.Ordinal)
            .Select(r =>
            {
                var entitlement = _options.FindCustomer(r.CustomerId)?.EntitlementOf(r.Metric);
                return (Usage: r, Entitlement: entitlement, Overage: UsageMonthlyTotals.Overage(r.Value, entitlement));
            })
            .ToList();
        var fromText = from.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var toText = to.ToString("yyyy-MM", CultureInfo.InvariantCulture);

        // CSV carries the fields of the JSON rows, in their order; an empty problem is a row with a figure.
        if (format == TableFormat.Csv)
        {
            return new CsvResult(
                $"usage_{fromText}_{toText}.csv",
                ["customer", "metric", "month", "reported", "entitlement", "overage", "reports", "aggregation", "computedAt", "problem"],
                rows.Select(r => (IReadOnlyList<object?>)[r.Usage.CustomerId, r.Usage.Metric, r.Usage.Month, r.Usage.Value, r.Entitlement, r.Overage, r.Usage.Reports, r.Usage.Aggregation, r.Usage.ComputedAt, r.Usage.Problem]));
        }

        return new JsonNodeResult(200, new JsonObject
        {
            ["success"] = true,
            ["from"] = fromText,
            ["to"] = toText,
            ["rows"] = new JsonArray([.. rows.Select(r =>
            {
                var row = new JsonObject
                {
                    ["customer"] = r.Usage.CustomerId,
                    ["metric"] = r.Usage.Metric,
                    ["month"] = r.Usage.Month,
                    ["reported"] = r.Usage.Value,
                    ["entitlement"] = r.Entitlement,
                    ["overage"] = r.Overage,
                    ["reports"] = r.Usage.Reports,
                    ["aggregation"] = r.Usage.Aggregation,
                    ["computedAt"] = r.Usage.ComputedAt,
                };
                if (r.Usage.Problem is { } problem)
                {
                    row["problem"] = problem;
                }

                return (JsonNode)row;
            })]),
        });
    }

    /// <summary>A blob under one of the report's upload names (tagged ones too) that no processing run has judged yet (as it is now).</summary>
    private async Task<bool> IsQueuedAsync(string customerId, string reportId, List<BlobLedgerEntry> entries, CancellationToken cancellationToken)
    {
        var container = await _containers.ReportsAsync(cancellationToken);
        foreach (var prefix in new[] { UsageReportKeys.UploadBlobName(customerId, reportId, compressed: false), UsageReportKeys.TaggedUploadPrefix(customerId, reportId) })
        {
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken))
            {
                if (!UsageReportKeys.IsUploadBlobName(customerId, reportId, blob.Name))
                {
                    continue;
                }

                var entry = entries.FirstOrDefault(e => e.BlobName == blob.Name);
                if (entry is null || !entry.IsFinal || entry.BlobETag != UsageBlobLedger.Normalize(blob.Properties.ETag))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The content hash the upload stored a blob with; null when it has none (uploaded some other way) or is gone.</summary>
    private static async Task<string?> StoredDocumentHashAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
            return properties.Value.Metadata.TryGetValue(DocumentHashMetadata, out var stored) ? stored : null;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>The first and last month of a <c>from</c>/<c>to</c> pair of days (<see cref="ReadRange"/>) or months.</summary>
    private (DateOnly From, DateOnly To, IngestError? Error) ParseMonths(string? fromText, string? toText)
    {
        if (TryParseMonth(fromText, out var fromMonth) && TryParseMonth(toText, out var toMonth))
        {
            if (fromMonth > toMonth)
            {
                return (default, default, IngestError.BadRequest("invalid_range", "from must not be after to."));
            }

            if ((toMonth.Year - fromMonth.Year) * 12 + toMonth.Month - fromMonth.Month + 1 > MaxMonths)
            {
                return (default, default, IngestError.BadRequest("invalid_range", $"The range covers more than {MaxMonths} months; split it."));
            }

            return toMonth > LastMonth
                ? (default, default, IngestError.BadRequest("invalid_range", string.Create(CultureInfo.InvariantCulture, $"to must be {LastMonth:yyyy-MM} or earlier.")))
                : (fromMonth, toMonth, null);
        }

        var (from, to, error) = ReadRange.Parse(fromText, toText, _calendar, _time.GetUtcNow());
        return error is not null
            ? (default, default, IngestError.BadRequest(error.Code, error.Reason.Replace("(or neither", "or as months YYYY-MM (or neither", StringComparison.Ordinal)))
            : (new DateOnly(from.Year, from.Month, 1), new DateOnly(to.Year, to.Month, 1), null);
    }

    private (UsageCustomerOptions? Customer, IngestError? Error) Authenticate(HttpRequest request)
    {
        var (key, problem) = AuthorizationCredentials.Read(request, acceptBearer: true);
        if (problem is { } refused)
        {
            return (null, AuthorizationCredentials.Refusal(refused, "A report key is required: HTTP Basic with the key as the user name and an empty password, or Authorization: Bearer <key>."));
        }

        return key!.Length > 0 && _keys.TryGetValue(Digest(key), out var customer)
            ? (customer, null)
            : (null, IngestError.Unauthorized("The report key is not valid."));
    }

    private static (bool Compressed, IngestError? Error) CheckContent(HttpRequest request)
    {
        var (compressed, encodingError) = RequestBodyReader.ReadBodyEncoding(request);
        if (encodingError is not null)
        {
            return (false, encodingError);
        }

        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType))
        {
            return (false, IngestError.UnsupportedMediaType("Content-Type must be application/json or application/gzip."));
        }

        // The types differ from ingest's (application/gzip here; no text/plain or +json), the charset rule does not: a
        // JSON body's charset is checked by the one check ingest uses. A gzip body is bytes, so a charset says nothing.
        var type = mediaType.MediaType.Value ?? "";
        if (type.Equals("application/gzip", StringComparison.OrdinalIgnoreCase) || type.Equals("application/x-gzip", StringComparison.OrdinalIgnoreCase))
        {
            // Both say gzip: a gzip file sent gzip-encoded, two layers, which is a stacked encoding.
            return compressed
                ? (false, IngestError.UnsupportedMediaType("Content-Type application/gzip with Content-Encoding gzip means gzip twice; send the gzip body with one of them."))
                : (true, null);
        }

        if (!type.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return (false, IngestError.UnsupportedMediaType("Content-Type must be application/json or application/gzip."));
        }

        return RequestBodyReader.CheckCharset(mediaType) is { } charsetError ? (false, charsetError) : (compressed, null);
    }

    /// <summary>
    /// Copies the body to a temporary file, never more than the upload limit, so a report of any size costs no memory,
    /// within <see cref="UsageReportOptions.MaxUploadReadTime"/>. The file is deleted when the request ends, so a body
    /// refused here leaves nothing behind.
    /// </summary>
    private async Task<(long Bytes, IngestError? Error)> SpoolAsync(HttpRequest request, FileStream spool, CancellationToken cancellationToken)
    {
        var buffer = new byte[CopyChunk];
        long total = 0;
        await using var deadline = new BodyReadDeadline(request, _options.MaxUploadReadTime);
        var body = deadline.Body;
        try
        {
            while (true)
            {
                var read = await body.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    break;
                }

                total += read;
                if (total > _options.MaxUploadBytes)
                {
                    return (total, IngestError.TooLarge($"The report is larger than the upload limit of {_options.MaxUploadBytes} bytes; compress it with gzip or upload it to the usage-reports container."));
                }

                await spool.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch (BadHttpRequestException e)
        {
            return (total, e.StatusCode == 413
                ? IngestError.TooLarge($"The report is larger than the upload limit of {_options.MaxUploadBytes} bytes.")
                : RequestBodyReader.Refused(e));
        }
        catch (IOException)
        {
            return (total, RequestBodyReader.Incomplete());
        }
        catch (OperationCanceledException) when (deadline.Passed(cancellationToken))
        {
            return (total, deadline.TimedOut());
        }

        await spool.FlushAsync(cancellationToken);
        return (total, null);
    }

    private static bool TryParseMonth(string? text, out DateOnly month) =>
        DateOnly.TryParseExact(text + "-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out month) && text!.Length == 7;

    private static JsonObject Status(string reportId, string status) => new()
    {
        ["success"] = true,
        ["reportId"] = reportId,
        ["status"] = status,
        ["statusUrl"] = StatusPath(reportId),
    };

    private static JsonArray Reasons(IEnumerable<string> reasons) => [.. reasons.Select(r => (JsonNode)JsonValue.Create(r))];

    private static JsonNodeResult Accepted(string reportId, string status, bool duplicate)
    {
        var body = Status(reportId, status);
        body["duplicate"] = duplicate;
        return new JsonNodeResult(202, body, StatusPath(reportId));
    }

    private static JsonResponse Conflict(string reportId, string status) =>
        JsonResponse.Error(new IngestError(409, "report_id_conflict", status == UsageReportStore.Processed
            ? $"Report id '{reportId}' is already counted with different content; that report stands and this one is not stored. Give a corrected report a new report id."
            : $"Report id '{reportId}' was already received with different content, which is being processed; this one is not stored. Give a corrected report a new report id, or, should that report end failed (its status URL says so), upload this one again."));

    private static JsonResponse NotFound(string id) =>
        JsonResponse.Error(new IngestError(404, "not_found", "No usage report with this id was received from this customer."));

    private static string Digest(string key) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report {ReportId} of customer {CustomerId} uploaded: {Bytes} bytes of JSON, compressed {Compressed}")]
    private static partial void LogUploaded(ILogger logger, string customerId, string reportId, long bytes, bool compressed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage unavailable during a usage report request; answered 503")]
    private static partial void LogStorageUnavailable(ILogger logger, Exception exception);

    /// <summary>A JSON body with a status code and, for 202, a Location header.</summary>
    private sealed class JsonNodeResult(int statusCode, JsonNode body, string? location = null) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = statusCode;
            response.ContentType = "application/json; charset=utf-8";
            if (location is not null)
            {
                response.Headers.Location = location;
            }

            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                body.WriteTo(writer);
            }

            response.ContentLength = buffer.Length;
            await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), httpContext.RequestAborted);
        }
    }
}
