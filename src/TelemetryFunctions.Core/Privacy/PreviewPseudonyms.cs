using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Nodes;
using TelemetryFunctions.Ingestion;
using TelemetryFunctions.Instances;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// The pseudonyms one preview shows in place of the stored ones. A preview decides as ingestion does, with the stored
/// pseudonyms (an opted-out person, an instance's recorded sharing level), then shows its events with the pseudonym of
/// each identifier under the preview key (<see cref="Pseudonymizer.ForPreview"/>), so that every row key, partition key
/// and column it shows is built from those: a write key, which may be public, never reveals a stored pseudonym.
/// </summary>
public sealed class PreviewPseudonyms(Pseudonymizer preview)
{
    private readonly Dictionary<string, string> _shown = new(StringComparer.Ordinal);

    /// <summary>Notes that <paramref name="value"/>, of <paramref name="kind"/>, is stored as <paramref name="stored"/>.</summary>
    public void Record(string stored, IdentifierKind kind, string value)
    {
        if (!_shown.ContainsKey(stored))
        {
            _shown.Add(stored, preview.Pseudonymize(kind, value));
        }
    }

    /// <summary>What the preview shows for the stored pseudonym <paramref name="stored"/>; one it has not recorded is a bug, never shown.</summary>
    [return: NotNullIfNotNull(nameof(stored))]
    public string? Of(string? stored) =>
        stored is null ? null
        : _shown.TryGetValue(stored, out var shown) ? shown
        : throw new InvalidOperationException("A pseudonym the preview did not record would be shown as stored.");

    /// <summary>
    /// The event as the preview shows it: its pseudonyms, and those of its stored document, replaced.
    /// </summary>
    public PreparedEvent Show(PreparedEvent e)
    {
        var document = e.Document.DeepClone().AsObject();
        Replace(document);
        return e with
        {
            MessageKey = Of(e.MessageKey),
            UserKey = Of(e.UserKey),
            AnonymousKey = Of(e.AnonymousKey),
            PreviousKey = Of(e.PreviousKey),
            InstanceKey = Of(e.InstanceKey),
            InstallationKey = Of(e.InstallationKey),
            Document = document,

            // The erasure keys of the event's persons are stored pseudonyms, used to decide, never shown.
            Persons = [],
        };
    }

    /// <summary>The observation of an instance as the preview shows it.</summary>
    public InstanceObservation Show(InstanceObservation o) => o with { InstanceKey = Of(o.InstanceKey) };

    /// <summary>Replaces the document's pseudonyms: the preparer puts them in its top-level members (<c>userKey</c>, <c>groupKey</c>...).</summary>
    private void Replace(JsonObject document)
    {
        foreach (var name in document.Select(m => m.Key).ToList())
        {
            if (document[name] is JsonValue value && value.TryGetValue(out string? text) && _shown.TryGetValue(text, out var shown))
            {
                document[name] = shown;
            }
        }
    }
}
