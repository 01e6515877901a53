using System.Text.RegularExpressions;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// IPv4 addresses written in the other notations a browser or <c>inet_aton</c> reads: one integer
/// (<c>http://3232235777/</c>), hexadecimal (<c>http://0xC0A80001/</c>, <c>0xc0.0xa8.0x00.0x01</c>), octal
/// (<c>http://0300.0250.0.1/</c>) or fewer than four parts (<c>http://192.168.1/</c>). A number alone is no address:
/// counts, durations, error codes (<c>0x80070005</c>), hashes and commit ids look the same. So such a notation is
/// taken for an address only where its place says it is one: the host of a URL (after <c>scheme://</c> and any user
/// name, up to the port, path, query or fragment), read as a browser reads a host, or four dotted parts of which at
/// least one is written in hexadecimal with <c>0x</c>, which nothing but an address is written as.
/// </summary>
public sealed partial class PersonalDataScrubber
{
    /// <summary>
    /// The spans of the URL hosts in <paramref name="text"/> that a browser reads as an IPv4 address, in order; null when
    /// none. An IPv6 host (<c>[::ffff:c0a8:1]</c>) is left to the IPv6 redaction.
    /// </summary>
    private static List<(int Start, int End)>? NumericUrlHosts(string text)
    {
        List<(int Start, int End)>? hosts = null;
        for (var at = text.IndexOf("://", StringComparison.Ordinal); at >= 0; at = text.IndexOf("://", at + 3, StringComparison.Ordinal))
        {
            // A scheme ends right before "://": a letter, digit, '+', '-' or '.'.
            if (at == 0 || !(char.IsAsciiLetterOrDigit(text[at - 1]) || text[at - 1] is '+' or '-' or '.'))
            {
                continue;
            }

            var authorityStart = at + 3;
            var authorityEnd = authorityStart;
            while (authorityEnd < text.Length && !IsAuthorityEnd(text[authorityEnd]))
            {
                authorityEnd++;
            }

            // The host follows the last '@' of the authority (a user name may hold one) and ends at the port.
            var hostStart = text.LastIndexOf('@', authorityEnd - 1, authorityEnd - authorityStart) + 1;
            hostStart = hostStart == 0 ? authorityStart : hostStart;
            var hostEnd = text.IndexOf(':', hostStart, authorityEnd - hostStart);
            hostEnd = hostEnd < 0 ? authorityEnd : hostEnd;
            if (hostEnd > hostStart && IsNumericIPv4Host(text.AsSpan(hostStart, hostEnd - hostStart)))
            {
                (hosts ??= []).Add((hostStart, hostEnd));
            }
        }

        return hosts;
    }

    /// <summary>Where a URL's authority ends: its path, query or fragment, or the end of the URL in text.</summary>
    private static bool IsAuthorityEnd(char c) =>
        char.IsWhiteSpace(c) || c is '/' or '\\' or '?' or '#' or '"' or '\'' or '<' or '>' or '(' or ')' or ',' or ';';

    /// <summary>
    /// Whether a URL host is an IPv4 address as the URL standard's IPv4 parser reads it: one to four dot-separated numbers (one trailing dot allowed), each decimal, hexadecimal
    /// after <c>0x</c> or octal after a leading <c>0</c>, every number but the last at most 255 and the last filling the
    /// bytes left. A host with anything else in it (<c>1.2.3.4.5</c>, <c>v1.example</c>) is a name.
    /// </summary>
    private static bool IsNumericIPv4Host(ReadOnlySpan<char> host)
    {
        if (host.EndsWith('.') && host.Length > 1)
        {
            host = host[..^1];
        }

        Span<Range> parts = stackalloc Range[5];
        var count = host.Split(parts, '.');
        if (count is 0 or > 4)
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            var part = host[parts[i]];
            if (ParseIPv4Number(part) is not { } value || value > (i < count - 1 ? 255 : (1L << (8 * (5 - count))) - 1))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>One number of a URL's IPv4 host: decimal, hexadecimal after <c>0x</c> (also <c>0x</c> alone, 0) or octal after a <c>0</c>; null when it is none.</summary>
    private static long? ParseIPv4Number(ReadOnlySpan<char> part)
    {
        var radix = 10;
        if (part.Length >= 2 && part[0] == '0' && part[1] is 'x' or 'X')
        {
            part = part[2..];
            radix = 16;
        }
        else if (part.Length >= 2 && part[0] == '0')
        {
            part = part[1..];
            radix = 8;
        }
        else if (part.IsEmpty)
        {
            return null;
        }

        long value = 0;
        foreach (var c in part)
        {
            var digit = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiHexDigit(c) ? (c | 0x20) - 'a' + 10 : radix;
            if (digit >= radix)
            {
                return null;
            }

            // More than 4 bytes is no address whatever follows: stop before the value can overflow.
            value = (value * radix) + digit;
            if (value > uint.MaxValue)
            {
                return long.MaxValue;
            }
        }

        return value;
    }

    /// <summary>
    /// <paramref name="text"/> with the IPv4 addresses written as four dotted parts, one of them at least in
    /// hexadecimal (<c>0xc0.0xa8.0x00.0x01</c>, <c>192.0xa8.0.1</c>), and the numeric URL hosts
    /// (<see cref="NumericUrlHosts"/>) redacted; the same instance when there is none.
    /// </summary>
    private static string RedactOtherIPv4Notations(string text)
    {
        List<(int Start, int End)>? spans = null;
        if (text.Contains("://", StringComparison.Ordinal))
        {
            spans = NumericUrlHosts(text);
        }

        if (MayHoldHexDottedIPv4(text))
        {
            foreach (var match in HexDottedIpv4().EnumerateMatches(text))
            {
                (spans ??= []).Add((match.Index, match.Index + match.Length));
            }
        }

        return spans is null ? text : RedactSpans(text, spans);
    }

    /// <summary>Whether <paramref name="text"/> holds an IPv4 address in a notation <see cref="RedactOtherIPv4Notations"/> redacts.</summary>
    private static bool ContainsOtherIPv4Notation(string text) =>
        (text.Contains("://", StringComparison.Ordinal) && NumericUrlHosts(text) is not null)
        || (MayHoldHexDottedIPv4(text) && HexDottedIpv4().IsMatch(text));

    private static bool MayHoldHexDottedIPv4(string text) =>
        text.Length >= 9 && text.Contains("0x", StringComparison.OrdinalIgnoreCase) && text.Contains('.', StringComparison.Ordinal);

    /// <summary>
    /// Four dotted parts, each a decimal number from 0 to 255 or a hexadecimal one (<c>0xc0</c>, <c>0x0000c0</c>, at
    /// most <c>0xff</c>), at least one of them hexadecimal, standing on their own: not part of a longer dotted run or
    /// glued to a word.
    /// </summary>
    [GeneratedRegex(@"(?<![0-9A-Za-z_.])(?=(?:[0-9]{1,3}\.){0,3}0[xX])(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9]|0[xX]0{0,6}[0-9A-Fa-f]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9]|0[xX]0{0,6}[0-9A-Fa-f]{1,2})(?![0-9A-Za-z_])(?!\.[0-9A-Za-z])", RegexOptions.CultureInvariant)]
    private static partial Regex HexDottedIpv4();
}
