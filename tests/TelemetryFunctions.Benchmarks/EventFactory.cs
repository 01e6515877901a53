using System.Buffers;
using System.Text.Json;

namespace TelemetryFunctions.Benchmarks;

/// <summary>A product server that sends telemetry, as its Segment SDK would describe it.</summary>
internal sealed record Instance(int Index, string Id, string Version, string Os, string Edition);

/// <summary>
/// The fleet the events come from: product-server instances, each with users of its own (user <c>n</c> belongs to
/// instance <c>n mod instances</c>), so a user's activity always carries the same version and OS.
/// </summary>
internal sealed class Fleet
{
    private static readonly string[] Versions = ["6.2.0", "6.2.1", "6.3.0", "7.0.0-rc.2"];
    private static readonly string[] Oses = ["linux", "windows", "macos"];
    private static readonly string[] Editions = ["community", "team", "enterprise"];

    public Fleet(int instances, int users, int seed)
    {
        var random = new Random(seed);
        Users = users;
        Instances = Enumerable.Range(0, instances)
            .Select(i => new Instance(i, RandomGuid(random), Versions[i % Versions.Length], Oses[i % Oses.Length], Editions[i % Editions.Length]))
            .ToList();
    }

    public IReadOnlyList<Instance> Instances { get; }

    public int Users { get; }

    /// <summary>The instances one client poses as: every instance whose index is the client's modulo the clients.</summary>
    public IReadOnlyList<Instance> ForClient(int client, int clients) => Instances.Where(i => i.Index % clients == client).ToList();

    /// <summary>A user of the instance, drawn uniformly from its share of the user pool.</summary>
    public string UserOf(Instance instance, Random random)
    {
        var count = ((Users - 1 - instance.Index) / Instances.Count) + 1;
        var user = instance.Index + (random.Next(count) * Instances.Count);
        return $"user-{user:000000}";
    }

    public static string RandomGuid(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return new Guid(bytes).ToString();
    }
}

/// <summary>
/// Writes one client's <c>POST /v1/batch</c> bodies: a batch comes from one instance (the client takes its instances
/// in turn), with track events of that instance's users, current timestamps and unique messageIds.
/// </summary>
internal sealed class BatchWriter(Fleet fleet, IReadOnlyList<Instance> instances, int seed) : IDisposable
{
    private static readonly string[] EventNames =
        ["Dashboard Viewed", "Report Generated", "Search Performed", "Project Created", "Item Updated", "Export Downloaded", "Settings Changed", "Integration Synced"];

    private static readonly string[] Features = ["dashboards", "reports", "search", "projects", "exports", "integrations", "settings"];
    private static readonly string[] Locales = ["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"];
    private static readonly string[] TimeZones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"];

    private readonly Random _random = new(seed);
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly Utf8JsonWriter _writer = new(Stream.Null);
    private int _next;

    /// <summary>The body of the next batch of <paramref name="events"/> events; valid until the next call.</summary>
    public ReadOnlyMemory<byte> Next(int events)
    {
        var instance = instances[_next++ % instances.Count];
        var now = DateTimeOffset.UtcNow;
        _buffer.Clear();
        _writer.Reset(_buffer);
        var w = _writer;

        w.WriteStartObject();
        w.WriteStartArray("batch");
        for (var i = 0; i < events; i++)
        {
            w.WriteStartObject();
            w.WriteString("type", "track");
            w.WriteString("event", EventNames[_random.Next(EventNames.Length)]);
            w.WriteString("userId", fleet.UserOf(instance, _random));
            w.WriteString("messageId", Fleet.RandomGuid(_random));
            w.WriteString("timestamp", now.AddMilliseconds(-_random.Next(5000)));

            w.WriteStartObject("properties");
            w.WriteString("instanceId", instance.Id);
            w.WriteString("version", instance.Version);
            w.WriteString("os", instance.Os);
            w.WriteString("edition", instance.Edition);
            w.WriteString("feature", Features[_random.Next(Features.Length)]);
            w.WriteNumber("durationMs", _random.Next(3, 2500));
            w.WriteNumber("itemCount", _random.Next(0, 500));
            w.WriteBoolean("success", _random.Next(50) != 0);
            w.WriteString("plan", instance.Edition == "community" ? "free" : "paid");
            w.WriteEndObject();

            w.WriteStartObject("context");
            w.WriteStartObject("library");
            w.WriteString("name", "@segment/analytics-node");
            w.WriteString("version", "3.1.0");
            w.WriteEndObject();
            w.WriteString("locale", Locales[_random.Next(Locales.Length)]);
            w.WriteString("timezone", TimeZones[_random.Next(TimeZones.Length)]);
            w.WriteEndObject();

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("sentAt", now);
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenMemory;
    }

    public void Dispose() => _writer.Dispose();
}
