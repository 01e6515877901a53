using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Activity;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Installations;
using TelemetryFunctions.Instances;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Http;

/// <summary>
/// The Segment HTTP Tracking API and its privacy endpoints, for both hosts: each host binds a route and calls one
/// method here. Bad input gets a 4xx with a reason and writes nothing; a storage outage gets 503 with Retry-After;
/// 200 means every accepted event is stored.
/// </summary>
public sealed partial class IngestEndpoints(
    IOptions<TelemetryOptions> options,
    WriteKeyAuthenticator authenticator,
    IngestRateLimiter rateLimiter,
    EventIngestor ingestor,
    RawEventStore rawEvents,
    SupportRequestStore supportRequests,
    InstallationRecorder installations,
    InstanceRegistry instances,
    OptOutService optOut,
    TimeProvider time,
    ILogger<IngestEndpoints> logger)
{
    private static readonly Task<IResult> Preflight = Task.FromResult<IResult>(IngestPreflight.Answer);

    private readonly IngestionOptions _limits = options.Value.Ingestion;

    /// <summary>
    /// <c>POST /v1/batch</c>, <c>/v1/track</c>, <c>/v1/identify</c>, <c>/v1/page</c>, <c>/v1/screen</c>, <c>/v1/group</c>,
    /// <c>/v1/alias</c>. Like every method here, it answers an <c>OPTIONS</c> request, a browser's CORS preflight, with
    /// <see cref="IngestPreflight"/>: both hosts bind <see cref="TelemetryRoutes.IngestMethods"/> to these methods.
    /// </summary>
    public Task<IResult> IngestAsync(HttpRequest request, SegmentCall call, CancellationToken cancellationToken) =>
        AnswerAsync(request, () => HandleEventsAsync(request, call, dryRun: false, cancellationToken));

    /// <summary>
    /// <c>POST /v1/preview</c>: exactly what would be stored for a batch or a single event (which names its type: no
    /// route implies it), storing nothing, with preview-only pseudonyms in place of the stored ones.
    /// </summary>
    public Task<IResult> PreviewAsync(HttpRequest request, CancellationToken cancellationToken) =>
        AnswerAsync(request, () => HandleEventsAsync(request, call: null, dryRun: true, cancellationToken));

    /// <summary>
    /// How every ingest route answers: a CORS preflight with <see cref="IngestPreflight.Answer"/>, without running
    /// <paramref name="handle"/>; any other request with what <paramref name="handle"/> returns, readable by pages on
    /// any origin (<see cref="AllowBrowserCallers"/>).
    /// </summary>
    private static Task<IResult> AnswerAsync(HttpRequest request, Func<Task<IResult>> handle)
    {
        if (IngestPreflight.Applies(request))
        {
            return Preflight;
        }

        AllowBrowserCallers(request.HttpContext.Response);
        return handle();
    }

    /// <summary>
    /// Lets a page on any origin read the answer: Segment's browser library sends from the product's own pages, with
    /// the write key in the body and <c>Content-Type: text/plain</c>, a request browsers send without a preflight; a
    /// page that sends the key as HTTP Basic or the body as <c>application/json</c> is let through its preflight by
    /// <see cref="IngestPreflight"/>. No cookie or ambient credential is ever honoured here, so any origin may call, as
    /// Segment's own API allows. A host that refuses an ingest request before it gets here (the local host's
    /// concurrency limit) adds the same headers.
    /// </summary>
    public static void AllowBrowserCallers(HttpResponse response)
    {
        var headers = response.Headers;
        headers.AccessControlAllowOrigin = "*";
        headers.AccessControlExposeHeaders = "Retry-After, X-RateLimit-Reset";
    }

    /// <summary>
    /// What one opt-out counts against the source's and the client address's rate limits, in events: it erases
    /// synchronously, scanning the raw events, so it costs storage far more than one event does.
    /// </summary>
    public const int OptOutRateCost = 100;

    /// <summary><c>POST /v1/opt-out</c> with <c>userId</c>, <c>anonymousId</c> and/or <c>instanceId</c>: erases what is stored about them and drops their future events.</summary>
    public Task<IResult> OptOutAsync(HttpRequest request, CancellationToken cancellationToken) =>
        AnswerAsync(request, () => OptOutCoreAsync(request, cancellationToken));

    private async Task<IResult> OptOutCoreAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var (body, source, root, error) = await ReadAuthenticatedAsync(request, cancellationToken);
        if (error is not null)
        {
            return JsonResponse.Error(error);
        }

        using var document = root;
        using var _ = body;
        var json = root!.RootElement;
        if (FindInvalidMember(json) is { } invalid)
        {
            return JsonResponse.Error(invalid);
        }

        // As in events: a string, or a whole number as the digits it was sent with.
        string? Field(string name) =>
            !json.TryGetProperty(name, out var v) ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString()
            : SegmentEventReader.WholeNumberDigits(v);

        foreach (var name in new[] { "userId", "anonymousId", "instanceId" })
        {
            if (json.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null) && SegmentEventReader.WholeNumberDigits(value) is null)
            {
                return JsonResponse.Error(IngestError.BadRequest("invalid_field", $"{name} must be a string or a whole number."));
            }

            if (Field(name) is { } text && !SegmentEventReader.IsIdentifierText(text, _limits.MaxIdentifierLength))
            {
                return JsonResponse.Error(IngestError.BadRequest("invalid_field", $"{name} must be {SegmentEventReader.IdentifierTextRule(_limits.MaxIdentifierLength)}."));
            }

            // The identifier rules of ingestion: a placeholder is no one, and an IP address is never stored as an
            // identifier (ingestion discards it), so there is nothing to erase or suppress under either.
            if (Field(name) is { } word && SegmentEventReader.IsPlaceholder(word))
            {
                return JsonResponse.Error(IngestError.BadRequest("invalid_field", $"{name} '{word.Trim()}' is not an identifier."));
            }

            if (Field(name) is { } address && PersonalDataScrubber.IsBareIpAddress(address))
            {
                return JsonResponse.Error(IngestError.BadRequest("invalid_field", $"{name} is an IP address, which is never stored as an identifier: there is nothing to opt out of under it."));
            }
        }

        var userId = Field("userId");
        var anonymousId = Field("anonymousId");
        var instanceId = Field("instanceId");
        if (userId is null && anonymousId is null && instanceId is null)
        {
            return JsonResponse.Error(IngestError.BadRequest("missing_subject", "Give a userId, an anonymousId or an instanceId to opt out."));
        }

        if (RateLimited(request, source!, OptOutRateCost) is { } refused)
        {
            return refused;
        }

        try
        {
            var (suppressed, totals) = await optOut.OptOutAsync(userId, anonymousId, instanceId, cancellationToken);
            LogOptedOut(logger, source!, suppressed);
            return JsonResponse.Ok(new JsonObject
            {
                ["success"] = true,
                ["suppressed"] = suppressed,
                ["erased"] = new JsonObject
                {
                    ["rawEvents"] = totals.RawEvents,
                    ["activityRows"] = totals.ActivityRows,
                    ["instances"] = totals.Instances,
                    ["installations"] = totals.Installations,
                    ["supportRequests"] = totals.SupportRequests,
                },
            });
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(logger, e, source!);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }
    }

    private async Task<IResult> HandleEventsAsync(HttpRequest request, SegmentCall? call, bool dryRun, CancellationToken cancellationToken)
    {
        var (body, source, document, error) = await ReadAuthenticatedAsync(request, cancellationToken);
        if (error is not null)
        {
            return JsonResponse.Error(error);
        }

        using var _ = body;
        using var __ = document;
        var root = document!.RootElement;

        var (elements, batchContext, batchSentAt, shapeError) = ExtractEvents(root, call);
        if (shapeError is not null)
        {
            return JsonResponse.Error(shapeError);
        }

        // A preview is limited like a real send: it reads the opt-out list and the instance registry for each event.
        if (RateLimited(request, source!, elements.Count) is { } refused)
        {
            return refused;
        }

        var receivedAt = time.GetUtcNow();
        var reader = new SegmentEventReader(_limits);
        var events = new List<IncomingEvent>(elements.Count);
        var rejections = new List<EventRejection>();
        for (var i = 0; i < elements.Count; i++)
        {
            var (element, path, impliedType) = elements[i];
            var (incoming, rejection) = reader.Read(element, i, path, impliedType, batchContext, batchSentAt, receivedAt);
            if (incoming is not null)
            {
                events.Add(incoming);
            }
            else
            {
                rejections.Add(rejection!);
            }
        }

        IngestOutcome outcome;
        try
        {
            outcome = await ingestor.IngestAsync(source!, events, rejections, dryRun, cancellationToken);
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e, cancellationToken))
        {
            LogStorageUnavailable(logger, e, source!);
            return JsonResponse.Error(IngestError.StorageUnavailable());
        }

        var rejected = outcome.Rejected.OrderBy(r => r.Index).Select(r => new RejectedEvent(r.Index, r.MessageId, r.Reason)).ToList();
        if (rejected.Count == elements.Count)
        {
            return JsonResponse.Error(
                IngestError.BadRequest("no_valid_events", elements.Count == 1 ? rejected[0].Reason : "None of the events is valid; see rejected."),
                rejected);
        }

        return dryRun ? JsonResponse.Ok(DescribePreview(outcome, rejected)) : JsonResponse.Ok(Summarize(outcome, rejected));
    }

    /// <summary>Takes <paramref name="events"/> from the source's and the client's rate limits; a 429 answer when either is spent.</summary>
    private JsonResponse? RateLimited(HttpRequest request, string source, int events)
    {
        if (rateLimiter.TryAcquire(source, rateLimiter.ClientAddressOf(request.HttpContext), events) is not { } refusal)
        {
            return null;
        }

        // The client's address is never logged: the limit that refused is named instead.
        LogRateLimited(logger, source, refusal.Limit, events);
        return JsonResponse.Error(IngestError.RateLimited(refusal.RetryAfter, byClientAddress: refusal.Limit == RateLimit.ClientAddress));
    }

    private async Task<(RequestBody? Body, string? Source, JsonDocument? Document, IngestError? Error)> ReadAuthenticatedAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        string? source = null;
        // An Authorization header, even an empty one, decides, whatever the body says.
        if (AuthorizationCredentials.IsPresent(request))
        {
            var (headerSource, authError) = authenticator.AuthenticateHeader(request);
            if (authError is not null)
            {
                return (null, null, null, authError);
            }

            source = headerSource;
        }

        var (body, readError) = await RequestBodyReader.ReadAsync(request, _limits.MaxRequestBytes, _limits.MaxBodyReadTime, cancellationToken);
        if (readError is not null)
        {
            return (null, null, null, readError);
        }

        var document = StrictJson.Parse(body!.Memory, _limits.MaxJsonDepth, out var parseError);
        if (document is null)
        {
            body.Dispose();
            return (null, null, null, parseError);
        }

        IngestError? error = null;
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            error = IngestError.BadRequest("invalid_body", "The body must be a JSON object.");
        }
        else if (source is null)
        {
            (source, error) = authenticator.AuthenticateBody(document.RootElement);
        }

        if (error is not null)
        {
            document.Dispose();
            body.Dispose();
            return (null, null, null, error);
        }

        return (body, source, document, null);
    }

    private (List<(JsonElement Element, string Path, string? ImpliedType)> Events, JsonElement? Context, DateTimeOffset? SentAt, IngestError? Error) ExtractEvents(JsonElement root, SegmentCall? call)
    {
        var events = new List<(JsonElement, string, string?)>();
        var isBatch = call == SegmentCall.Batch || (call is null && root.TryGetProperty("batch", out _));
        if (!isBatch)
        {
            events.Add((root, SegmentEventReader.SingleEventPath, call?.ImpliedType()));
            return (events, null, null, null);
        }

        if (FindInvalidMember(root) is { } invalid)
        {
            return (events, null, null, invalid);
        }

        if (!root.TryGetProperty("batch", out var batch) || batch.ValueKind != JsonValueKind.Array)
        {
            return (events, null, null, IngestError.BadRequest("invalid_batch", "The body must have a 'batch' array of events."));
        }

        var count = batch.GetArrayLength();
        if (count == 0)
        {
            return (events, null, null, IngestError.BadRequest("empty_batch", "The batch has no events."));
        }

        if (count > _limits.MaxBatchEvents)
        {
            return (events, null, null, IngestError.TooLarge($"The batch has {count} events; the limit is {_limits.MaxBatchEvents}."));
        }

        // The batch's own members, read before its events: they apply to every one of them.
        if (SegmentEventReader.ReadBatchSentAt(root, out var sentAt) is { } sentAtProblem)
        {
            return (events, null, null, IngestError.BadRequest("invalid_sent_at", sentAtProblem));
        }

        if (new SegmentEventReader(_limits).ReadBatchContext(root, out var context) is { } contextProblem)
        {
            return (events, null, null, IngestError.BadRequest("invalid_context", contextProblem));
        }

        var index = 0;
        foreach (var item in batch.EnumerateArray())
        {
            events.Add((item, $"batch[{index++}]", null));
        }

        return (events, context, sentAt, null);
    }

    /// <summary>
    /// A lone surrogate or a number out of range anywhere in the request around the events (shared context,
    /// sentAt, integrations...): the whole request is refused. The events of a batch are checked one by one instead.
    /// </summary>
    private static IngestError? FindInvalidMember(JsonElement root)
    {
        foreach (var member in root.EnumerateObject())
        {
            if (!member.NameEquals("batch") && StrictJson.FindInvalidValue(member.Value, member.Name) is { } path)
            {
                return IngestError.BadRequest("invalid_json", $"{path} holds invalid Unicode (a lone surrogate) or a number out of range.");
            }
        }

        return null;
    }

    private static IngestResponse Summarize(IngestOutcome outcome, List<RejectedEvent> rejected) =>
        new(
            true,
            outcome.Accepted.Count,
            rejected,
            outcome.Dropped.GetValueOrDefault(DropReason.Duplicate),
            new DroppedCounts(
                outcome.Dropped.GetValueOrDefault(DropReason.OptedOut),
                outcome.Dropped.GetValueOrDefault(DropReason.SharingDisabled),
                outcome.Dropped.GetValueOrDefault(DropReason.SharingBasic)),
            outcome.Scrubbed);

    /// <summary>
    /// The rows the request would write, each built by the code that builds it for storage, as they would be stored in
    /// tables that do not hold them yet. A row two writers write (an installation's activity mark: its record sets the
    /// day's flags, a support event <c>SupportRequested</c>) is shown once, merged as storage merges it. A raw event's
    /// stored document is shown as <c>event</c>; a property without a value is not stored, so not shown. Every pseudonym,
    /// and every key built from one, is made under the preview key (<see cref="PreviewPseudonyms"/>), as
    /// <c>"pseudonyms": "preview-only"</c> says: consistent within and across previews, never the stored one.
    /// </summary>
    private JsonObject DescribePreview(IngestOutcome outcome, List<RejectedEvent> rejected)
    {
        var planned = outcome.Accepted.Select(e => (Table: TableNames.RawEvents, Row: rawEvents.ToEntity(e)))
            .Concat(ActivityStore.PlanMarks(outcome.Accepted).Select(row => (Table: TableNames.Activity, Row: row)))
            .Concat(installations.Plan(outcome.Accepted))
            .Concat(supportRequests.Plan(outcome.Accepted).Select(row => (Table: TableNames.SupportRequests, Row: row)))
            .Concat(instances.PlanNew(outcome.Instances));
        var rows = new JsonArray();
        var byKey = new Dictionary<(string, string, string), JsonObject>();
        foreach (var (table, row) in planned)
        {
            if (!byKey.TryGetValue((table, row.PartitionKey, row.RowKey), out var entity))
            {
                entity = new JsonObject
                {
                    ["table"] = table,
                    ["partitionKey"] = row.PartitionKey,
                    ["rowKey"] = row.RowKey,
                };
                byKey.Add((table, row.PartitionKey, row.RowKey), entity);
                rows.Add(entity);
            }

            foreach (var (key, value) in row.Where(p => p.Key is not ("PartitionKey" or "RowKey") && p.Value is not null))
            {
                if (key == "Payload" && value is byte[] payload)
                {
                    entity["event"] = JsonNode.Parse(payload);
                }
                else
                {
                    entity[key] = PreviewValue(value);
                }
            }
        }

        var summary = Summarize(outcome, rejected);
        return new JsonObject
        {
            ["success"] = true,
            ["stored"] = false,
            ["pseudonyms"] = "preview-only",
            ["wouldAccept"] = summary.Accepted,
            ["wouldStore"] = rows,
            ["rejected"] = JsonSerializer.SerializeToNode(rejected, ResponseJsonContext.Default.IReadOnlyListRejectedEvent),
            ["duplicates"] = summary.Duplicates,
            ["dropped"] = JsonSerializer.SerializeToNode(summary.Dropped, ResponseJsonContext.Default.DroppedCounts),
            ["scrubbed"] = summary.Scrubbed,
        };
    }

    /// <summary>A table property as the preview shows it: times in ISO 8601, numbers and booleans as JSON values, like the other rows.</summary>
    private static JsonValue? PreviewValue(object? value) => value switch
    {
        null => null,
        string text => JsonValue.Create(text),
        bool flag => JsonValue.Create(flag),
        DateTimeOffset time => JsonValue.Create(time),
        DateTime time => JsonValue.Create(new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc))),
        int number => JsonValue.Create(number),
        long number => JsonValue.Create(number),
        double number => JsonValue.Create(number),
        byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
        _ => JsonValue.Create(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage unavailable while ingesting from {Source}; answered 503")]
    private static partial void LogStorageUnavailable(ILogger logger, Exception exception, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Events} events of source {Source} with 429: over the {Limit} rate limit")]
    private static partial void LogRateLimited(ILogger logger, string source, RateLimit limit, int events);

    [LoggerMessage(Level = LogLevel.Information, Message = "Opt-out from source {Source}: {Subjects} subjects suppressed and erased")]
    private static partial void LogOptedOut(ILogger logger, string source, int subjects);
}
