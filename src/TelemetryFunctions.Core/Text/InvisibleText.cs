using System.Buffers;
using System.Globalization;
using System.Text;

namespace TelemetryFunctions.Text;

/// <summary>
/// What shows nothing in text that names something (an id, a declared word), and the one Unicode normalization that
/// compares such text: every reader of identifiers and declared values goes by these, so a character that makes two
/// spellings look alike in one place does so in every other.
/// </summary>
public static class InvisibleText
{
    /// <summary>
    /// Whether <paramref name="rune"/> shows nothing, or nothing of its own, where an id is read: a control character
    /// (C0, C1), a line or paragraph separator, or one that <see cref="IsInvisibleInProse"/> calls invisible. Two ids
    /// that differ only in these look alike. docs/usage-report.schema.json lists the same characters.
    /// </summary>
    public static bool IsInvisible(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
        || IsInvisibleInProse(rune);

    /// <summary>
    /// Whether <paramref name="rune"/> shows nothing inside a word of free text: a format character (Unicode category
    /// Cf: zero-width space and joiners, soft hyphen, bidirectional controls, byte order mark, tags) or one of Unicode's
    /// other default-ignorable characters (variation selectors, the combining grapheme joiner, Hangul fillers, reserved
    /// ones). Controls and line separators are left out: in prose they separate words.
    /// </summary>
    public static bool IsInvisibleInProse(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Format
        || rune.Value is 0x034F or 0x115F or 0x1160 or 0x17B4 or 0x17B5 or (>= 0x180B and <= 0x180F) or 0x2065 or 0x3164
            or (>= 0xFE00 and <= 0xFE0F) or 0xFFA0 or (>= 0xFFF0 and <= 0xFFF8) or (>= 0xE0000 and <= 0xE0FFF);

    /// <summary>
    /// The characters of the Basic Multilingual Plane <see cref="IsInvisibleInProse"/> calls invisible, for a search
    /// over UTF-16 text that reads past them one char at a time (the tags beyond it are surrogate pairs).
    /// </summary>
    public static SearchValues<char> InvisibleInProseChars { get; } = SearchValues.Create(
        Enumerable.Range(0, 0x10000)
            .Where(c => !char.IsSurrogate((char)c) && IsInvisibleInProse(new Rune(c)))
            .Select(c => (char)c)
            .ToArray());

    /// <summary>The first rune of <paramref name="text"/> that <see cref="IsInvisible"/> calls invisible, or null.</summary>
    public static Rune? FirstInvisible(string text)
    {
        foreach (var rune in text.EnumerateRunes())
        {
            if (IsInvisible(rune))
            {
                return rune;
            }
        }

        return null;
    }

    /// <summary><paramref name="text"/> without the runes <see cref="IsInvisible"/> calls invisible.</summary>
    public static string WithoutInvisible(string text) =>
        FirstInvisible(text) is null ? text : string.Concat(text.EnumerateRunes().Where(r => !IsInvisible(r)).Select(r => r.ToString()));

    /// <summary>
    /// Whether <paramref name="c"/> is a noncharacter of the Basic Multilingual Plane (U+FDD0 to U+FDEF, U+FFFE,
    /// U+FFFF): no character at all, which strict JSON lets through and normalization refuses.
    /// </summary>
    public static bool IsNoncharacter(char c) => c is >= '\uFDD0' and <= '\uFDEF' or '\uFFFE' or '\uFFFF';

    /// <summary>
    /// <paramref name="text"/> in normalization form KC, or as it is when it is not valid text: a lone surrogate or a
    /// noncharacter such as U+FFFE, which strict JSON lets through and normalization refuses with an exception.
    /// </summary>
    public static string NormalizedKC(string text)
    {
        try
        {
            return text.IsNormalized(NormalizationForm.FormKC) ? text : text.Normalize(NormalizationForm.FormKC);
        }
        catch (ArgumentException)
        {
            return text;
        }
    }
}
