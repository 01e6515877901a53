using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text.Unicode;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Text;

namespace TelemetryFunctions.UsageReports;

/// <summary>What reading a report found: the validated report, or the reasons it is refused.</summary>
public sealed class UsageReportReadResult
{
    /// <summary>Set only when there is no reason to refuse the report.</summary>
    public UsageReport? Report { get; init; }

    public required IReadOnlyList<string> Reasons { get; init; }

    /// <summary>The document could not be read to its end (empty, not gzip, not JSON, too large): it cannot even be named.</summary>
    public bool Unreadable { get; init; }

    /// <summary>The report id, when the document states a well-formed one (also for refused reports).</summary>
    public string? ReportId { get; init; }

    /// <summary>The customer id the document states, when well-formed.</summary>
    public string? CustomerId { get; init; }

    /// <summary>SHA-256 (lowercase hex) of the signed bytes, when they were read completely.</summary>
    public string? ContentHash { get; init; }

    /// <summary>
    /// SHA-256 (lowercase hex) of the whole document as read (after decompression): the signed bytes and everything
    /// around them, the signature included. Two uploads with this hash are the very same upload; two with the same
    /// <see cref="ContentHash"/> may still differ in their signature. Set when the document was read to its end.
    /// </summary>
    public string? DocumentHash { get; init; }

    /// <summary>Bytes of JSON read (after decompression).</summary>
    public long Bytes { get; init; }

    public bool Compressed { get; init; }

    /// <summary>The largest read buffer used: the reader's memory does not grow with the document.</summary>
    public int PeakBufferBytes { get; init; }
}

/// <summary>
/// Reads a usage report from a stream in one pass, with a pooled buffer, never holding the document: plain or gzip
/// JSON (detected by its first bytes), <c>{"report": {...}, "signature": {"algorithm": "HMAC-SHA256", "value": hex}}</c>.
/// It checks the syntax strictly (no comments, trailing commas or bytes; valid UTF-8; bounded depth, value and document
/// size), the schema (docs/usage-report.schema.json) and the consistency of the figures, and verifies the HMAC-SHA256
/// of the exact bytes of the <c>report</c> value with the customer's signing secret, in constant time. What it keeps is
/// bounded by the limits on metrics, scopes and days, so a 100 MB report takes no more memory than a small one.
/// </summary>
public sealed class UsageReportReader(UsageReportOptions options, TimeProvider time)
{
    public const int InitialBufferBytes = 64 * 1024;

    /// <summary>The longest single JSON token accepted; the buffer grows up to this and no further.</summary>
    public const int MaxTokenBytes = 1024 * 1024;

    public const int MaxReasons = 20;

    private static readonly JsonReaderOptions JsonOptions = new()
    {
        MaxDepth = 16,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    public async Task<UsageReportReadResult> ReadAsync(Stream content, UsageCustomerOptions customer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(customer);

        var head = new byte[2];
        var headLength = await content.ReadAtLeastAsync(head, 2, throwOnEndOfStream: false, cancellationToken);
        var gzip = headLength == 2 && head[0] == 0x1F && head[1] == 0x8B;
        Stream source = new PrefixedReadStream(head.AsMemory(0, headLength), content);
        if (gzip)
        {
            source = new SingleMemberGzipStream(source);
        }

        var parser = new ReportDocumentParser(options, customer, time.GetUtcNow());
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);
        var peakBuffer = buffer.Length;
        var start = 0;
        var end = 0;
        long bufferOffset = 0;
        long total = 0;
        var final = false;
        var atStart = true;
        var sawContent = false;
        var state = new JsonReaderState(JsonOptions);
        try
        {
            while (true)
            {
                if (!final)
                {
                    if (start > 0 && buffer.Length - end < buffer.Length / 2)
                    {
                        // Move the unread tail to the front, so each read fills at least half the buffer.
                        Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                        bufferOffset += start;
                        end -= start;
                        start = 0;
                    }

                    if (end == buffer.Length)
                    {
                        if (buffer.Length >= MaxTokenBytes)
                        {
                            return parser.Unreadable($"The report holds a single JSON value longer than {MaxTokenBytes} bytes; no field of the format is that long.", total, gzip, peakBuffer);
                        }
                        else
                        {
                            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxTokenBytes));
                            Buffer.BlockCopy(buffer, 0, larger, 0, end);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = larger;
                            peakBuffer = Math.Max(peakBuffer, buffer.Length);
                        }
                    }

                    var read = await source.ReadAsync(buffer.AsMemory(end), cancellationToken);
                    if (read == 0)
                    {
                        final = true;
                    }
                    else
                    {
                        sawContent |= buffer.AsSpan(end, read).IndexOfAnyExcept(" \t\r\n"u8) >= 0;
                        parser.HashDocument(buffer.AsSpan(end, read));
                        end += read;
                        total += read;
                        if (total > options.MaxReportBytes)
                        {
                            return parser.Unreadable(
                                $"The report is larger than the limit of {options.MaxReportBytes} bytes{(gzip ? " after decompression" : "")}.", total, gzip, peakBuffer);
                        }
                    }
                }

                if (atStart)
                {
                    if (end - start < 3 && !final)
                    {
                        continue;
                    }

                    atStart = false;
                    if (end - start >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF)
                    {
                        // A UTF-8 byte order mark before the document is skipped; it is outside the signed bytes.
                        start += 3;
                    }
                }

                if (final && !sawContent)
                {
                    return parser.Unreadable(gzip ? "The report is empty (the gzip data holds no JSON)." : "The report is empty.", total, gzip, peakBuffer);
                }

                var consumed = parser.Parse(buffer.AsSpan(start, end - start), final, ref state, bufferOffset + start);
                if (!Utf8.IsValid(buffer.AsSpan(start, consumed)))
                {
                    return parser.Unreadable("The report is not valid UTF-8 (UTF-16 and other encodings are not accepted).", total, gzip, peakBuffer);
                }

                parser.HashSigned(buffer.AsSpan(start, consumed), bufferOffset + start);
                start += consumed;
                if (parser.Fatal is { } fatal)
                {
                    return parser.Unreadable(fatal, total, gzip, peakBuffer);
                }

                if (final)
                {
                    return parser.Finish(total, gzip, peakBuffer);
                }
            }
        }
        catch (JsonException e)
        {
            return parser.Unreadable(
                sawContent || !final
                    ? $"The report is not valid JSON {StrictJson.Position(e.LineNumber ?? 0, e.BytePositionInLine ?? 0)}: {Describe(e)}"
                    : "The report is empty.",
                total, gzip, peakBuffer);
        }
        catch (InvalidDataException)
        {
            return parser.Unreadable("The report starts like gzip but is not valid gzip data.", total, gzip, peakBuffer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (gzip)
            {
                await source.DisposeAsync();
            }

            parser.Dispose();
        }
    }

    private static string Describe(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    /// <summary>Hands back the two bytes read to sniff for gzip, then the rest of the stream.</summary>
    private sealed class PrefixedReadStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyForwardStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_prefix.IsEmpty)
            {
                var count = Math.Min(buffer.Length, _prefix.Length);
                _prefix[..count].CopyTo(buffer);
                _prefix = _prefix[count..];
                return count;
            }

            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (!_prefix.IsEmpty)
            {
                var n = Math.Min(count, _prefix.Length);
                _prefix.Span[..n].CopyTo(buffer.AsSpan(offset, n));
                _prefix = _prefix[n..];
                return n;
            }

            return inner.Read(buffer, offset, count);
        }
    }
}

/// <summary>
/// The token-by-token state machine behind <see cref="UsageReportReader"/>: it is fed one buffer at a time and keeps
/// only the figures it aggregates, never the document.
/// </summary>
internal sealed partial class ReportDocumentParser : IDisposable
{
    public const long MaxValue = 1_000_000_000_000_000;
    private const string ReportIdRule = "report.reportId must be 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit.";

    private const int MaxTextChars = 256;
    private const string SignatureAlgorithm = "HMAC-SHA256";

    private readonly UsageReportOptions _options;
    private readonly UsageCustomerOptions _customer;
    private readonly DateTimeOffset _now;
    private readonly List<Frame> _frames = [];
    private readonly List<string> _reasons = [];
    private readonly char[] _chars = new char[4096];
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly IncrementalHash _content = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _document = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<IncrementalHash> _hmacs = [];
    private readonly List<MetricDraft> _metrics = [];
    private int _extraReasons;
    private Prop _pending;
    private int _skipDepth;

    private long _reportStart = -1;
    private long _reportEnd = -1;
    private long _hashedUpTo;
    private bool _reportSeen;
    private string? _signatureAlgorithm;
    private string? _signatureHex;
    private bool _signatureSeen;

    private long? _schemaVersion;
    private string? _reportId;
    private string? _customerId;
    private string? _installationId;
    private string? _productName;
    private string? _productVersion;
    private DateTimeOffset? _periodStart;
    private DateTimeOffset? _periodEnd;
    private DateTimeOffset? _generatedAt;
    private bool _metricsSeen;
    private int _metricIndex = -1;
    private long _entryIndex = -1;
    private int _scopeCount;

    private MetricDraft? _metric;
    private DateOnly? _entryDay;
    private string? _entryCluster;
    private string? _entryTenant;
    private long? _entryValue;
    private bool _entryInvalid;

    public ReportDocumentParser(UsageReportOptions options, UsageCustomerOptions customer, DateTimeOffset now)
    {
        _options = options;
        _customer = customer;
        _now = now;
        _hmacs.Add(IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(customer.SigningSecret)));
        if (!string.IsNullOrEmpty(customer.PreviousSigningSecret))
        {
            _hmacs.Add(IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(customer.PreviousSigningSecret)));
        }
    }

    private enum Kind
    {
        Envelope,
        Signature,
        Report,
        Product,
        Period,
        Metrics,
        Metric,
        Breakdown,
        Entry,
        Skip,
    }

    private enum Prop
    {
        None,
        Unknown,
        Schema,
        Report,
        Signature,
        Algorithm,
        SchemaVersion,
        ReportId,
        CustomerId,
        InstallationId,
        Product,
        Period,
        GeneratedAt,
        Metrics,
        Name,
        Version,
        Start,
        End,
        Value,
        Breakdown,
        Day,
        Cluster,
        Tenant,
    }

    /// <summary>Set when reading cannot go on (a limit was passed); the document is refused with this reason.</summary>
    public string? Fatal { get; private set; }

    /// <summary>Reads every complete token of <paramref name="data"/>; returns how many bytes they took.</summary>
    public int Parse(ReadOnlySpan<byte> data, bool final, ref JsonReaderState state, long offset)
    {
        var reader = new Utf8JsonReader(data, final, state);
        while (Fatal is null && reader.Read())
        {
            OnToken(ref reader, offset);
        }

        state = reader.CurrentState;
        return (int)reader.BytesConsumed;
    }

    /// <summary>Feeds bytes of the document, as read and in order, to the hash of the whole document.</summary>
    public void HashDocument(ReadOnlySpan<byte> read) => _document.AppendData(read);

    /// <summary>Feeds the signed bytes (the <c>report</c> value, brace to brace) among <paramref name="consumed"/> to the hashes.</summary>
    public void HashSigned(ReadOnlySpan<byte> consumed, long offset)
    {
        if (_reportStart < 0)
        {
            return;
        }

        var from = Math.Max(_hashedUpTo, _reportStart);
        var to = offset + consumed.Length;
        if (_reportEnd >= 0)
        {
            to = Math.Min(to, _reportEnd);
        }

        if (to <= from)
        {
            return;
        }

        var signed = consumed.Slice((int)(from - offset), (int)(to - from));
        _content.AppendData(signed);
        foreach (var hmac in _hmacs)
        {
            hmac.AppendData(signed);
        }

        _hashedUpTo = to;
    }

    public UsageReportReadResult Unreadable(string reason, long bytes, bool compressed, int peakBuffer) => new()
    {
        Reasons = [reason],
        Unreadable = true,
        ReportId = _reportId,
        CustomerId = _customerId,
        Bytes = bytes,
        Compressed = compressed,
        PeakBufferBytes = peakBuffer,
    };

    public UsageReportReadResult Finish(long bytes, bool compressed, int peakBuffer)
    {
        string? contentHash = null;
        if (!_reportSeen)
        {
            Reason("The document has no 'report' object; a usage report is {\"report\": {...}, \"signature\": {...}} (docs/usage-report.schema.json).");
        }
        else if (_reportEnd >= 0)
        {
            contentHash = Convert.ToHexStringLower(_content.GetHashAndReset());
            CheckReport();
            CheckSignature();
        }

        var metrics = _reasons.Count == 0 ? BuildMetrics() : null;
        var reasons = _reasons.ToList();
        if (_extraReasons > 0)
        {
            reasons.Add($"... and {_extraReasons} more problems of the same kinds.");
        }

        var report = reasons.Count == 0 && metrics is not null
            ? new UsageReport
            {
                ReportId = _reportId!,
                CustomerId = _customerId!,
                InstallationId = _installationId!,
                ProductName = _productName!,
                ProductVersion = _productVersion!,
                PeriodStart = _periodStart!.Value,
                PeriodEnd = _periodEnd!.Value,
                GeneratedAt = _generatedAt!.Value,
                Metrics = metrics,
                ContentHash = contentHash!,
            }
            : null;

        return new UsageReportReadResult
        {
            Report = report,
            Reasons = reasons,
            ReportId = _reportId,
            CustomerId = _customerId,
            ContentHash = contentHash,
            DocumentHash = Convert.ToHexStringLower(_document.GetHashAndReset()),
            Bytes = bytes,
            Compressed = compressed,
            PeakBufferBytes = peakBuffer,
        };
    }

    public void Dispose()
    {
        _content.Dispose();
        _document.Dispose();
        foreach (var hmac in _hmacs)
        {
            hmac.Dispose();
        }
    }

    private void OnToken(ref Utf8JsonReader reader, long offset)
    {
        var token = reader.TokenType;
        if (_frames.Count > 0 && _frames[^1].Kind == Kind.Skip)
        {
            if (token is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                _skipDepth++;
            }
            else if (token is JsonTokenType.EndObject or JsonTokenType.EndArray && --_skipDepth == 0)
            {
                _frames.RemoveAt(_frames.Count - 1);
            }

            return;
        }

        switch (token)
        {
            case JsonTokenType.PropertyName:
                OnProperty(ref reader);
                return;
            case JsonTokenType.EndObject:
            case JsonTokenType.EndArray:
                OnEnd(ref reader, offset);
                return;
            default:
                OnValue(ref reader, offset);
                return;
        }
    }

    private void OnProperty(ref Utf8JsonReader reader)
    {
        var index = _frames.Count - 1;
        var frame = _frames[index];
        var prop = Lookup(frame.Kind, ref reader);
        if (prop == Prop.Unknown)
        {
            Reason($"{Describe(frame.Kind)} has a property the format does not define: '{Truncate(SafeName(ref reader))}'.");
        }
        else
        {
            var bit = 1 << (int)prop;
            if ((frame.Seen & bit) != 0)
            {
                Reason($"{Describe(frame.Kind)} repeats the property '{Truncate(SafeName(ref reader))}'; each property may appear once.");
                prop = Prop.Unknown;
            }

            frame.Seen |= bit;
            _frames[index] = frame;
        }

        _pending = prop;
    }

    private void OnValue(ref Utf8JsonReader reader, long offset)
    {
        var token = reader.TokenType;
        if (_frames.Count == 0)
        {
            if (token != JsonTokenType.StartObject)
            {
                Fatal = "The document must be a JSON object: {\"report\": {...}, \"signature\": {...}}.";
                return;
            }

            Push(Kind.Envelope);
            return;
        }

        var kind = _frames[^1].Kind;
        if (kind == Kind.Metrics)
        {
            _metricIndex++;
            if (_metricIndex >= _options.MaxMetrics)
            {
                Fatal = $"The report has more than {_options.MaxMetrics} metrics.";
                return;
            }

            if (Expect(ref reader, JsonTokenType.StartObject, Kind.Metric, null, "an object"))
            {
                _metric = new MetricDraft(_metricIndex);
                _entryIndex = -1;
                Push(Kind.Metric);
            }

            return;
        }

        if (kind == Kind.Breakdown)
        {
            _entryIndex++;
            if (Expect(ref reader, JsonTokenType.StartObject, Kind.Entry, null, "an object"))
            {
                _entryDay = null;
                _entryCluster = null;
                _entryTenant = null;
                _entryValue = null;
                _entryInvalid = false;
                Push(Kind.Entry);
            }

            return;
        }

        var prop = _pending;
        _pending = Prop.None;
        if (prop == Prop.Unknown)
        {
            SkipValue(ref reader);
            return;
        }

        switch (kind, prop)
        {
            case (Kind.Envelope, Prop.Schema):
                if (Expect(ref reader, JsonTokenType.String, Kind.Envelope, "$schema", "a string"))
                {
                    RequireValidText(ref reader, Kind.Envelope, "$schema");
                }

                return;
            case (Kind.Envelope, Prop.Report):
                if (Expect(ref reader, JsonTokenType.StartObject, Kind.Envelope, "report", "an object"))
                {
                    _reportSeen = true;
                    _reportStart = offset + reader.TokenStartIndex;
                    Push(Kind.Report);
                }

                return;
            case (Kind.Envelope, Prop.Signature):
                if (Expect(ref reader, JsonTokenType.StartObject, Kind.Envelope, "signature", "an object"))
                {
                    _signatureSeen = true;
                    Push(Kind.Signature);
                }

                return;
            case (Kind.Signature, Prop.Algorithm):
                _signatureAlgorithm = ReadText(ref reader, Kind.Signature, "algorithm");
                return;
            case (Kind.Signature, Prop.Value):
                _signatureHex = ReadText(ref reader, Kind.Signature, "value");
                return;
            case (Kind.Report, Prop.SchemaVersion):
                _schemaVersion = ReadCount(ref reader, Kind.Report, "schemaVersion");
                return;
            case (Kind.Report, Prop.ReportId):
                var reportId = ReadText(ref reader, Kind.Report, "reportId", ReportIdRule);
                if (reportId is not null && !UsageReportKeys.IsValidReportId(reportId))
                {
                    Reason(ReportIdRule);
                }
                else
                {
                    _reportId = reportId;
                }

                return;
            case (Kind.Report, Prop.CustomerId):
                var customerId = ReadText(ref reader, Kind.Report, "customerId");
                if (customerId is not null && !UsageReportOptions.CustomerIdPattern().IsMatch(customerId))
                {
                    Reason("report.customerId is not a customer id (a-z, 0-9 and '-').");
                }
                else
                {
                    _customerId = customerId;
                }

                return;
            case (Kind.Report, Prop.InstallationId):
                var installationId = ReadText(ref reader, Kind.Report, "installationId");
                if (installationId is not null && (IsSpace(installationId[0]) || IsSpace(installationId[^1])))
                {
                    // "inst-1 " would be another installation than "inst-1", whose periods it could overlap.
                    Reason("report.installationId starts or ends with white space; name the installation without it, the same way in every report.");
                }
                else if (installationId is not null && InvisibleText.FirstInvisible(installationId) is { } invisible)
                {
                    // "inst-1\u200B" looks like "inst-1" and would be another installation, whose periods it could overlap.
                    Reason($"report.installationId contains an invisible or formatting character (U+{invisible.Value:X4}); name the installation without it, the same way in every report.");
                }
                else
                {
                    _installationId = installationId;
                }

                return;
            case (Kind.Report, Prop.Product):
                if (Expect(ref reader, JsonTokenType.StartObject, Kind.Report, "product", "an object"))
                {
                    Push(Kind.Product);
                }

                return;
            case (Kind.Report, Prop.Period):
                if (Expect(ref reader, JsonTokenType.StartObject, Kind.Report, "period", "an object"))
                {
                    Push(Kind.Period);
                }

                return;
            case (Kind.Report, Prop.GeneratedAt):
                _generatedAt = ReadInstant(ref reader, Kind.Report, "generatedAt");
                return;
            case (Kind.Report, Prop.Metrics):
                if (Expect(ref reader, JsonTokenType.StartArray, Kind.Report, "metrics", "an array"))
                {
                    _metricsSeen = true;
                    Push(Kind.Metrics);
                }

                return;
            case (Kind.Product, Prop.Name):
                _productName = ReadText(ref reader, Kind.Product, "name");
                return;
            case (Kind.Product, Prop.Version):
                _productVersion = ReadText(ref reader, Kind.Product, "version");
                return;
            case (Kind.Period, Prop.Start):
                _periodStart = ReadInstant(ref reader, Kind.Period, "start", toTheMillisecond: true);
                return;
            case (Kind.Period, Prop.End):
                _periodEnd = ReadInstant(ref reader, Kind.Period, "end", toTheMillisecond: true);
                return;
            case (Kind.Metric, Prop.Name):
                var name = ReadText(ref reader, Kind.Metric, "name");
                if (name is not null && !UsageReportOptions.MetricNamePattern().IsMatch(name))
                {
                    Reason(UsageReportOptions.LowerCaseOf(name) is { } lower
                        ? $"{MetricPath()}.name: metric names are lower case: '{name}' is written '{lower}'."
                        : $"{MetricPath()}.name must be {UsageReportOptions.MetricNameRule}.");
                    _metric!.Invalid = true;
                }
                else
                {
                    _metric!.Name = name;
                }

                return;
            case (Kind.Metric, Prop.Value):
                _metric!.Value = ReadCount(ref reader, Kind.Metric, "value");
                _metric.Invalid |= _metric.Value is null;
                return;
            case (Kind.Metric, Prop.Breakdown):
                if (Expect(ref reader, JsonTokenType.StartArray, Kind.Metric, "breakdown", "an array"))
                {
                    _metric!.HasBreakdown = true;
                    Push(Kind.Breakdown);
                }
                else
                {
                    _metric!.Invalid = true;
                }

                return;
            case (Kind.Entry, Prop.Day):
                _entryDay = ReadDay(ref reader, Kind.Entry, "day");
                _entryInvalid |= _entryDay is null;
                return;
            case (Kind.Entry, Prop.Cluster):
                _entryCluster = ReadName(ref reader, Kind.Entry, "cluster");
                _entryInvalid |= _entryCluster is null;
                return;
            case (Kind.Entry, Prop.Tenant):
                _entryTenant = ReadName(ref reader, Kind.Entry, "tenant");
                _entryInvalid |= _entryTenant is null;
                return;
            case (Kind.Entry, Prop.Value):
                _entryValue = ReadCount(ref reader, Kind.Entry, "value");
                _entryInvalid |= _entryValue is null;
                return;
            default:
                SkipValue(ref reader);
                return;
        }
    }

    private void OnEnd(ref Utf8JsonReader reader, long offset)
    {
        var frame = _frames[^1];
        _frames.RemoveAt(_frames.Count - 1);
        switch (frame.Kind)
        {
            case Kind.Report:
                _reportEnd = offset + reader.BytesConsumed;
                Require(frame, Prop.SchemaVersion, Prop.ReportId, Prop.CustomerId, Prop.InstallationId, Prop.Product, Prop.Period, Prop.GeneratedAt, Prop.Metrics);
                return;
            case Kind.Product:
                Require(frame, Prop.Name, Prop.Version);
                return;
            case Kind.Period:
                Require(frame, Prop.Start, Prop.End);
                return;
            case Kind.Signature:
                Require(frame, Prop.Algorithm, Prop.Value);
                return;
            case Kind.Metric:
                Require(frame, Prop.Name, Prop.Value);
                EndMetric();
                return;
            case Kind.Entry:
                Require(frame, Prop.Day, Prop.Value);
                EndEntry();
                return;
            default:
                return;
        }
    }

    private void EndEntry()
    {
        var metric = _metric!;
        metric.Entries++;
        if (_entryInvalid || _entryValue is not { } value || _entryDay is not { } day)
        {
            metric.Invalid = true;
            return;
        }

        // The parts of a distinct count are not added up (none may exceed its value), so a sum beyond what can be
        // counted only matters for a metric whose parts add up; the metric's name may come after its breakdown, so
        // CheckReport decides, and says so once for the metric.
        if (value > long.MaxValue - metric.BreakdownSum)
        {
            metric.BreakdownOverflow = true;
            metric.BreakdownSum = long.MaxValue;
        }
        else
        {
            metric.BreakdownSum += value;
        }

        metric.BreakdownMax = Math.Max(metric.BreakdownMax, value);
        metric.MinDay = metric.MinDay is { } min && min < day ? min : day;
        metric.MaxDay = metric.MaxDay is { } max && max > day ? max : day;

        ref var dayAggregate = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(metric.Days, day, out var dayExisted);
        if (!dayExisted && metric.Days.Count > _options.MaxPeriodDays + 1)
        {
            Fatal = $"{MetricPath()}.breakdown covers more distinct days than a period may have ({_options.MaxPeriodDays}).";
            return;
        }

        dayAggregate.Add(value);

        if (_entryCluster is not null || _entryTenant is not null)
        {
            ref var scopeAggregate = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(metric.Scopes, new UsageScope(_entryCluster, _entryTenant), out var scopeExisted);
            if (!scopeExisted && ++_scopeCount > _options.MaxScopes)
            {
                Fatal = $"The report breaks its metrics down by more than {_options.MaxScopes} distinct cluster and tenant combinations.";
                return;
            }

            scopeAggregate.Add(value);
        }
    }

    private void EndMetric()
    {
        var metric = _metric!;
        _metric = null;
        if (metric.Name is not null && _metrics.Any(m => m.Name == metric.Name))
        {
            Reason($"{MetricPath()} repeats the metric '{metric.Name}'; each metric may appear once.");
            return;
        }

        _metrics.Add(metric);
    }

    private void CheckReport()
    {
        if (_schemaVersion is { } version && version != 1)
        {
            Reason($"report.schemaVersion {version} is not supported; this service reads schemaVersion 1.");
        }

        if (_customerId is not null && !string.Equals(_customerId, _customer.Id, StringComparison.Ordinal))
        {
            Reason($"report.customerId '{_customerId}' is not the customer the report was uploaded for ('{_customer.Id}').");
        }

        if (_metricsSeen && _metricIndex < 0)
        {
            Reason("report.metrics is empty; state every metric, with value 0 when nothing was used.");
        }

        if (_generatedAt is { } generated && generated > _now + _options.MaxClockSkew)
        {
            Reason($"report.generatedAt ({generated:O}) is in the future.");
        }

        if (_periodStart is not { } start || _periodEnd is not { } end)
        {
            return;
        }

        if (start < UsageReport.EarliestPeriodStart)
        {
            Reason(string.Create(CultureInfo.InvariantCulture, $"report.period.start ({start:O}) is before {UsageReport.EarliestPeriodStart:yyyy-MM-dd} (UTC), the earliest a report may count."));
        }

        if (end <= start)
        {
            Reason($"report.period.end ({end:O}) is not after report.period.start ({start:O}).");
            return;
        }

        if (end - start > TimeSpan.FromDays(_options.MaxPeriodDays))
        {
            Reason($"The report's period is longer than {_options.MaxPeriodDays} days; send one report per month or per year.");
        }

        if (end > _now + _options.MaxClockSkew)
        {
            Reason($"report.period.end ({end:O}) is in the future: a report can only count what has happened.");
        }

        if (_generatedAt is { } at && at < end)
        {
            Reason($"report.generatedAt ({at:O}) is before report.period.end ({end:O}): the report was made before its period was over.");
        }

        var firstDay = DateOnly.FromDateTime(start.UtcDateTime);
        var lastDay = UsageReport.LastDay(end);
        var singleMonth = UsageReport.MonthKey(firstDay) == UsageReport.MonthKey(lastDay);
        foreach (var metric in _metrics.Where(m => !m.Invalid && m.Name is not null && m.Value is not null))
        {
            var path = $"report.metrics[{metric.Index}]";
            var aggregation = _options.AggregationOf(metric.Name!);
            if (metric.MinDay < firstDay || metric.MaxDay > lastDay)
            {
                Reason(string.Create(CultureInfo.InvariantCulture, $"{path} ('{metric.Name}') has breakdown days outside the period {firstDay:yyyy-MM-dd}..{lastDay:yyyy-MM-dd} (UTC)."));
                continue;
            }

            if (metric.Entries > 0)
            {
                if (aggregation == MetricAggregation.Sum && metric.BreakdownOverflow)
                {
                    Reason($"The values of {path}.breakdown ('{metric.Name}') add up beyond what can be counted.");
                    continue;
                }

                if (aggregation == MetricAggregation.Sum && metric.BreakdownSum != metric.Value)
                {
                    Reason(string.Create(CultureInfo.InvariantCulture, $"{path} ('{metric.Name}'): the breakdown adds up to {metric.BreakdownSum}, but value is {metric.Value}."));
                    continue;
                }

                if (aggregation == MetricAggregation.Max && metric.BreakdownMax > metric.Value)
                {
                    Reason(string.Create(CultureInfo.InvariantCulture, $"{path} ('{metric.Name}') counts distinct items: no breakdown entry may exceed value {metric.Value}, but one is {metric.BreakdownMax}."));
                    continue;
                }
            }

            // Nothing used needs no splitting: a 0 is 0 in every month.
            if (!singleMonth && metric.Value != 0 && (aggregation == MetricAggregation.Max || metric.Entries == 0))
            {
                Reason(aggregation == MetricAggregation.Max
                    ? $"{path} ('{metric.Name}') counts distinct items, which cannot be split between months: send one report per calendar month (UTC)."
                    : $"{path} ('{metric.Name}'): the period spans several months, so the metric needs a daily breakdown to split its value between months.");
            }
        }
    }

    private void CheckSignature()
    {
        if (!_signatureSeen)
        {
            Reason("The report is not signed: add signature {\"algorithm\": \"HMAC-SHA256\", \"value\": hex} computed over the report's bytes with the customer's signing secret.");
            return;
        }

        if (_signatureAlgorithm is not null && _signatureAlgorithm != SignatureAlgorithm)
        {
            Reason($"signature.algorithm must be \"{SignatureAlgorithm}\".");
            return;
        }

        Span<byte> presented = stackalloc byte[32];
        if (_signatureHex is not { Length: 64 } || Convert.FromHexString(_signatureHex, presented, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32)
        {
            Reason("signature.value must be the HMAC-SHA256 as 64 hexadecimal characters.");
            return;
        }

        var matches = false;
        Span<byte> expected = stackalloc byte[32];
        foreach (var hmac in _hmacs)
        {
            hmac.GetHashAndReset(expected);
            matches |= System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(expected, presented);
        }

        if (!matches)
        {
            Reason("The signature does not match: the report was changed after it was signed, or signed with another secret than this customer's.");
        }
    }

    private List<UsageMetric>? BuildMetrics()
    {
        var result = new List<UsageMetric>(_metrics.Count);
        var firstDay = DateOnly.FromDateTime(_periodStart!.Value.UtcDateTime);
        var lastDay = UsageReport.LastDay(_periodEnd!.Value);
        foreach (var draft in _metrics)
        {
            var aggregation = _options.AggregationOf(draft.Name!);
            var days = draft.Days.ToDictionary(d => d.Key, d => d.Value.Of(aggregation));
            var months = new SortedDictionary<string, long>(StringComparer.Ordinal);
            // Every month the period touches has the metric's share, 0 where nothing was used: the report speaks for
            // those months, so they show it (reported as 0), as a month without any report does not.
            for (var month = new DateOnly(firstDay.Year, firstDay.Month, 1); month <= lastDay; month = month.AddMonths(1))
            {
                months[UsageReport.MonthKey(month)] = 0;
            }

            if (aggregation == MetricAggregation.Sum && draft.Entries > 0)
            {
                foreach (var (day, value) in days)
                {
                    var key = UsageReport.MonthKey(day);
                    months[key] = months.GetValueOrDefault(key) + value;
                }
            }
            else
            {
                // The period lies in one month, or the value is 0 (CheckReport refuses anything else).
                months[UsageReport.MonthKey(firstDay)] = draft.Value!.Value;
            }

            result.Add(new UsageMetric
            {
                Name = draft.Name!,
                Value = draft.Value!.Value,
                Aggregation = aggregation,
                Entries = draft.Entries,
                Days = days,
                Scopes = draft.Scopes.ToDictionary(s => s.Key, s => s.Value.Of(aggregation)),
                Months = months,
            });
        }

        return result;
    }

    private void Require(Frame frame, params Prop[] required)
    {
        foreach (var prop in required)
        {
            if ((frame.Seen & (1 << (int)prop)) == 0)
            {
                Reason($"{Where(frame.Kind, null)} is missing '{NameOf(prop)}'.");
                if (frame.Kind == Kind.Metric)
                {
                    _metric!.Invalid = true;
                }
                else if (frame.Kind == Kind.Entry)
                {
                    _entryInvalid = true;
                }
            }
        }
    }

    private bool Expect(ref Utf8JsonReader reader, JsonTokenType type, Kind where, string? field, string what)
    {
        if (reader.TokenType == type)
        {
            return true;
        }

        Reason($"{Where(where, field)} must be {what}.");
        SkipValue(ref reader);
        return false;
    }

    private void SkipValue(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            _skipDepth = 1;
            Push(Kind.Skip);
        }
    }

    /// <summary>A string of 1-256 characters; <paramref name="lengthRule"/>, when given, is the reason for one blank or too long.</summary>
    private string? ReadText(ref Utf8JsonReader reader, Kind where, string field, string? lengthRule = null) =>
        CopyText(ref reader, where, field, out var length, lengthRule) ? new string(_chars, 0, length) : null;

    /// <summary>A cluster or tenant name: interned, so a million entries naming a hundred clusters allocate a hundred strings.</summary>
    private string? ReadName(ref Utf8JsonReader reader, Kind where, string field)
    {
        if (!CopyText(ref reader, where, field, out var length))
        {
            return null;
        }

        var lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();
        var span = _chars.AsSpan(0, length);
        if (lookup.TryGetValue(span, out var existing))
        {
            return existing;
        }

        if (_names.Count >= _options.MaxScopes * 2)
        {
            Fatal = $"The report names more than {_options.MaxScopes * 2} distinct clusters and tenants.";
            return null;
        }

        var name = span.ToString();
        _names.Add(name, name);
        return name;
    }

    /// <summary>
    /// Refuses a string that is not valid text (an unpaired surrogate escape), as <see cref="CopyText"/> does, for a
    /// string the reader does not keep and whose length the format does not limit (<c>$schema</c>).
    /// </summary>
    private void RequireValidText(ref Utf8JsonReader reader, Kind where, string field)
    {
        try
        {
            if (reader.ValueSpan.Length <= _chars.Length)
            {
                reader.CopyString(_chars);
            }
            else
            {
                _ = reader.GetString();
            }
        }
        catch (InvalidOperationException)
        {
            Reason($"{Where(where, field)} is not valid text (invalid UTF-8 or an unpaired surrogate escape).");
        }
    }

    private bool CopyText(ref Utf8JsonReader reader, Kind where, string field, out int length, string? lengthRule = null)
    {
        length = 0;
        if (reader.TokenType != JsonTokenType.String)
        {
            Reason($"{Where(where, field)} must be a string.");
            SkipValue(ref reader);
            return false;
        }

        if (reader.ValueSpan.Length > _chars.Length)
        {
            Reason(lengthRule ?? $"{Where(where, field)} is longer than {MaxTextChars} characters.");
            return false;
        }

        try
        {
            length = reader.CopyString(_chars);
        }
        catch (InvalidOperationException)
        {
            Reason($"{Where(where, field)} is not valid text (invalid UTF-8 or an unpaired surrogate escape).");
            return false;
        }

        var text = _chars.AsSpan(0, length);
        if (OnlySpaces(text) || CodePoints(text) > MaxTextChars)
        {
            Reason(lengthRule ?? $"{Where(where, field)} must be 1-{MaxTextChars} characters.");
            return false;
        }

        if (text.ContainsAnyInRange('\u0000', '\u001F') || text.Contains('\u007F'))
        {
            Reason($"{Where(where, field)} contains control characters.");
            return false;
        }

        return true;
    }

    private long? ReadCount(ref Utf8JsonReader reader, Kind where, string field)
    {
        if (reader.TokenType != JsonTokenType.Number)
        {
            Reason($"{Where(where, field)} must be a whole number.");
            SkipValue(ref reader);
            return null;
        }

        if (!reader.TryGetInt64(out var value) && !TryGetWhole(reader.ValueSpan, out value))
        {
            Reason($"{Where(where, field)} must be a whole number of at most {MaxValue}.");
            return null;
        }

        if (value < 0)
        {
            Reason(string.Create(CultureInfo.InvariantCulture, $"{Where(where, field)} is negative ({value}); counts are whole numbers of at least 0."));
            return null;
        }

        if (value > MaxValue)
        {
            Reason(string.Create(CultureInfo.InvariantCulture, $"{Where(where, field)} ({value}) is larger than {MaxValue}."));
            return null;
        }

        return value;
    }

    /// <summary>
    /// A number written with a fraction or an exponent (<c>1200.0</c>, <c>1.2e3</c>, <c>-0.0</c>) whose value is
    /// exactly a whole number of at most 18 digits: JSON Schema's <c>integer</c> is a number with no fractional part,
    /// however it is written, so the schema accepts it. Read from the digits exactly, never through a floating point
    /// value (<c>1200.0000000000000001</c> is no whole number). <paramref name="number"/> is a valid JSON number token.
    /// </summary>
    internal static bool TryGetWhole(ReadOnlySpan<byte> number, out long value)
    {
        const long MaxExponent = 1L << 40;
        value = 0;
        var negative = number.Length > 0 && number[0] == (byte)'-';
        var rest = negative ? number[1..] : number;
        var exponentAt = rest.IndexOfAny((byte)'e', (byte)'E');
        var mantissa = exponentAt < 0 ? rest : rest[..exponentAt];
        long exponent = 0;
        if (exponentAt >= 0)
        {
            var text = rest[(exponentAt + 1)..];
            var exponentNegative = text.Length > 0 && text[0] == (byte)'-';
            text = text.Length > 0 && text[0] is (byte)'-' or (byte)'+' ? text[1..] : text;
            foreach (var digit in text)
            {
                // Capped so that it cannot overflow, and above the number of digits any token can hold, so that the
                // cap never changes the outcome: 0.(999,999 zeros)1e1000005 is 100000, never 1.
                exponent = Math.Min(exponent * 10 + (digit - '0'), MaxExponent);
            }

            exponent = exponentNegative ? -exponent : exponent;
        }

        var point = mantissa.IndexOf((byte)'.');
        var whole = point < 0 ? mantissa : mantissa[..point];
        var fraction = point < 0 ? [] : mantissa[(point + 1)..];

        // The digits without the point, and the power of ten they are scaled by.
        var length = whole.Length + fraction.Length;
        var all = length <= 64 ? stackalloc byte[length] : new byte[length];
        whole.CopyTo(all);
        fraction.CopyTo(all[whole.Length..]);
        var digits = all.TrimStart((byte)'0');
        var scale = exponent - fraction.Length;
        while (digits.Length > 0 && digits[^1] == (byte)'0')
        {
            digits = digits[..^1];
            scale++;
        }

        if (digits.IsEmpty)
        {
            return true; // 0, however written (-0.0, 0e5)
        }

        if (scale < 0 || digits.Length + scale > 18)
        {
            return false; // a fraction, or more digits than a count can have
        }

        long result = 0;
        foreach (var digit in digits)
        {
            result = result * 10 + (digit - '0');
        }

        for (var i = 0; i < scale; i++)
        {
            result *= 10;
        }

        value = negative ? -result : result;
        return true;
    }

    /// <summary>
    /// An RFC 3339 date-time. <paramref name="toTheMillisecond"/> refuses a fraction of a second finer than a
    /// millisecond: a period's instants are compared in storage queries (which reports overlap a month), and the
    /// storage emulator keeps instants to the millisecond, so an end of 00:00:00.0000001 would be stored as 00:00:00
    /// and the report's share of the month it reaches into would be left out of that month.
    /// </summary>
    private DateTimeOffset? ReadInstant(ref Utf8JsonReader reader, Kind where, string field, bool toTheMillisecond = false)
    {
        var text = ReadText(ref reader, where, field);
        if (text is null)
        {
            return null;
        }

        if (!Rfc3339Pattern().IsMatch(text) || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var instant))
        {
            Reason($"{Where(where, field)} must be an RFC 3339 date-time with an offset, such as 2026-02-01T00:00:00Z.");
            return null;
        }

        if (toTheMillisecond && FinerThanMilliseconds(text))
        {
            Reason($"{Where(where, field)} ({text}) has a fraction of a second finer than a millisecond; period instants are kept to the millisecond, so give at most three decimals (a month ends at 00:00:00Z of the next).");
            return null;
        }

        return instant;
    }

    /// <summary>
    /// RFC 3339's date-time, as the schema's pattern for it reads (docs/usage-report.schema.json): seconds always, a
    /// fraction only after a point, an offset always. Checked before parsing, which alone would also take what is no
    /// RFC 3339 (no seconds, a space before the offset, a comma before the fraction, AM or PM). Offsets run to ±14:00,
    /// as far as clocks go (and .NET's offsets); a leap second (:60) is refused, as .NET cannot represent it.
    /// </summary>
    [GeneratedRegex(@"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?([Zz]|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))\z")]
    private static partial Regex Rfc3339Pattern();

    /// <summary>
    /// Whether the text's fraction of a second has a digit other than 0 after its third, read from the text rather than
    /// the parsed value, which drops digits past the seventh (as the schema's pattern reads it).
    /// </summary>
    private static bool FinerThanMilliseconds(string text)
    {
        var separator = text.AsSpan(19).IndexOf('.');
        if (separator < 0)
        {
            return false;
        }

        var fraction = text.AsSpan(19 + separator + 1);
        var digits = fraction.IndexOfAnyExceptInRange('0', '9');
        fraction = digits < 0 ? fraction : fraction[..digits];
        return fraction.Length > 3 && fraction[3..].ContainsAnyExcept('0');
    }

    private DateOnly? ReadDay(ref Utf8JsonReader reader, Kind where, string field)
    {
        if (!CopyText(ref reader, where, field, out var length))
        {
            return null;
        }

        if (!DateOnly.TryParseExact(_chars.AsSpan(0, length), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            Reason($"{Where(where, field)} must be a day in the form YYYY-MM-DD.");
            return null;
        }

        return day;
    }

    /// <summary>
    /// White space as JSON Schema's <c>\s</c> means it (ECMAScript: tab, line feed, vertical tab, form feed, carriage
    /// return, the byte order mark, and Unicode's space, line and paragraph separators), which is not .NET's: that also
    /// counts the next-line control U+0085, and not the byte order mark.
    /// </summary>
    private static bool IsSpace(char c) =>
        c is '\t' or '\n' or '\v' or '\f' or '\r' or '\uFEFF'
        || char.GetUnicodeCategory(c) is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    private static bool OnlySpaces(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!IsSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Characters as JSON Schema's <c>maxLength</c> counts them: Unicode code points, so a character outside the Basic
    /// Multilingual Plane (an emoji, written as two UTF-16 units) is one. The text holds no unpaired surrogate.
    /// </summary>
    private static int CodePoints(ReadOnlySpan<char> text)
    {
        var count = text.Length;
        foreach (var c in text)
        {
            if (char.IsLowSurrogate(c))
            {
                count--;
            }
        }

        return count;
    }

    private void Reason(string reason)
    {
        if (_reasons.Count < UsageReportReader.MaxReasons)
        {
            _reasons.Add(reason);
        }
        else
        {
            _extraReasons++;
        }
    }

    private void Push(Kind kind) => _frames.Add(new Frame(kind));

    private string MetricPath() => $"report.metrics[{_metricIndex}]";

    private string EntryPath() => $"report.metrics[{_metricIndex}].breakdown[{_entryIndex}]";

    /// <summary>The JSON path of a field, built only when a reason needs it (a report may have millions of entries).</summary>
    private string Where(Kind kind, string? field)
    {
        var owner = kind switch
        {
            Kind.Envelope => "",
            Kind.Signature => "signature",
            Kind.Report => "report",
            Kind.Product => "report.product",
            Kind.Period => "report.period",
            Kind.Metric => MetricPath(),
            Kind.Entry => EntryPath(),
            _ => "",
        };
        return field is null ? owner : owner.Length == 0 ? field : owner + "." + field;
    }

    private string Describe(Kind kind) => kind == Kind.Envelope ? "The document" : Where(kind, null);

    private static Prop Lookup(Kind kind, ref Utf8JsonReader reader)
    {
        switch (kind)
        {
            case Kind.Envelope:
                return reader.ValueTextEquals("report"u8) ? Prop.Report
                    : reader.ValueTextEquals("signature"u8) ? Prop.Signature
                    : reader.ValueTextEquals("$schema"u8) ? Prop.Schema
                    : Prop.Unknown;
            case Kind.Signature:
                return reader.ValueTextEquals("algorithm"u8) ? Prop.Algorithm
                    : reader.ValueTextEquals("value"u8) ? Prop.Value
                    : Prop.Unknown;
            case Kind.Report:
                return reader.ValueTextEquals("schemaVersion"u8) ? Prop.SchemaVersion
                    : reader.ValueTextEquals("reportId"u8) ? Prop.ReportId
                    : reader.ValueTextEquals("customerId"u8) ? Prop.CustomerId
                    : reader.ValueTextEquals("installationId"u8) ? Prop.InstallationId
                    : reader.ValueTextEquals("product"u8) ? Prop.Product
                    : reader.ValueTextEquals("period"u8) ? Prop.Period
                    : reader.ValueTextEquals("generatedAt"u8) ? Prop.GeneratedAt
                    : reader.ValueTextEquals("metrics"u8) ? Prop.Metrics
                    : Prop.Unknown;
            case Kind.Product:
                return reader.ValueTextEquals("name"u8) ? Prop.Name
                    : reader.ValueTextEquals("version"u8) ? Prop.Version
                    : Prop.Unknown;
            case Kind.Period:
                return reader.ValueTextEquals("start"u8) ? Prop.Start
                    : reader.ValueTextEquals("end"u8) ? Prop.End
                    : Prop.Unknown;
            case Kind.Metric:
                return reader.ValueTextEquals("name"u8) ? Prop.Name
                    : reader.ValueTextEquals("value"u8) ? Prop.Value
                    : reader.ValueTextEquals("breakdown"u8) ? Prop.Breakdown
                    : Prop.Unknown;
            case Kind.Entry:
                return reader.ValueTextEquals("day"u8) ? Prop.Day
                    : reader.ValueTextEquals("cluster"u8) ? Prop.Cluster
                    : reader.ValueTextEquals("tenant"u8) ? Prop.Tenant
                    : reader.ValueTextEquals("value"u8) ? Prop.Value
                    : Prop.Unknown;
            default:
                return Prop.Unknown;
        }
    }

    private static string NameOf(Prop prop) => prop switch
    {
        Prop.SchemaVersion => "schemaVersion",
        Prop.ReportId => "reportId",
        Prop.CustomerId => "customerId",
        Prop.InstallationId => "installationId",
        Prop.GeneratedAt => "generatedAt",
        _ => prop.ToString().ToLowerInvariant(),
    };

    private string SafeName(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.ValueSpan.Length <= _chars.Length ? reader.GetString() ?? "" : "(a very long name)";
        }
        catch (InvalidOperationException)
        {
            return "(not valid text)";
        }
    }

    private static string Truncate(string text)
    {
        var clean = new string(text.Select(c => char.IsControl(c) ? '?' : c).Take(64).ToArray());
        return text.Length > 64 ? clean + "..." : clean;
    }

    private record struct Frame(Kind Kind)
    {
        public int Seen;
    }

    private sealed class MetricDraft(int index)
    {
        public int Index { get; } = index;
        public string? Name { get; set; }
        public long? Value { get; set; }
        public bool Invalid { get; set; }
        public bool HasBreakdown { get; set; }
        public long Entries { get; set; }
        /// <summary>The sum of the parts, or <see cref="long.MaxValue"/> once they add up beyond it (<see cref="BreakdownOverflow"/>).</summary>
        public long BreakdownSum { get; set; }
        public bool BreakdownOverflow { get; set; }
        public long BreakdownMax { get; set; }
        public DateOnly? MinDay { get; set; }
        public DateOnly? MaxDay { get; set; }
        public Dictionary<DateOnly, UsageAggregate> Days { get; } = [];
        public Dictionary<UsageScope, UsageAggregate> Scopes { get; } = [];
    }
}
