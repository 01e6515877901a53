using Azure.Data.Tables;

namespace TelemetryFunctions.Storage;

/// <summary>
/// A text longer than one string property holds, stored across several: Table Storage holds at most 32K UTF-16
/// characters (64 KiB) in one property, and 1 MiB in a whole entity.
/// </summary>
public static class ChunkedText
{
    /// <summary>Characters per string property.</summary>
    public const int ChunkChars = 32_000;

    /// <summary>Writes <paramref name="text"/> as <c>{name}</c>, <c>{name}_1</c>, ... with <c>{name}Chunks</c> saying how many.</summary>
    public static void Write(TableEntity entity, string name, string text)
    {
        var chunks = 0;
        for (var start = 0; start < text.Length || chunks == 0; chunks++)
        {
            var length = Math.Min(ChunkChars, text.Length - start);
            if (length > 0 && start + length < text.Length && char.IsHighSurrogate(text[start + length - 1]))
            {
                length--;
            }

            entity[chunks == 0 ? name : $"{name}_{chunks}"] = text.Substring(start, length);
            start += length;
        }

        entity[name + "Chunks"] = chunks;
    }

    /// <summary>Reads what <see cref="Write"/> wrote (an entity without <c>{name}Chunks</c> holds one chunk).</summary>
    public static string? Read(TableEntity entity, string name)
    {
        var chunks = entity.GetInt32(name + "Chunks") ?? 1;
        if (chunks <= 1)
        {
            return entity.GetString(name);
        }

        return string.Concat(Enumerable.Range(0, chunks).Select(i => entity.GetString(i == 0 ? name : $"{name}_{i}")));
    }
}
