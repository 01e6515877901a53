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
            string reason;
            if (e.Message.Contains("maximum configured depth", StringComparison.Ordinal))
            {
                reason = $"The JSON is nested deeper than the limit of {maxDepth} levels.";
            }
            else if (e.Message.Contains("Duplicate property", StringComparison.Ordinal))
            {
                // The parser's duplicate-key error carries no position; a second pass finds the repeated key.
                var at = FindDuplicateKey(utf8.Span, new JsonReaderOptions { MaxDepth = maxDepth });
                reason = $"The JSON repeats a key in one object{(at is null ? "" : " " + Position(at.Value))}; duplicate keys are not accepted.";
            }
            else
            {
                reason = e.LineNumber is { } line && e.BytePositionInLine is { } column
                    ? $"The body is not valid JSON {Position(line, column)}."
                    : "The body is not valid JSON.";
            }

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

    /// <summary>A position as people count it: line and byte within the line, both from 1.</summary>
    /// <param name="line">The zero-based line, as <see cref="JsonException.LineNumber"/>.</param>
    /// <param name="byteInLine">The zero-based byte within the line, as <see cref="JsonException.BytePositionInLine"/>.</param>
    internal static string Position(long line, long byteInLine) => $"at line {line + 1}, byte {byteInLine + 1} (counted from 1)";

    private static string Position((long Line, long ByteInLine) at) => Position(at.Line, at.ByteInLine);

    /// <summary>The zero-based line and byte of the first property name that repeats one before it in the same object.</summary>
    private static (long Line, long ByteInLine)? FindDuplicateKey(ReadOnlySpan<byte> utf8, JsonReaderOptions options)
    {
        var reader = new Utf8JsonReader(utf8, options);
        var objects = new Stack<HashSet<string>?>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        objects.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.StartArray:
                        objects.Push(null);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        objects.Pop();
                        break;
                    case JsonTokenType.PropertyName when !objects.Peek()!.Add(reader.GetString()!):
                        var start = (int)reader.TokenStartIndex;
                        var before = utf8[..start];
                        var lineStart = before.LastIndexOf((byte)'\n') + 1;
                        return (before.Count((byte)'\n'), start - lineStart);
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }

        return null;
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
