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

    /// <summary>
    /// Replaces the document's pseudonyms, by name: the members the preparer writes them to
    /// (<see cref="EventPreparer.PseudonymMembers"/>). Any other member, such as <c>messageId</c> or <c>event</c>, holds
    /// what the sender chose and is shown as sent, even when it equals a stored pseudonym: replacing it would confirm
    /// that it is one. A pseudonym member holding one the preview did not record fails (<see cref="Of"/>).
    /// </summary>
    private void Replace(JsonObject document)
    {
        foreach (var name in EventPreparer.PseudonymMembers)
        {
            if (document[name] is not { } node)
            {
                continue;
            }

            document[name] = node is JsonValue value && value.TryGetValue(out string? text)
                ? Of(text)
                : throw new InvalidOperationException("A pseudonym member of a stored document holds no pseudonym.");
        }
    }
}
