using System.Text.Json;

namespace TelemetryFunctions.Ingestion;

/// <summary>
/// Parses JSON the strict way a public endpoint needs: no comments, no trailing commas, no trailing bytes,
/// bounded depth, no duplicate keys, and (checked by <see cref="FindInvalidValue"/>) no lone surrogates and no
/// numbers outside the range of a double.
/// </summary>
internal static class StrictJson
{
    public static JsonDocument? Parse(ReadOnlyMemory<byte> utf8, int maxDepth, out IngestError? error)
    {
        var options = new JsonDocumentOptions
        {
            MaxDepth = maxDepth,
            AllowTrailingCommas = false,
            CommentHandling = JsonCommentHandling.Disallow,
            AllowDuplicateProperties = false,
        };

        try
        {
            error = null;
            return JsonDocument.Parse(utf8, options);
        }
        catch (JsonException e)
        {
            var reason = e.Message.Contains("maximum configured depth", StringComparison.Ordinal)
                ? $"The JSON is nested deeper than the limit of {maxDepth} levels."
                : e.Message.Contains("Duplicate property", StringComparison.Ordinal)
                    ? $"The JSON repeats a key in one object (line {e.LineNumber}, byte {e.BytePositionInLine}); duplicate keys are not accepted."
                    : $"The body is not valid JSON (line {e.LineNumber}, byte {e.BytePositionInLine}).";
            error = IngestError.BadRequest("invalid_json", reason);
            return null;
        }
        catch (InvalidOperationException)
        {
            // The duplicate-key check unescapes every property name; a lone surrogate escape in one cannot be.
            error = IngestError.BadRequest("invalid_json", "A property name in the JSON holds invalid Unicode (a lone surrogate escape).");
            return null;
        }
    }

    /// <summary>Returns the path of the first string that is not valid Unicode or number that is not finite, or null.</summary>
    public static string? FindInvalidValue(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = property.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        return path + ".<key>";
                    }

                    if (FindInvalidValue(property.Value, path + "." + name) is { } inner)
                    {
                        return inner;
                    }
                }

                return null;

            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindInvalidValue(item, $"{path}[{i}]") is { } inner)
                    {
                        return inner;
                    }

                    i++;
                }

                return null;

            case JsonValueKind.String:
                try
                {
                    _ = element.GetString();
                    return null;
                }
                catch (InvalidOperationException)
                {
                    return path;
                }

            case JsonValueKind.Number:
                return element.TryGetDouble(out var number) && double.IsFinite(number) ? null : path;

            default:
                return null;
        }
    }
}
