using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using TelemetryFunctions.Text;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// Detection through encodings: personal data whose characters are percent-encoded (<c>jane%2Edoe%40example%2Ecom</c>,
/// also twice, <c>%252E</c>), written as HTML character references (<c>jane&amp;#64;example.com</c>,
/// <c>jane&amp;commat;example.com</c>) or in compatibility forms (the fullwidth <c>２０３.０.１１３.９１</c> or
/// <c>jane.doe＠example.com</c>, the ideographic full stop of <c>jane@example。com</c>) is looked for in a decoded copy
/// of the text, and what is found there is redacted in the text itself, over the whole encoded span. The copy is only
/// read: the stored text changes only by its redactions.
/// </summary>
public sealed partial class PersonalDataScrubber
{
    /// <summary>A copy of a text for detection only, each of its characters mapped to the span of the text it stands for.</summary>
    private sealed class DecodedView
    {
        private DecodedView(string text, int[] starts, int[] ends)
        {
            Text = text;
            Starts = starts;
            Ends = ends;
        }

        /// <summary>The decoded text.</summary>
        public string Text { get; }

        private int[] Starts { get; }

        private int[] Ends { get; }

        /// <summary>
        /// The decoded copy of <paramref name="text"/>, or null when decoding changes nothing: percent-escapes decoded
        /// (as UTF-8) up to two levels, then HTML character references (<c>&amp;#64;</c>, <c>&amp;#x40;</c>,
        /// <c>&amp;commat;</c>), then each character whose compatibility form (NFKC) is one ASCII character replaced by
        /// it, and the ideographic full stops (<c>。</c>, <c>｡</c>), which separate the labels of a domain, by a '.'.
        /// A '+' is kept as it is: it is a character of e-mail addresses as often as a space.
        /// </summary>
        public static DecodedView? Of(string text)
        {
            if (!MayNeedDecoding(text))
            {
                return null;
            }

            DecodedView? view = null;
            for (var level = 0; level < 2; level++)
            {
                var source = view?.Text ?? text;
                if (!source.Contains('%', StringComparison.Ordinal) || PercentDecoded(source) is not { } decoded)
                {
                    break;
                }

                view = view is null ? decoded : view.Compose(decoded);
            }

            var current = view?.Text ?? text;
            if (current.Contains('&', StringComparison.Ordinal) && CharacterReferencesDecoded(current) is { } referenced)
            {
                view = view is null ? referenced : view.Compose(referenced);
                current = view.Text;
            }

            if (!Ascii.IsValid(current)
                && (IsCompatibilityNormalized(current) && current.AsSpan().IndexOfAny(InvisibleCharacters) < 0
                    ? IdeographicFullStopsFolded(current) : CompatibilityFolded(current)) is { } folded)
            {
                view = view is null ? folded : view.Compose(folded);
            }

            return view;
        }

        /// <summary>
        /// The span of the original text that the characters from <paramref name="start"/> to <paramref name="end"/>
        /// of the copy stand for, or null when the original reads the same there (plain text, which the scrubbing of
        /// the text itself already judges).
        /// </summary>
        public (int Start, int End)? EncodedSpan(string original, int start, int end)
        {
            var span = (Start: Starts[start], End: Ends[end - 1]);
            return original.AsSpan(span.Start, span.End - span.Start).SequenceEqual(Text.AsSpan(start, end - start)) ? null : span;
        }

        /// <summary>The span of the original text that the characters from <paramref name="start"/> to <paramref name="end"/> of the copy stand for.</summary>
        public (int Start, int End) OriginalSpan(int start, int end) => (Starts[start], Ends[end - 1]);

        /// <summary>This view seen through <paramref name="next"/>, a view of this view's text.</summary>
        private DecodedView Compose(DecodedView next)
        {
            var starts = new int[next.Text.Length];
            var ends = new int[next.Text.Length];
            for (var i = 0; i < next.Text.Length; i++)
            {
                starts[i] = Starts[next.Starts[i]];
                ends[i] = Ends[next.Ends[i] - 1];
            }

            return new DecodedView(next.Text, starts, ends);
        }

        /// <summary>
        /// <paramref name="text"/> with its percent-escapes decoded, a run of escapes that is one UTF-8 sequence as
        /// one character (<c>%EF%BC%A0</c>, '＠'); a '%' that starts no escape, or an invalid sequence, is kept.
        /// </summary>
        private static DecodedView? PercentDecoded(string text)
        {
            var builder = new StringBuilder(text.Length);
            var starts = new List<int>(text.Length);
            var ends = new List<int>(text.Length);
            Span<byte> bytes = stackalloc byte[4];
            Span<char> chars = stackalloc char[2];
            var changed = false;
            for (var i = 0; i < text.Length;)
            {
                var length = 1;
                if (IsEscapeAt(text, i))
                {
                    var first = EscapedByte(text, i);
                    var count = first switch
                    {
                        < 0x80 => 1,
                        >= 0xC2 and < 0xE0 => 2,
                        >= 0xE0 and < 0xF0 => 3,
                        >= 0xF0 and < 0xF5 => 4,
                        _ => 0,
                    };
                    var complete = count > 0;
                    for (var k = 0; complete && k < count; k++)
                    {
                        complete = IsEscapeAt(text, i + (3 * k));
                        if (complete)
                        {
                            bytes[k] = EscapedByte(text, i + (3 * k));
                        }
                    }

                    if (complete && Rune.DecodeFromUtf8(bytes[..count], out var rune, out var consumed) == OperationStatus.Done && consumed == count)
                    {
                        var written = rune.EncodeToUtf16(chars);
                        for (var c = 0; c < written; c++)
                        {
                            builder.Append(chars[c]);
                            starts.Add(i);
                            ends.Add(i + (3 * count));
                        }

                        i += 3 * count;
                        changed = true;
                        continue;
                    }
                }

                builder.Append(text[i]);
                starts.Add(i);
                ends.Add(i + length);
                i += length;
            }

            return changed ? new DecodedView(builder.ToString(), [.. starts], [.. ends]) : null;
        }

        /// <summary>
        /// <paramref name="text"/> with its HTML character references decoded (see <see cref="CharacterReferenceAt"/>);
        /// null when it holds none.
        /// </summary>
        private static DecodedView? CharacterReferencesDecoded(string text)
        {
            if (!HasCharacterReference(text))
            {
                return null;
            }

            var builder = new StringBuilder(text.Length);
            var starts = new List<int>(text.Length);
            var ends = new List<int>(text.Length);
            Span<char> chars = stackalloc char[2];
            for (var i = 0; i < text.Length;)
            {
                if (text[i] == '&' && CharacterReferenceAt(text, i, out var rune, out var length))
                {
                    var written = rune.EncodeToUtf16(chars);
                    for (var c = 0; c < written; c++)
                    {
                        builder.Append(chars[c]);
                        starts.Add(i);
                        ends.Add(i + length);
                    }

                    i += length;
                    continue;
                }

                builder.Append(text[i]);
                starts.Add(i);
                ends.Add(i + 1);
                i++;
            }

            return new DecodedView(builder.ToString(), [.. starts], [.. ends]);
        }

        private static byte EscapedByte(string text, int index) =>
            (byte)((HexValue(text[index + 1]) << 4) | HexValue(text[index + 2]));

        /// <summary>
        /// Whether NFKC leaves <paramref name="text"/> as it is; false when it holds what NFKC refuses (a noncharacter
        /// such as U+FFFF, or a lone surrogate a decoded escape cannot make but the text itself may hold).
        /// </summary>
        private static bool IsCompatibilityNormalized(string text)
        {
            try
            {
                return text.IsNormalized(NormalizationForm.FormKC);
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        /// <summary>
        /// The NFKC form of one character or surrogate pair when it is a single ASCII character, or null; a '.' for the
        /// forms of the ideographic full stop (<c>。</c>, <c>｡</c>, <c>︒</c>). Lone
        /// surrogates and noncharacters, which NFKC refuses, have none and are not handed to it.
        /// </summary>
        private static char? FoldedToAscii(string text, int index, int length)
        {
            var c = text[index];
            if ((length == 1 && char.IsSurrogate(c)) || InvisibleText.IsNoncharacter(c)
                || (length == 2 && (char.ConvertToUtf32(c, text[index + 1]) & 0xFFFE) == 0xFFFE))
            {
                return null;
            }

            try
            {
                var folded = text.Substring(index, length).Normalize(NormalizationForm.FormKC);
                return folded.Length != 1 ? null : char.IsAscii(folded[0]) ? folded[0] : folded[0] == IdeographicFullStop ? '.' : null;
            }
            catch (ArgumentException)
            {
                return null;
            }
        }

        /// <summary>
        /// <paramref name="text"/>, which NFKC leaves as it is, with each ideographic full stop (<c>。</c>) read as a '.';
        /// null when it holds none. No other character of such a text folds to ASCII, so none is normalized one by one:
        /// ordinary Chinese or Japanese prose, where the full stop ends every sentence, costs one scan.
        /// </summary>
        private static DecodedView? IdeographicFullStopsFolded(string text)
        {
            if (!text.Contains(IdeographicFullStop, StringComparison.Ordinal))
            {
                return null;
            }

            var starts = new int[text.Length];
            var ends = new int[text.Length];
            for (var i = 0; i < text.Length; i++)
            {
                starts[i] = i;
                ends[i] = i + 1;
            }

            return new DecodedView(text.Replace(IdeographicFullStop, '.'), starts, ends);
        }

        /// <summary>
        /// Whether <paramref name="c"/> is a CJK ideograph, a kana or a Hangul syllable, none of which NFKC changes: most of
        /// a Chinese, Japanese or Korean text, which is then not normalized one character at a time.
        /// </summary>
        private static bool IsPlainScriptLetter(char c) =>
            c is >= '\u4E00' and <= '\u9FFF' or >= '\u3041' and <= '\u3096' or >= '\u30A1' and <= '\u30FA' or >= '\uAC00' and <= '\uD7A3';

        /// <summary>
        /// <paramref name="text"/> with each character (or surrogate pair) whose NFKC form is a single ASCII character
        /// replaced by it: the fullwidth forms (<c>２</c>, <c>＠</c>, <c>．</c>), small forms (<c>﹫</c>), circled and
        /// super- or subscript digits. Forms that expand to several characters (<c>⑽</c>, <c>ﬁ</c>) are kept. The
        /// invisible characters (<see cref="InvisibleCharacters"/>) are left out, each standing with the character after
        /// it, so that <c>10.0&#xAD;.0.5</c> (a soft hyphen inside) reads as an address and is redacted whole.
        /// </summary>
        private static DecodedView? CompatibilityFolded(string text)
        {
            var builder = new StringBuilder(text.Length);
            var starts = new List<int>(text.Length);
            var ends = new List<int>(text.Length);
            var changed = false;
            int? invisibleFrom = null;
            for (var i = 0; i < text.Length;)
            {
                var length = char.IsSurrogatePair(text, i) ? 2 : 1;
                if (InvisibleCharacters.Contains(text[i]))
                {
                    invisibleFrom ??= i;
                    i++;
                    changed = true;
                    continue;
                }

                var start = invisibleFrom ?? i;
                invisibleFrom = null;
                if (text[i] >= 0x80 && !IsPlainScriptLetter(text[i])
                    && (text[i] is IdeographicFullStop or HalfwidthIdeographicFullStop ? '.' : FoldedToAscii(text, i, length)) is { } c)
                {
                    builder.Append(c);
                    starts.Add(start);
                    ends.Add(i + length);
                    i += length;
                    changed = true;
                    continue;
                }

                for (var k = 0; k < length; k++)
                {
                    builder.Append(text[i + k]);
                    starts.Add(k == 0 ? start : i + k);
                    ends.Add(i + k + 1);
                }

                i += length;
            }

            return changed ? new DecodedView(builder.ToString(), [.. starts], [.. ends]) : null;
        }
    }

    /// <summary>
    /// Whether <paramref name="text"/> may read differently decoded: it holds a '%', a character outside ASCII or an
    /// HTML character reference. Plain ASCII text without a '%' or a '&amp;', most of what is ingested, costs three
    /// vectorized scans and nothing else; a '&amp;' that starts no reference (<c>?a=1&amp;b=2</c>) costs a look at the
    /// few characters after it.
    /// </summary>
    private static bool MayNeedDecoding(string text) =>
        text.Contains('%', StringComparison.Ordinal) || !Ascii.IsValid(text) || HasCharacterReference(text);

    /// <summary>
    /// Characters that show nothing and are read past in the decoded copy: those of the Basic Multilingual Plane that
    /// <see cref="InvisibleText.IsInvisibleInProse"/> calls invisible (the soft hyphen, zero-width space, joiners,
    /// direction marks, embeddings, overrides and isolates, the word joiner, the byte order mark, variation selectors...).
    /// </summary>
    private static SearchValues<char> InvisibleCharacters => InvisibleText.InvisibleInProseChars;

    /// <summary>U+3002, which the other forms of the ideographic full stop (<c>｡</c>, <c>︒</c>) fold to.</summary>
    private const char IdeographicFullStop = '\u3002';

    /// <summary>U+FF61, the halfwidth form of the ideographic full stop.</summary>
    private const char HalfwidthIdeographicFullStop = '\uFF61';

    /// <summary>The most significant digits (after any leading zeros) of a numeric character reference that can be a code point: 7 decimal digits at most (6 hexadecimal).</summary>
    private const int MaxReferenceDigits = 7;

    /// <summary>Whether <paramref name="text"/> holds an HTML character reference (see <see cref="CharacterReferenceAt"/>).</summary>
    private static bool HasCharacterReference(string text)
    {
        for (var at = text.IndexOf('&', StringComparison.Ordinal); at >= 0; at = text.IndexOf('&', at + 1))
        {
            if (CharacterReferenceAt(text, at, out _, out _))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The character of the HTML character reference at <paramref name="index"/> (a '&amp;') and its length: a
    /// numeric one, decimal or hexadecimal, with or without its ';' (<c>&amp;#64;</c>, <c>&amp;#x40</c>), as browsers
    /// read them, or a named one, with its ';', for the characters that spell addresses, URLs and name=value pairs
    /// (<c>&amp;commat;</c>, <c>&amp;period;</c>, <c>&amp;colon;</c>, <c>&amp;sol;</c>, <c>&amp;equals;</c>...).
    /// </summary>
    private static bool CharacterReferenceAt(string text, int index, out Rune value, out int length)
    {
        value = default;
        length = 0;
        var i = index + 1;
        if (i < text.Length && text[i] == '#')
        {
            i++;
            var hex = i < text.Length && text[i] is 'x' or 'X';
            if (hex)
            {
                i++;
            }

            // Browsers read every digit: leading zeros count for nothing (&#00000064; is '@'), and a reference whose
            // value runs past the last code point is no character. Each digit is read once, so a long run stays linear.
            var digitsStart = i;
            while (i < text.Length && text[i] == '0')
            {
                i++;
            }

            var significantStart = i;
            var code = 0;
            while (i < text.Length && (hex ? char.IsAsciiHexDigit(text[i]) : char.IsAsciiDigit(text[i])))
            {
                if (i - significantStart < MaxReferenceDigits)
                {
                    code = (code * (hex ? 16 : 10)) + (hex ? HexValue(text[i]) : text[i] - '0');
                }

                i++;
            }

            if (i == digitsStart || code == 0 || i - significantStart > MaxReferenceDigits || !Rune.IsValid(code))
            {
                return false;
            }

            value = new Rune(code);
        }
        else
        {
            var nameStart = i;
            while (i < text.Length && i - nameStart <= 6 && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            if (i >= text.Length || text[i] != ';' || NamedCharacter(text.AsSpan(nameStart, i - nameStart)) is not { } named)
            {
                return false;
            }

            value = new Rune(named);
        }

        length = (i < text.Length && text[i] == ';' ? i + 1 : i) - index;
        return true;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>The ASCII character an HTML named character reference stands for, among those that spell addresses, URLs and name=value pairs.</summary>
    private static char? NamedCharacter(ReadOnlySpan<char> name) => name switch
    {
        "commat" => '@',
        "period" => '.',
        "colon" => ':',
        "sol" => '/',
        "bsol" => '\\',
        "equals" => '=',
        "quest" => '?',
        "amp" => '&',
        "num" => '#',
        "percnt" => '%',
        "lowbar" => '_',
        "plus" => '+',
        "semi" => ';',
        "comma" => ',',
        "lsqb" or "lbrack" => '[',
        "rsqb" or "rbrack" => ']',
        "quot" => '"',
        "apos" => '\'',
        "lt" => '<',
        "gt" => '>',
        _ => null,
    };

    /// <summary>
    /// The spans of <paramref name="text"/> that hold, once decoded, an e-mail address, the user name and password of a
    /// URL, an IPv4 address (dotted, dashed, dotted in hexadecimal, or a URL's host in any notation), an IPv6 address or
    /// a card number, where the text itself spells it encoded; null when none.
    /// </summary>
    private static List<(int Start, int End)>? EncodedPersonalData(string text, DecodedView view)
    {
        List<(int Start, int End)>? spans = null;
        var decoded = view.Text;

        void Add(int start, int end)
        {
            if (end > start && view.EncodedSpan(text, start, end) is { } span)
            {
                (spans ??= []).Add(span);
            }
        }

        // As in the text itself, a URL's user name and password go first, and an e-mail address is not looked for in
        // them: the host after the '@' is kept.
        List<(int Start, int End)>? userInfos = null;
        if (decoded.Contains("://", StringComparison.Ordinal) && decoded.Contains('@', StringComparison.Ordinal))
        {
            foreach (Match match in UrlUserInfo().Matches(decoded))
            {
                Add(match.Index + match.Groups["scheme"].Length, match.Index + match.Length - 1);
                (userInfos ??= []).Add((match.Index, match.Index + match.Length));
            }
        }

        if (MayHoldEmail(decoded))
        {
            foreach (var match in Email().EnumerateMatches(decoded))
            {
                var (start, end) = (match.Index, match.Index + match.Length);
                if (userInfos is null || !userInfos.Exists(u => start < u.End && u.Start < end))
                {
                    Add(start, end);
                }
            }
        }

        if (decoded.Length >= 2 && decoded.Contains(':', StringComparison.Ordinal))
        {
            foreach (var (start, end) in IPv6Addresses(decoded) ?? [])
            {
                Add(start, end);
            }
        }

        if (ContainsIPv4(decoded))
        {
            foreach (var match in Ipv4Anywhere().EnumerateMatches(decoded))
            {
                Add(match.Index, match.Index + match.Length);
            }
        }

        if (ContainsDashedIPv4(decoded))
        {
            foreach (var match in DashedIpv4().EnumerateMatches(decoded))
            {
                Add(match.Index, match.Index + match.Length);
            }
        }

        if (decoded.Contains("://", StringComparison.Ordinal))
        {
            // The host may be plain where the "://" before it is encoded (http%3A%2F%2F3232235777%2F): only the
            // decoded copy shows it is a host, so its span is taken even when it reads the same.
            foreach (var (start, end) in NumericUrlHosts(decoded) ?? [])
            {
                (spans ??= []).Add(view.OriginalSpan(start, end));
            }
        }

        if (MayHoldHexDottedIPv4(decoded))
        {
            foreach (var match in HexDottedIpv4().EnumerateMatches(decoded))
            {
                Add(match.Index, match.Index + match.Length);
            }
        }

        if (decoded.Length >= 13 && CountDigits(decoded) >= 13)
        {
            foreach (var match in CardNumber().EnumerateMatches(decoded))
            {
                if (PassesLuhn(decoded.AsSpan(match.Index, match.Length)))
                {
                    Add(match.Index, match.Index + match.Length);
                }
            }
        }

        return spans;
    }

    /// <summary>
    /// <paramref name="text"/> with the personal data it spells encoded (see <see cref="EncodedPersonalData"/>)
    /// redacted, and the value of each <c>name=value</c> fragment of a denied name that only the decoded copy shows
    /// (<c>next=%2Fcb%3Ftoken%3Dabc123</c>, <c>redirect=%2Fx%3Fpassword%3Dhunter2</c>, <c>pass%77ord=x</c>), or the
    /// same instance when there is none. A fragment the text spells plainly is left to the redaction of the text itself.
    /// </summary>
    private string RedactEncodedPersonalData(string text, DecodedView? view)
    {
        if (view is null)
        {
            return text;
        }

        var spans = EncodedPersonalData(text, view);
        if (view.Text.Contains('=', StringComparison.Ordinal) || view.Text.Contains(':', StringComparison.Ordinal))
        {
            foreach (var (name, start, end) in DeniedNamedValues(view.Text) ?? [])
            {
                if (view.EncodedSpan(text, name, end) is not null)
                {
                    (spans ??= []).Add(view.OriginalSpan(start, end));
                }
            }
        }

        return spans is null ? text : RedactSpans(text, spans);
    }

    /// <summary>True when <paramref name="text"/>, decoded as <paramref name="view"/>, holds what <see cref="LooksPersonal(string)"/> looks for.</summary>
    private static bool LooksPersonalWhenDecoded(string text, DecodedView? view) =>
        view is not null && (LooksLikeSecret(view.Text) || EncodedPersonalData(text, view) is not null);

    /// <summary>
    /// Adds the spans of <paramref name="text"/> that hold, once decoded (as <paramref name="decoded"/>, its
    /// <see cref="DecodedView.Of"/>), one of <paramref name="identifiers"/>.
    /// </summary>
    private static void AddEncodedIdentifierCopies(string text, DecodedView? decoded, IReadOnlyCollection<string> identifiers, ref List<(int Start, int End)>? copies)
    {
        if (decoded is not { } view)
        {
            return;
        }

        foreach (var id in identifiers)
        {
            for (var at = view.Text.IndexOf(id, StringComparison.OrdinalIgnoreCase); at >= 0; at = view.Text.IndexOf(id, at + 1, StringComparison.OrdinalIgnoreCase))
            {
                if (view.EncodedSpan(text, at, at + id.Length) is { } span)
                {
                    (copies ??= []).Add(span);
                }
            }
        }
    }

    /// <summary>
    /// <paramref name="text"/> with each of <paramref name="spans"/> replaced by <see cref="Redacted"/>; spans that
    /// overlap or touch are replaced as one, so no part of either is left.
    /// </summary>
    private static string RedactSpans(string text, List<(int Start, int End)> spans)
    {
        spans.Sort((a, b) => a.Start.CompareTo(b.Start));
        var result = new StringBuilder(text.Length);
        var kept = 0;
        for (var i = 0; i < spans.Count;)
        {
            var (start, end) = spans[i];
            while (++i < spans.Count && spans[i].Start <= end)
            {
                end = Math.Max(end, spans[i].End);
            }

            result.Append(text, kept, start - kept).Append(Redacted);
            kept = end;
        }

        return result.Append(text, kept, text.Length - kept).ToString();
    }
}
