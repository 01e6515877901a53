using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Privacy;
using TelemetryFunctions.Storage;
using TelemetryFunctions.Tests.Infrastructure;

namespace TelemetryFunctions.Tests.Http;

/// <summary>
/// A write key may be public (a browser app's is), so <c>POST /v1/preview</c> must not tell anyone holding one the
/// stored pseudonym of an id they chose: it shows pseudonyms made under a key derived one way from the
/// pseudonymization key, the same for an id in every preview, while it decides (opt-outs, an instance's recorded
/// sharing level) with the stored ones, as ingestion does.
/// </summary>
public sealed partial class PreviewPseudonymTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task The_preview_shows_each_id_under_a_pseudonym_other_than_the_stored_one_and_the_same_in_every_preview()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var key = PreviewFidelityTests.PseudonymizationKeyOf(host);
        var stored = new Pseudonymizer(key);
        var shown = new Pseudonymizer(Pseudonymizer.PreviewKeyOf(key));
        var body = Segment.Batch(
            Segment.Track("Instance Active", userId: "user-known", anonymousId: "anon-known", properties: new JsonObject { ["instanceId"] = "instance-known" }),
            Segment.Track("Report Exported", userId: "user-known", properties: new JsonObject { ["instanceId"] = "instance-known" }),
            new JsonObject { ["type"] = "group", ["userId"] = "user-known", ["groupId"] = "group-known", ["messageId"] = "m-group" },
            new JsonObject { ["type"] = "alias", ["userId"] = "user-known", ["previousId"] = "previous-known", ["messageId"] = "m-alias" });

        var preview = await PreviewFidelityTests.PostAsync(client, "/v1/preview", body);
        var again = await PreviewFidelityTests.PostAsync(client, "/v1/preview", Segment.Batch(Segment.Track("Report Opened", userId: "user-known")));
        await PreviewFidelityTests.PostAsync(client, "/v1/batch", body);

        Assert.Equal("preview-only", preview["pseudonyms"]!.GetValue<string>());
        var previewed = RawEvents(preview);
        var ingested = await host.Tables.RowsAsync(TableNames.RawEvents);
        Assert.Equal(4, previewed.Count);
        Assert.Equal(4, ingested.Count);
        Assert.All(previewed, e => Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "user-known"), e["UserKey"]!.GetValue<string>()));
        Assert.All(previewed, e => Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "user-known"), e["event"]!["userKey"]!.GetValue<string>()));
        Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "user-known"), Assert.Single(RawEvents(again))["UserKey"]!.GetValue<string>());
        Assert.All(ingested, e => Assert.Equal(stored.Pseudonymize(IdentifierKind.User, "user-known"), e.GetString("UserKey")));
        Assert.NotEqual(stored.Pseudonymize(IdentifierKind.User, "user-known"), shown.Pseudonymize(IdentifierKind.User, "user-known"));

        var active = Assert.Single(previewed, e => e["Event"]?.GetValue<string>() == "Instance Active");
        Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "anon-known"), active["AnonymousKey"]!.GetValue<string>());
        Assert.Equal(shown.Pseudonymize(IdentifierKind.Instance, "instance-known"), active["InstanceKey"]!.GetValue<string>());
        Assert.Equal(shown.Pseudonymize(IdentifierKind.Instance, "instance-known"), active["event"]!["instanceKey"]!.GetValue<string>());
        var group = Assert.Single(previewed, e => e["Type"]!.GetValue<string>() == "group");
        Assert.Equal(shown.Pseudonymize(IdentifierKind.Group, "group-known"), group["event"]!["groupKey"]!.GetValue<string>());
        var alias = Assert.Single(previewed, e => e["Type"]!.GetValue<string>() == "alias");
        Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "previous-known"), alias["PreviousKey"]!.GetValue<string>());
        Assert.Equal(shown.Pseudonymize(IdentifierKind.User, "previous-known"), alias["event"]!["previousKey"]!.GetValue<string>());
        var instance = Assert.Single(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.Instances)!;
        Assert.Equal(shown.Pseudonymize(IdentifierKind.Instance, "instance-known"), instance["rowKey"]!.GetValue<string>());
    }

    [Fact]
    public async Task No_stored_pseudonym_or_key_of_the_events_appears_anywhere_in_their_preview()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var body = Segment.Batch(
            Segment.Track("Installation Started", userId: null, anonymousId: "install-9", properties: new JsonObject { ["os"] = "ubuntu" }),
            Segment.Track("Installation Support", userId: null, anonymousId: "install-9", properties: new JsonObject { ["email"] = "help@example.com" }),
            Segment.Track("Instance Active", userId: "user-9", properties: new JsonObject { ["instanceId"] = "instance-9", ["version"] = "1.0.0", ["sharingLevel"] = "advanced" }),
            Segment.Track("Report Exported", userId: "user-9", anonymousId: "anon-9", properties: new JsonObject { ["instanceId"] = "instance-9" }),
            new JsonObject { ["type"] = "identify", ["userId"] = "user-9", ["messageId"] = "m-identify", ["traits"] = new JsonObject { ["plan"] = "pro" } },
            new JsonObject { ["type"] = "group", ["userId"] = "user-9", ["groupId"] = "group-9", ["messageId"] = "m-group" },
            new JsonObject { ["type"] = "alias", ["userId"] = "user-9", ["previousId"] = "previous-9", ["messageId"] = "m-alias" });

        var preview = await PreviewFidelityTests.PostAsync(client, "/v1/preview", body);
        var ingest = await PreviewFidelityTests.PostAsync(client, "/v1/batch", body);

        Assert.Equal(7, ingest["accepted"]!.GetValue<int>());
        var text = preview.ToJsonString();
        var rows = (await host.Tables.AllRowsAsync()).SelectMany(t => t.Value.Select(row => (Table: t.Key, Row: row))).ToList();
        var pseudonyms = rows.SelectMany(r => PseudonymsIn(r.Row)).ToHashSet(StringComparer.Ordinal);
        Assert.True(pseudonyms.Count >= 10, $"only {pseudonyms.Count} stored pseudonyms");
        Assert.All(pseudonyms, p => Assert.DoesNotContain(p, text, StringComparison.Ordinal));
        Assert.All(rows.Where(r => Pseudonym().IsMatch(r.Row.RowKey)), r => Assert.DoesNotContain(r.Row.RowKey, text, StringComparison.Ordinal));
        Assert.All(rows.Where(r => Pseudonym().IsMatch(r.Row.PartitionKey)), r => Assert.DoesNotContain(r.Row.PartitionKey, text, StringComparison.Ordinal));

        // A key made of a pseudonym's bits (an instance's partition is its first two hex digits) is the preview's own too.
        var previewedKeys = preview["wouldStore"]!.AsArray()
            .Select(r => $"{r!["table"]}|{r["partitionKey"]}|{r["rowKey"]}")
            .ToHashSet(StringComparer.Ordinal);
        Assert.All(rows, r => Assert.DoesNotContain($"{r.Table}|{r.Row.PartitionKey}|{r.Row.RowKey}", previewedKeys));
        Assert.Equal(rows.Count, previewedKeys.Count);
    }

    [Fact]
    public async Task A_sender_chosen_value_equal_to_a_stored_pseudonym_of_the_request_is_shown_as_sent_and_confirms_nothing()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        var stored = new Pseudonymizer(PreviewFidelityTests.PseudonymizationKeyOf(host));
        var user = stored.Pseudonymize(IdentifierKind.User, "alice-1234");
        var anonymous = stored.Pseudonymize(IdentifierKind.User, "anon-1234");
        var instance = stored.Pseudonymize(IdentifierKind.Instance, "instance-1234");
        var candidates = new[] { user, anonymous, instance };
        JsonObject Guess(string eventName, string messageId, string note, JsonObject? properties = null)
        {
            var e = Segment.Track(eventName, userId: "alice-1234", messageId: messageId, anonymousId: "anon-1234", properties: properties ?? []);
            e["properties"]!["note"] = note;
            return e;
        }

        var preview = await PreviewFidelityTests.PostAsync(client, "/v1/preview", Segment.Batch(
            Guess(eventName: user, messageId: anonymous, note: instance),
            Guess(eventName: anonymous, messageId: instance, note: user),
            Guess(eventName: instance, messageId: user, note: anonymous, properties: new JsonObject { ["instanceId"] = "instance-1234" })));

        var previewed = RawEvents(preview);
        Assert.Equal(3, previewed.Count);
        foreach (var (eventName, messageId, note) in new[] { (user, anonymous, instance), (anonymous, instance, user), (instance, user, anonymous) })
        {
            var shown = Assert.Single(previewed, e => e["event"]!["messageId"]?.GetValue<string>() == messageId)["event"]!;
            Assert.Equal(eventName, shown["event"]!.GetValue<string>());
            Assert.Equal(note, shown["properties"]!["note"]!.GetValue<string>());
            Assert.Equal(Shown(host).Pseudonymize(IdentifierKind.User, "alice-1234"), shown["userKey"]!.GetValue<string>());
        }

        // Nowhere else: a stored pseudonym appears in the preview only as often as, and where, the sender wrote it.
        var text = preview.ToJsonString();
        var writtenBySender = StringsIn(preview).Where(s => s.Path.EndsWith(".event.event", StringComparison.Ordinal)
            || s.Path.EndsWith(".event.messageId", StringComparison.Ordinal) || s.Path.EndsWith(".event.properties.note", StringComparison.Ordinal)
            || s.Path.EndsWith(".Event", StringComparison.Ordinal)).ToList();
        Assert.All(candidates, c => Assert.Equal(
            writtenBySender.Count(s => s.Value == c),
            Regex.Count(text, Regex.Escape(c))));
    }

    [Fact]
    public void An_event_the_preview_shows_keeps_none_of_the_stored_keys_it_was_decided_with()
    {
        using var host = new LocalHostFactory(azurite);
        var preparer = host.Services.GetRequiredService<EventPreparer>();
        var stored = new Pseudonymizer(PreviewFidelityTests.PseudonymizationKeyOf(host));
        var preview = preparer.StartPreview();
        var now = DateTimeOffset.UtcNow;
        var incoming = new IncomingEvent
        {
            Index = 0,
            Type = "track",
            EventName = "Report Opened",
            MessageId = "m-1",
            UserId = "person-1234",
            AnonymousId = "device-1234",
            ReceivedAt = now,
            Timestamp = now,
        };

        var prepared = preparer.Prepare(incoming, "source-1", preview).Event!;
        var shown = preview.Show(prepared);

        Assert.NotEmpty(prepared.Persons);
        Assert.Empty(shown.Persons);
        var text = JsonSerializer.Serialize(shown);
        List<string> storedKeys =
        [
            stored.Pseudonymize(IdentifierKind.User, "person-1234"),
            stored.Pseudonymize(IdentifierKind.Installation, "person-1234"),
            stored.Pseudonymize(IdentifierKind.User, "device-1234"),
            stored.Pseudonymize(IdentifierKind.Installation, "device-1234"),
        ];
        Assert.All(storedKeys, key => Assert.DoesNotContain(key, text, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_preview_drops_the_events_of_an_opted_out_person_and_instance_as_ingestion_does()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await PreviewFidelityTests.PostAsync(client, "/v1/opt-out", new JsonObject { ["userId"] = "gone-user" });
        await PreviewFidelityTests.PostAsync(client, "/v1/opt-out", new JsonObject { ["instanceId"] = "gone-instance" });
        var body = Segment.Batch(
            Segment.Track("Report Opened", userId: "gone-user"),
            Segment.Track("Instance Active", userId: "server-1", properties: new JsonObject { ["instanceId"] = "gone-instance" }),
            Segment.Track("Report Opened", userId: "staying-user"));

        var preview = await PreviewFidelityTests.PostAsync(client, "/v1/preview", body);
        var ingest = await PreviewFidelityTests.PostAsync(client, "/v1/batch", body);

        Assert.Equal(1, preview["wouldAccept"]!.GetValue<int>());
        Assert.Equal(2, preview["dropped"]!["optedOut"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(ingest["dropped"], preview["dropped"]), $"dropped: {ingest["dropped"]} stored, {preview["dropped"]} previewed");
        var raw = Assert.Single(RawEvents(preview));
        Assert.DoesNotContain(preview["wouldStore"]!.AsArray(), r => r!["table"]!.GetValue<string>() == TableNames.Instances);
        Assert.Equal(Shown(host).Pseudonymize(IdentifierKind.User, "staying-user"), raw["UserKey"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_preview_applies_the_sharing_level_an_instance_declared_before_as_ingestion_does()
    {
        await using var host = new LocalHostFactory(azurite);
        var client = host.CreateSegmentClient();
        await PreviewFidelityTests.PostAsync(client, "/v1/batch", Segment.Batch(
            Segment.Track("Instance Active", userId: "server-1", properties: new JsonObject { ["instanceId"] = "basic-instance", ["sharingLevel"] = "basic" })));
        var feature = Segment.Batch(Segment.Track("Report Exported", userId: "user-1", properties: new JsonObject { ["instanceId"] = "basic-instance" }));

        var preview = await PreviewFidelityTests.PostAsync(client, "/v1/preview", feature);
        var ingest = await PreviewFidelityTests.PostAsync(client, "/v1/batch", feature);

        Assert.Equal(0, preview["wouldAccept"]!.GetValue<int>());
        Assert.Equal(1, preview["dropped"]!["sharingBasic"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(ingest["dropped"], preview["dropped"]), $"dropped: {ingest["dropped"]} stored, {preview["dropped"]} previewed");
    }

    private static Pseudonymizer Shown(LocalHostFactory host) => new(Pseudonymizer.PreviewKeyOf(PreviewFidelityTests.PseudonymizationKeyOf(host)));

    private static List<JsonNode> RawEvents(JsonObject preview) =>
        preview["wouldStore"]!.AsArray().Where(r => r!["table"]!.GetValue<string>() == TableNames.RawEvents).Select(r => r!).ToList();

    /// <summary>Every string in <paramref name="node"/>, with its path (<c>$.wouldStore[0].event.messageId</c>).</summary>
    private static IEnumerable<(string Path, string Value)> StringsIn(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(m => StringsIn(m.Value)),
        JsonArray a => a.SelectMany(StringsIn),
        JsonValue v when v.TryGetValue(out string? s) => [(v.GetPath(), s)],
        _ => [],
    };

    /// <summary>Every pseudonym (32 lowercase hex digits) in a stored row: in its keys, its columns and its stored document.</summary>
    private static IEnumerable<string> PseudonymsIn(TableEntity row) =>
        row.Select(p => p.Value switch
            {
                byte[] payload => Encoding.UTF8.GetString(payload),
                string text => text,
                _ => "",
            })
            .Append(row.PartitionKey)
            .Append(row.RowKey)
            .SelectMany(text => Pseudonym().Matches(text).Select(m => m.Value));

    [GeneratedRegex("[0-9a-f]{32}")]
    private static partial Regex Pseudonym();
}
