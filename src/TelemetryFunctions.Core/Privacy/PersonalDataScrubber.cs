using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// Removes personal data from event properties, context and traits before anything is stored: keys that name
/// personal data are removed; in string values, e-mail addresses, card numbers, home-directory user names and the
/// values of secret or personal <c>name=value</c> fragments (URL query parameters included) are redacted in place,
/// as are IPv4 and IPv6 addresses; a value that is wholly personal, or holds a secret, is removed. Some fragments are
/// judged by their place: a number is an address as a URL's host, a <c>code</c> is a secret as a URL's parameter, a
/// <c>pin</c> only when its value can be one (see PersonalDataScrubber.Ipv4Notations.cs and <see cref="DeniedNamedValues"/>).
/// An allow-list (names, or dot paths such as <c>context.library.name</c>) keeps what the product needs.
/// </summary>
public sealed partial class PersonalDataScrubber
{
    private static readonly HashSet<string> BuiltInDeniedNames = new(StringComparer.Ordinal)
    {
        "email", "emailaddress", "mail", "ip", "ipaddress", "ipv4", "ipv6", "clientip", "remoteip", "remoteaddr",
        "xforwardedfor", "forwardedfor", "name", "firstname", "lastname", "fullname", "username", "displayname",
        "nickname", "login", "phone", "phonenumber", "mobile", "fax", "password", "passwd", "pwd", "pw", "passphrase",
        "secret", "clientsecret", "token", "accesstoken", "refreshtoken", "idtoken", "apikey", "apitoken",
        "authorization", "proxyauthorization", "auth", "cookie", "cookies", "sessionid", "ssn", "creditcard", "cardnumber", "iban",
        "address", "street", "city", "region", "postalcode", "zip", "zipcode", "latitude", "longitude", "geo",
        "location", "useragent", "userid", "distinctid", "deviceid", "anonymousid", "instanceid", "birthday", "dateofbirth",
        "dob", "gender", "avatar", "advertisingid", "adid", "idfa", "idfv", "gaid", "aaid", "sig", "pin", "otp", "passcode",
        "xamzsignature", "xgoogsignature",
    };

    /// <summary>
    /// Dot paths removed although their last name (<c>id</c>) is harmless elsewhere: the device's ids, and the places
    /// Segment's libraries repeat the raw user or group id (<c>traits.id</c>, <c>context.traits.id</c>, and each
    /// <c>id</c> of <c>context.externalIds</c>, whose items are scrubbed under the array's path).
    /// </summary>
    private static readonly HashSet<string> BuiltInDeniedPaths = new(StringComparer.OrdinalIgnoreCase)
    {
        "context.device.id", "context.device.advertisingId", "traits.id", "context.traits.id", "context.externalIds.id",
    };

    /// <summary>The words that name a setting in an error message quoting its name.</summary>
    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> SettingNouns =
        new HashSet<string>(
            ["option", "parameter", "param", "argument", "arg", "field", "flag", "setting", "property", "key", "variable", "header", "column", "attribute", "switch"],
            StringComparer.OrdinalIgnoreCase).GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Words that, after <c>name:</c> in free text, describe a value's state rather than give the value.</summary>
    private static readonly HashSet<string> StateWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "expired", "invalid", "missing", "required", "revoked", "empty", "null", "none", "undefined", "unset", "denied",
        "rejected", "incorrect", "wrong", "mismatch", "unknown", "not", "no", "yes", "true", "false", "ok", "valid", "set",
        "failed", "failure", "succeeded", "successful", "success", "error", "pending", "locked", "disabled", "enabled",
        "forbidden", "unauthorized", "unavailable", "changed", "reset", "updated", "timeout", "sent", "opened",
        "clicked", "verified", "confirmed", "saved", "deleted", "created", "added", "removed", "viewed", "requested",
    };

    /// <summary>
    /// HTTP authentication schemes: after a denied name (<c>Authorization: Basic dXNlcjpwYXNz</c>), the credentials that
    /// follow the scheme are redacted with it.
    /// </summary>
    private static readonly HashSet<string> AuthenticationSchemes = new(StringComparer.OrdinalIgnoreCase)
    {
        "basic", "bearer", "digest", "dpop", "hoba", "mutual", "negotiate", "ntlm", "oauth", "token", "apikey",
        "aws4-hmac-sha256", "ssws",
    };

    /// <summary>What a redacted fragment becomes: the surrounding text is kept.</summary>
    public const string Redacted = "[redacted]";

    /// <summary>Fragments that make any key personal or secret wherever they occur in it.</summary>
    private static readonly string[] DeniedFragments =
    [
        "email", "password", "passwd", "pwd", "secret", "token", "apikey", "phone", "ipaddress", "cookie",
        "creditcard", "username", "firstname", "lastname", "fullname", "privatekey", "accesskey", "accountkey",
        "signingkey", "encryptionkey", "masterkey", "sessionkey", "credential", "connectionstring", "clientkey", "licensekey", "authkey", "privkey",
    ];

    private static readonly string[] BuiltInAllowedPaths =
    [
        "context.library.name", "context.library.version", "context.app.name", "context.app.version",
        "context.app.build", "context.os.name", "context.os.version",
    ];

    private readonly HashSet<string> _deniedNames;
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _deniedNameLookup;
    private readonly HashSet<string> _allowedNames;
    private readonly HashSet<string> _allowedPaths;
    private readonly HashSet<string> _deniedPaths;

    public PersonalDataScrubber(IOptions<TelemetryOptions> options)
        : this(options.Value.Privacy)
    {
    }

    public PersonalDataScrubber(PrivacyOptions options)
    {
        _deniedNames = new HashSet<string>(BuiltInDeniedNames, StringComparer.Ordinal);
        _deniedPaths = new HashSet<string>(BuiltInDeniedPaths, StringComparer.OrdinalIgnoreCase);
        foreach (var name in options.DeniedPropertyNames)
        {
            if (name.Contains('.', StringComparison.Ordinal))
            {
                _deniedPaths.Add(name);
            }

            _deniedNames.Add(Normalize(name));
        }

        _deniedNameLookup = _deniedNames.GetAlternateLookup<ReadOnlySpan<char>>();

        _allowedNames = new HashSet<string>(StringComparer.Ordinal);
        _allowedPaths = new HashSet<string>(BuiltInAllowedPaths, StringComparer.OrdinalIgnoreCase);
        foreach (var entry in options.AllowedPropertyNames)
        {
            if (entry.Contains('.', StringComparison.Ordinal))
            {
                _allowedPaths.Add(entry);
            }
            else
            {
                _allowedNames.Add(Normalize(entry));
            }
        }
    }

    /// <summary>
    /// Scrubs <paramref name="node"/> in place and returns how many keys or values were removed or redacted. A string
    /// value equal to one of <paramref name="identifiers"/> (the event's raw ids, which are stored only as keyed hashes)
    /// is removed too, and one holding such an id inside longer text has it redacted (an allow-listed value is removed
    /// whole), as is a key holding one: kept beside its hash, a raw id would undo the pseudonymization.
    /// </summary>
    public int Scrub(JsonNode? node, string path, IReadOnlyCollection<string>? identifiers = null)
    {
        var removed = 0;
        ScrubNode(node, path, identifiers is { Count: > 0 } ? identifiers : null, ref removed);
        return removed;
    }

    /// <summary>
    /// Free text (an error message, a URL) with its personal fragments redacted, or null when nothing is left worth
    /// keeping: the text was wholly personal, or holds a secret (a secret's extent cannot be told reliably).
    /// </summary>
    public string? ScrubText(string text, IReadOnlyCollection<string>? identifiers = null)
    {
        var decodedText = DecodedView.Of(text);
        var withoutIdentifiers = WithoutIdentifiers(text, identifiers is { Count: > 0 } ? identifiers : null, decodedText);

        // A secret is looked for before the redaction too: redacting a name's value can take away what marks the rest
        // as one (the "Bearer" of "Authorization: Bearer ..." is the value of "Authorization"). The decoded copy is
        // made again only when a raw id was redacted, which changed the text.
        var decoded = ReferenceEquals(withoutIdentifiers, text) ? decodedText : DecodedView.Of(withoutIdentifiers);
        if (LooksLikeSecret(withoutIdentifiers) || (decoded is not null && LooksLikeSecret(decoded.Text)))
        {
            return null;
        }

        var redacted = Redact(withoutIdentifiers, decoded);

        // Every IPv4 address matched by the check, dotted or dashed, was just replaced by the same pattern: only the
        // other kinds are looked for again (an IPv6 address in a form the redaction does not take apart, a secret).
        return IsOnlyRedaction(redacted) || LooksPersonalBesidesIPv4(redacted) ? null : redacted;
    }

    /// <summary>
    /// True when an allow-listed value (an <c>os</c>, a <c>version</c>, <c>context.app.name</c>...) must be removed
    /// all the same. Such a value is kept whole or removed whole, never redacted (an OS name with a hole in it is no
    /// attribute): it is removed when it holds anything free-text scrubbing would redact or remove, including an IPv4
    /// address inside longer text (<c>2.0 (10.11.12.13)</c>) or spelt with dashes, and any IPv6 address.
    /// The one exception: under a version name (one that ends in <c>version</c>, or <c>build</c>), a value that is a
    /// four-part version (<c>1.2.3.4</c>, <c>v1.2.3.4</c>, <c>1.2.3.4-beta.2</c>) is a version, not an address, and only
    /// its suffix is judged. Ingestion applies the same rule to the version, OS and edition it records.
    /// </summary>
    public bool IsPersonalInAllowedValue(string name, string value)
    {
        var judged = value;
        if (IsVersionName(name) && FourPartVersion().Match(value) is { Success: true } version)
        {
            judged = version.Groups["suffix"].Value;
        }

        var decoded = DecodedView.Of(judged);
        return judged.Length > 0 && (LooksPersonal(judged, decoded) || !ReferenceEquals(Redact(judged, decoded), judged));
    }

    /// <summary>
    /// True when an event or page name must refuse its event: a name is a dimension of the figures, kept whole or not at
    /// all. It refuses when it holds what <see cref="LooksPersonal(string)"/> finds, the value of a denied
    /// <c>name=value</c> fragment (<c>Login failed password=hunter2</c>, <c>/callback?code=...</c>), a URL's user name, or
    /// the user name of a Linux, Windows or macOS home directory (<c>/home/jane/...</c>, <c>C:\Users\jane\...</c>,
    /// <c>/Users/jane/Library/...</c>: see <see cref="IsMacHomeDirectory"/>). A label in the <c>Name: Word</c> form
    /// (<c>Email: Bounced</c>, <c>Login: Google</c>) and a route under <c>/Users/</c> (<c>/Users/Edit/42</c>,
    /// <c>/Users/settings</c>) pass: as names they say what happened, not who it happened to.
    /// </summary>
    public bool IsPersonalInEventName(string name)
    {
        if (LooksPersonal(name) || UrlUserInfo().IsMatch(name))
        {
            return true;
        }

        if (DeniedNamedValues(name) is { } values
            && values.Exists(v => name.AsSpan(v.Name, v.Start - v.Name).Contains('=')))
        {
            return true;
        }

        foreach (Match match in HomeDirectory().Matches(name))
        {
            var root = match.Groups["root"].Value;
            if ((root != "/Users/" && !root.Equals("%2FUsers%2F", StringComparison.OrdinalIgnoreCase)) || IsMacHomeDirectory(name, match))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The folders macOS makes in every home directory: a path that goes on into one of these after <c>/Users/name/</c>
    /// is a home directory, not a route.
    /// </summary>
    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> MacHomeFolders = new HashSet<string>(StringComparer.Ordinal)
    {
        "Applications", "Desktop", "Developer", "Documents", "Downloads", "Library", "Movies", "Music", "Pictures", "Public", "Sites",
    }.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>
    /// Whether a path under <c>/Users/</c> (<paramref name="match"/>, of <see cref="HomeDirectory"/>) is a macOS home
    /// directory rather than a product's route (<c>/Users/Edit/42</c>, <c>/Users/settings</c>): the segment after
    /// <c>/Users/</c> is an account's short name (a letter or '_' first, then letters, digits, '_', '.' or '-'; not
    /// <c>Shared</c>, the folder every account shares, nor a placeholder such as <c>{id}</c> or <c>:id</c>), and the
    /// path goes on into a folder macOS makes in every home (<c>Library</c>, <c>Documents</c>, <c>Desktop</c>... in their
    /// own case) or into a hidden file or folder (<c>.zshrc</c>, <c>.ssh</c>), or it is the path of a <c>file://</c> URL.
    /// </summary>
    private static bool IsMacHomeDirectory(string name, Match match)
    {
        var user = match.Groups["user"].ValueSpan;
        if (!(char.IsAsciiLetter(user[0]) || user[0] == '_') || user.ContainsAnyExcept(ShortNameChars) || user.SequenceEqual("Shared"))
        {
            return false;
        }

        if (match.Index >= 7 && name.AsSpan(match.Index - 7, 7).Equals("file://", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var rest = name.AsSpan(match.Index + match.Length);
        if (rest.StartsWith('/'))
        {
            rest = rest[1..];
        }
        else if (rest.StartsWith("%2F", StringComparison.OrdinalIgnoreCase))
        {
            rest = rest[3..];
        }
        else
        {
            return false;
        }

        var end = rest.IndexOfAny(SegmentEnds);
        var segment = end < 0 ? rest : rest[..end];
        return (segment.Length >= 2 && segment[0] == '.' && char.IsAsciiLetterOrDigit(segment[1])) || MacHomeFolders.Contains(segment);
    }

    private static readonly SearchValues<char> ShortNameChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");

    private static readonly SearchValues<char> SegmentEnds = SearchValues.Create("/\\%?#\"' \t\r\n)");

    /// <summary>The first e-mail address in <paramref name="value"/> (and nothing around it), or null.</summary>
    public static string? FindEmail(string value) =>
        MayHoldEmail(value) && Email().Match(value) is { Success: true } match ? match.Value : null;

    /// <summary>
    /// True when a free-form string holds an e-mail address, an IP address (IPv4 dotted or spelt with dashes as in
    /// <c>ip-10-0-0-7</c>, dotted in hexadecimal, or in any notation as a URL's host, or IPv6), a card number or a
    /// secret, also spelt percent-encoded, as character references or in fullwidth forms.
    /// </summary>
    /// <remarks>
    /// Every pattern runs in time linear in the value's length (a bounded pattern, or the non-backtracking engine),
    /// so none has a match time-out: a time-out is measured on the wall clock, and a thread held up by the scheduler
    /// or a garbage collection would have had harmless text judged personal.
    /// </remarks>
    public static bool LooksPersonal(string value) => LooksPersonal(value, DecodedView.Of(value));

    /// <summary><see cref="LooksPersonal(string)"/>, given the decoded copy of <paramref name="value"/> (null when it reads the same).</summary>
    private static bool LooksPersonal(string value, DecodedView? decoded) =>
        ContainsIPv4(value) || ContainsDashedIPv4(value) || ContainsOtherIPv4Notation(value) || LooksPersonalBesidesIPv4(value)
        || LooksPersonalWhenDecoded(value, decoded);

    private static bool LooksPersonalBesidesIPv4(string value) =>
        ContainsEmail(value) || ContainsIPv6(value) || LooksLikeSecret(value) || ContainsCardNumber(value);

    /// <summary>
    /// True when an identifier is an IP address: IPv4 or IPv6, also with a port (<c>10.0.0.5:8080</c>,
    /// <c>[2001:db8::5]:443</c>) or a zone, or a host name that spells one, with dots or dashes
    /// (<c>ip-10-0-0-5</c>, <c>ip-10-0-0-5.ec2.internal</c>, <c>node1.10.0.0.17</c>), or dotted in hexadecimal
    /// (<c>0xc0.0xa8.0x00.0x01</c>; a lone integer or hexadecimal number is a numeric id), and any of these spelt encoded as
    /// the scrubbing reads text (<c>10%2E0%2E0%2E5</c>, <c>１０.０.０.５</c>, an invisible character inside). Such an
    /// identifier is discarded, never hashed: hashing one of 2^32 addresses hides nothing.
    /// </summary>
    public static bool LooksLikeIpAddress(string value)
    {
        var trimmed = value.Trim();
        return IsAddressIdentifier(trimmed) || (DecodedView.Of(trimmed)?.Text.Trim() is { } decoded && IsAddressIdentifier(decoded));
    }

    private static bool IsAddressIdentifier(string trimmed) =>
        IsBareIpAddress(trimmed)
        || (HostNameWithPort().IsMatch(trimmed) && (ContainsIPv4(trimmed) || ContainsDashedIPv4(trimmed) || ContainsOtherIPv4Notation(trimmed)));

    /// <summary>
    /// True when an identifier is an address itself (IPv4, or IPv6 with or without brackets and zone), the identifiers
    /// ingestion has always discarded. An opt-out refuses only these: an address with a port or spelt as a host name
    /// was hashed and stored before ingestion discarded it too, so an opt-out of one must still find what was stored.
    /// </summary>
    public static bool IsBareIpAddress(string value)
    {
        var trimmed = value.Trim();
        return Ipv4Exact().IsMatch(trimmed) || IsIPv6(trimmed);
    }

    private static bool ContainsEmail(string value) => MayHoldEmail(value) && Email().IsMatch(value);

    /// <summary>An '@', or one percent-encoded once (<c>%40</c>) or twice (<c>%2540</c>).</summary>
    private static bool MayHoldEmail(string value) =>
        value.Contains('@', StringComparison.Ordinal) || value.Contains("%40", StringComparison.OrdinalIgnoreCase)
        || value.Contains("%2540", StringComparison.OrdinalIgnoreCase);

    private void ScrubNode(JsonNode? node, string path, IReadOnlyCollection<string>? identifiers, ref int removed)
    {
        switch (node)
        {
            case JsonObject obj:
                List<string>? toRemove = null;
                List<(string Key, string Value)>? toReplace = null;
                foreach (var (key, child) in obj)
                {
                    var childPath = path.Length == 0 ? key : path + "." + key;
                    var allowed = IsAllowed(key, childPath);
                    if ((!allowed && (IsDeniedName(key) || _deniedPaths.Contains(childPath) || LooksPersonal(key)))
                        || HoldsIdentifier(key, identifiers) || IsNumericIdentifier(child, identifiers) || (child is JsonValue number && IsCardNumber(number)))
                    {
                        (toRemove ??= []).Add(key);
                        continue;
                    }

                    if (child is JsonValue value && value.TryGetValue(out string? text))
                    {
                        // A value that is nothing but a raw id is left as nothing but a redaction, which removes it.
                        var scrubbed = allowed
                            ? (HoldsIdentifier(text, identifiers) || IsPersonalInAllowedValue(key, text) ? null : text)
                            : ScrubText(text, identifiers);
                        if (scrubbed is null)
                        {
                            (toRemove ??= []).Add(key);
                        }
                        else if (!ReferenceEquals(scrubbed, text))
                        {
                            (toReplace ??= []).Add((key, scrubbed));
                        }

                        continue;
                    }

                    ScrubNode(child, childPath, identifiers, ref removed);
                }

                if (toRemove is not null)
                {
                    foreach (var key in toRemove)
                    {
                        obj.Remove(key);
                    }

                    removed += toRemove.Count;
                }

                if (toReplace is not null)
                {
                    foreach (var (key, text) in toReplace)
                    {
                        obj[key] = text;
                    }

                    removed += toReplace.Count;
                }

                break;

            case JsonArray array:
                for (var i = array.Count - 1; i >= 0; i--)
                {
                    if ((array[i] is JsonValue number && IsCardNumber(number)) || IsNumericIdentifier(array[i], identifiers))
                    {
                        array.RemoveAt(i);
                        removed++;
                    }
                    else if (array[i] is JsonValue item && item.TryGetValue(out string? text))
                    {
                        var scrubbed = ScrubText(text, identifiers);
                        if (scrubbed is null)
                        {
                            array.RemoveAt(i);
                            removed++;
                        }
                        else if (!ReferenceEquals(scrubbed, text))
                        {
                            array[i] = scrubbed;
                            removed++;
                        }
                    }
                    else
                    {
                        ScrubNode(array[i], path, identifiers, ref removed);
                    }
                }

                break;
        }
    }

    /// <summary>
    /// The raw identifiers of an event whose copies are looked for in it: each id of <see cref="MinCopiedIdentifierLength"/>
    /// characters or more (shorter ones, "1" or "admin", are too common as ordinary values), with its percent-encoded
    /// forms (<c>jane%20doe</c>, and <c>jane+doe</c> as forms encode a space) where they differ. Copies are matched
    /// ignoring case, so a GUID written in upper case or an escape in lower case is found too, and also in a decoded
    /// copy of the text, so a copy with any other character percent-encoded (<c>john%2Esmith%2D42</c>, also twice), as
    /// character references (<c>john&amp;#46;smith-42</c>) or in fullwidth forms is found as well.
    /// </summary>
    public static IReadOnlyCollection<string> CopiesToFind(IEnumerable<string?> rawIds) =>
        rawIds
            .Where(id => id is { Length: >= MinCopiedIdentifierLength })
            .SelectMany(id => new[] { id!, Uri.EscapeDataString(id!), Uri.EscapeDataString(id!).Replace("%20", "+", StringComparison.Ordinal) })
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();

    /// <summary>The shortest raw id whose copies elsewhere in an event are removed.</summary>
    public const int MinCopiedIdentifierLength = 8;

    /// <summary>Whether <paramref name="text"/> holds a copy of one of <paramref name="identifiers"/> (see <see cref="CopiesToFind"/>).</summary>
    public static bool HoldsIdentifier(string text, IReadOnlyCollection<string>? identifiers)
    {
        if (identifiers is null)
        {
            return false;
        }

        if (identifiers.Any(id => text.Contains(id, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }

        List<(int Start, int End)>? copies = null;
        AddEncodedIdentifierCopies(text, DecodedView.Of(text), identifiers, ref copies);
        return copies is not null;
    }

    private static bool IsIdentifier(string text, IReadOnlyCollection<string>? identifiers) =>
        identifiers is not null && identifiers.Contains(text, StringComparer.OrdinalIgnoreCase);

    /// <summary>A JSON number whose digits are one of <paramref name="identifiers"/> (a numeric id sent again as a number).</summary>
    private static bool IsNumericIdentifier(JsonNode? node, IReadOnlyCollection<string>? identifiers) =>
        identifiers is not null && node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && IsIdentifier(value.ToJsonString(), identifiers);

    /// <summary>
    /// <paramref name="text"/> with every copy of a raw identifier inside it (a URL path, a file name, a sentence)
    /// replaced by <see cref="Redacted"/>; copies that overlap or touch are replaced as one, so no part of either is
    /// left. The same instance when it holds none. <paramref name="decoded"/> is the text's decoded copy
    /// (<see cref="DecodedView.Of"/>), which the caller has already made.
    /// </summary>
    private static string WithoutIdentifiers(string text, IReadOnlyCollection<string>? identifiers, DecodedView? decoded)
    {
        List<(int Start, int End)>? copies = null;
        foreach (var id in identifiers ?? [])
        {
            for (var at = text.IndexOf(id, StringComparison.OrdinalIgnoreCase); at >= 0; at = text.IndexOf(id, at + 1, StringComparison.OrdinalIgnoreCase))
            {
                (copies ??= []).Add((at, at + id.Length));
            }
        }

        // A copy spelt with other characters percent-encoded (john%2Esmith%2D42), as character references, or in fullwidth forms.
        if (identifiers is not null)
        {
            AddEncodedIdentifierCopies(text, decoded, identifiers, ref copies);
        }

        return copies is null ? text : RedactSpans(text, copies);
    }

    /// <summary>
    /// A JSON number that is a Luhn-valid card number of a card network's prefix and length (Visa 4 and Mastercard 51-55
    /// or 2221-2720 with 16 digits, American Express 34 or 37 with 15, Discover 6011 or 65 with 16): such a number is
    /// removed. Other large integers (byte counts, millisecond timestamps, 64-bit ids) are kept, which a Luhn test alone
    /// would drop one time in ten.
    /// </summary>
    private static bool IsCardNumber(JsonValue value)
    {
        if (value.GetValueKind() != JsonValueKind.Number || !value.TryGetValue(out long number) || number < 100_000_000_000_000)
        {
            return false;
        }

        var digits = number.ToString(CultureInfo.InvariantCulture);
        var networkLength = digits.Length switch
        {
            15 => digits.StartsWith("34", StringComparison.Ordinal) || digits.StartsWith("37", StringComparison.Ordinal),
            16 => digits[0] == '4' || digits[..2] is "51" or "52" or "53" or "54" or "55" || digits.StartsWith("6011", StringComparison.Ordinal)
                || digits.StartsWith("65", StringComparison.Ordinal) || int.Parse(digits[..4], CultureInfo.InvariantCulture) is >= 2221 and <= 2720,
            _ => false,
        };
        return networkLength && ContainsCardNumber(digits);
    }

    /// <summary>
    /// Redacts personal fragments of free text: the user name and password of a URL (<c>https://[redacted]@host/</c>),
    /// the values of <c>name=value</c> or <c>name: value</c> fragments whose
    /// name is denied (so <c>password=...</c>, and <c>?email=...&amp;token=...</c> in a URL, also spelt encoded inside
    /// another value, <c>?next=%2Fcb%3Ftoken%3D...</c>), e-mail addresses (also internationalized, percent-encoded or
    /// spelt with character references), IPv4 and IPv6 addresses (also an IPv4 address as a URL's host in any notation,
    /// or dotted in hexadecimal), Luhn-valid card numbers and the user name in a
    /// home-directory path (and wherever else the text repeats it).
    /// Returns the same instance when nothing was redacted. Each pattern is checked only when a cheap test says it may
    /// match, and all run on the non-backtracking engine. <paramref name="decoded"/> is the text's decoded copy
    /// (<see cref="DecodedView.Of"/>), which the caller has already made.
    /// </summary>
    private string Redact(string text, DecodedView? decoded)
    {
        // What the text spells percent-encoded, as character references or in fullwidth forms, seen in its decoded copy (see DecodedView).
        var result = RedactEncodedPersonalData(text, decoded);

        // Whatever the host (an address, localhost, a name without a dot), the part before '@' is a user and a password.
        if (result.Contains("://", StringComparison.Ordinal) && result.Contains('@', StringComparison.Ordinal))
        {
            result = UrlUserInfo().Replace(result, "${scheme}" + Redacted + "@");
        }

        // E-mail addresses before named values: the "IPv6:" of jane@[IPv6:2001:db8::5] would otherwise be taken for a
        // denied name whose value runs to the end of the address.
        if (MayHoldEmail(result))
        {
            result = Email().Replace(result, Redacted);
        }

        if (result.Contains('=', StringComparison.Ordinal) || result.Contains(':', StringComparison.Ordinal))
        {
            result = RedactNamedValues(result);
        }

        // IPv6 first: a full address may end in an IPv4 address (2001:db8:1:2:3:4:10.0.0.1), and redacting that part
        // first would leave a prefix that no longer parses.
        if (result.Length >= 2 && result.Contains(':', StringComparison.Ordinal))
        {
            result = RedactIPv6(result);
        }

        result = RedactEncodedIPv6(result);

        if (ContainsIPv4(result))
        {
            result = Ipv4Anywhere().Replace(result, Redacted);
        }

        // Host names that spell the address with dashes: ip-10-0-0-5.ec2.internal, c-73-22-1-5.hsd1.example.net,
        // ec2-54-12-3-4.compute-1.amazonaws.com.
        if (ContainsDashedIPv4(result))
        {
            result = DashedIpv4().Replace(result, Redacted);
        }

        // The other notations of an IPv4 address where their place makes them one: a URL's host (http://3232235777/,
        // http://0xC0A80001/), four dotted parts written in hexadecimal (0xc0.0xa8.0x00.0x01).
        result = RedactOtherIPv4Notations(result);

        if (result.Length >= 13 && CountDigits(result) >= 13)
        {
            result = CardNumber().Replace(result, m => PassesLuhn(m.Value) ? Redacted : m.Value);
        }

        if (result.Contains("/home/", StringComparison.Ordinal) || result.Contains("users", StringComparison.OrdinalIgnoreCase)
            || result.Contains("%2Fhome%2F", StringComparison.OrdinalIgnoreCase))
        {
            // The user name a home directory gives away is redacted wherever else the text repeats it.
            HashSet<string>? users = null;
            result = HomeDirectory().Replace(result, m =>
            {
                var user = m.Groups["user"].Value;
                if (user.Length >= 2 && user != Redacted)
                {
                    (users ??= new HashSet<string>(StringComparer.Ordinal)).Add(user);
                }

                return m.Groups["root"].Value + Redacted;
            });
            if (users is not null)
            {
                result = WithoutUserNames(result, users);
            }
        }

        return string.Equals(result, text, StringComparison.Ordinal) ? text : result;
    }

    /// <summary>
    /// Redacts the value after each <c>name=</c> or <c>name:</c> whose name is denied (see <see cref="DeniedNamedValues"/>).
    /// </summary>
    private string RedactNamedValues(string text)
    {
        if (DeniedNamedValues(text) is not { } values)
        {
            return text;
        }

        return RedactSpans(text, values.ConvertAll(value => (value.Start, value.End)));
    }

    /// <summary>
    /// <paramref name="text"/> with every copy of the user names a home directory gave away replaced by
    /// <see cref="Redacted"/>, in one pass whatever the number of copies and names: from left to right, the longest
    /// name that starts at a place is taken and the search goes on after it. Each place is matched against all names
    /// at once (a trie), so the cost grows with the text, not with the text times the names or the copies. A copy
    /// inside a <see cref="Redacted"/> already there (the user <c>ed</c> of <c>/home/ed</c>) is not one.
    /// </summary>
    private static string WithoutUserNames(string text, HashSet<string> users)
    {
        var starts = SearchValues.Create([.. users], StringComparison.Ordinal);
        var children = new Dictionary<(int Node, char Next), int>();
        var endsName = new List<bool> { false };
        foreach (var user in users)
        {
            var node = 0;
            foreach (var c in user)
            {
                if (!children.TryGetValue((node, c), out var child))
                {
                    child = endsName.Count;
                    endsName.Add(false);
                    children.Add((node, c), child);
                }

                node = child;
            }

            endsName[node] = true;
        }

        List<(int Start, int End)>? copies = null;
        var marker = text.IndexOf(Redacted, StringComparison.Ordinal);
        for (var at = 0; at < text.Length;)
        {
            var found = text.AsSpan(at).IndexOfAny(starts);
            if (found < 0)
            {
                break;
            }

            at += found;
            while (marker >= 0 && marker + Redacted.Length <= at)
            {
                marker = text.IndexOf(Redacted, marker + Redacted.Length, StringComparison.Ordinal);
            }

            if (marker >= 0 && marker <= at)
            {
                at = marker + Redacted.Length;
                continue;
            }

            var limit = marker >= 0 ? marker : text.Length;
            var longest = 0;
            var walk = 0;
            for (var i = at; i < limit && children.TryGetValue((walk, text[i]), out walk); i++)
            {
                if (endsName[walk])
                {
                    longest = i + 1 - at;
                }
            }

            if (longest > 0)
            {
                (copies ??= []).Add((at, at + longest));
            }

            at += Math.Max(longest, 1);
        }

        return copies is null ? text : RedactSpans(text, copies);
    }

    /// <summary>
    /// The <c>name=value</c> or <c>name: value</c> fragments whose name is denied, in order: where the name starts and
    /// where its value starts and ends; null when none. Only the names are matched (so <c>failed: passwd=x</c> sees both
    /// <c>failed</c> and <c>passwd</c>); a value runs to whitespace or a separator, and a name inside an earlier value
    /// is part of that value. A name of <see cref="UrlParameterNames"/> counts only as a URL's parameter; a value that
    /// is no secret is left: a state word after <c>name:</c>, a small number after <c>pin</c>, <c>otp</c> or <c>sig</c>
    /// (<see cref="IsNonSecretNumber"/>), a sentence after a name quoted in one (<see cref="IsQuotedNameInProse"/>).
    /// </summary>
    private List<(int Name, int Start, int End)>? DeniedNamedValues(string text)
    {
        List<(int Name, int Start, int End)>? values = null;
        var copied = 0;
        foreach (var match in NamedValue().EnumerateMatches(text))
        {
            if (match.Index < copied)
            {
                continue;
            }

            var nameLength = 0;
            while (nameLength < match.Length && text[match.Index + nameLength] is not ('=' or ':' or ' ' or '\t' or '"' or '\''))
            {
                nameLength++;
            }

            var name = text.AsSpan(match.Index, nameLength);
            if (!IsDeniedName(name) && !(IsUrlParameterName(name) && IsUrlParameter(text, match.Index, nameLength)))
            {
                continue;
            }

            var start = match.Index + match.Length;
            var quote = '\0';
            while (start < text.Length && text[start] is ' ' or '"' or '\'' && text[start] != quote)
            {
                quote = text[start] == ' ' ? quote : text[start];
                start++;
            }

            if (quote != '\0' && start < text.Length && text[start] == quote)
            {
                continue; // an empty quoted value: {"password":""}
            }

            // A quoted value ({"password":"correct horse battery staple"}) runs to its closing quote, spaces and
            // punctuation included; an unquoted one (or one whose quote is never closed) to the first space or
            // punctuation that ends a value in a URL, a header or prose.
            var end = quote == '\0' ? -1 : ClosingQuote(text, start, quote);
            if (end < 0)
            {
                end = start;
                while (end < text.Length && !char.IsWhiteSpace(text[end]) && text[end] is not ('&' or ';' or ',' or ')' or '(' or '"' or '\'' or '#'))
                {
                    end++;
                }
            }

            if (end == start)
            {
                continue;
            }

            // "token: expired" in an error message describes the token's state and holds no secret; "token=expired"
            // is a value and is redacted like any other.
            if (text[match.Index + match.Length - 1] == ':' && StateWords.Contains(text[start..end].TrimEnd('.', '!', '?', ':')))
            {
                continue;
            }

            // "GPIO pin: 17", "Erlang/OTP: 26", "sig=9": a number no secret is made of.
            if (IsNonSecretNumber(name, text.AsSpan(start, end - start).TrimEnd(".!?:}]")))
            {
                continue;
            }

            // "Unknown option 'token': use --help" quotes a name in a sentence; it gives no value.
            if (quote == '\0' && IsQuotedNameInProse(text, match.Index, nameLength) && IsProseAfter(text, start, end))
            {
                continue;
            }

            if (AuthenticationSchemes.Contains(text[start..end]))
            {
                end = EndOfCredentials(text, end);
            }

            (values ??= []).Add((match.Index, start, end));
            copied = end;
        }

        return values;
    }

    /// <summary>
    /// Names that give a secret only as a parameter of a URL's query or fragment (<c>?code=...</c>, the authorization
    /// code of OAuth, <c>#session_state=...</c>, <c>?SAMLResponse=...</c>, <c>?ticket=...</c> of CAS): elsewhere they
    /// name ordinary things (an error or exit <c>code</c>, a support <c>ticket</c>), so they are neither removed as keys
    /// nor redacted in prose. Compared normalized (see <see cref="Normalize(string)"/>).
    /// </summary>
    private static readonly HashSet<string> UrlParameterNames = new(StringComparer.Ordinal)
    {
        "code", "sessionstate", "samlresponse", "samlrequest", "samlart", "ticket", "oauthverifier", "codeverifier",
        "clientassertion", "devicecode", "authcode", "authorizationcode",
    };

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> UrlParameterNameLookup =
        UrlParameterNames.GetAlternateLookup<ReadOnlySpan<char>>();

    private static bool IsUrlParameterName(ReadOnlySpan<char> name)
    {
        if (name.Length > 32)
        {
            return false;
        }

        Span<char> buffer = stackalloc char[name.Length];
        return UrlParameterNameLookup.Contains(buffer[..Normalize(name, buffer)]);
    }

    /// <summary>
    /// Whether the name at <paramref name="index"/> is a parameter of a URL's query or fragment: right after a <c>?</c>,
    /// <c>&amp;</c> (also written <c>&amp;amp;</c>, as in HTML) or <c>#</c>, and followed by <c>=</c>.
    /// </summary>
    private static bool IsUrlParameter(string text, int index, int nameLength) =>
        index > 0 && index + nameLength < text.Length && text[index + nameLength] == '='
        && (text[index - 1] is '?' or '&' or '#' || (index >= 5 && text.AsSpan(index - 5, 5).Equals("&amp;", StringComparison.OrdinalIgnoreCase)));

    /// <summary>
    /// Whether the value of a <c>pin</c>, <c>otp</c> or <c>sig</c> is a number that is no secret: for <c>pin</c> and
    /// <c>otp</c> a number of fewer than 4 digits or a dotted version (a GPIO pin, a release of Erlang/OTP such as
    /// <c>26</c> or <c>26.2.1</c>; a PIN or a one-time password is one run of 4 digits or more), for <c>sig</c> a
    /// signal, by number from 0 to 64 or by name (<c>SIGKILL</c>).
    /// </summary>
    private static bool IsNonSecretNumber(ReadOnlySpan<char> name, ReadOnlySpan<char> value)
    {
        if (name.Length != 3 || value.IsEmpty)
        {
            return false;
        }

        if (name.Equals("pin", StringComparison.OrdinalIgnoreCase) || name.Equals("otp", StringComparison.OrdinalIgnoreCase))
        {
            return (value.Length < 4 && !value.ContainsAnyExceptInRange('0', '9')) || DottedVersion().IsMatch(value);
        }

        if (!name.Equals("sig", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return (value.Length <= 2 && !value.ContainsAnyExceptInRange('0', '9') && (value.Length == 1 || value[0] != '0')
                && int.Parse(value, CultureInfo.InvariantCulture) <= 64)
            || (value.Length is >= 5 and <= 11 && value.StartsWith("SIG", StringComparison.Ordinal) && !value[3..].ContainsAnyExceptInRange('A', 'Z'));
    }

    /// <summary>
    /// Whether the name at <paramref name="index"/> is quoted inside a sentence as the name of a setting: in quotes,
    /// right after a word such as <c>option</c> or <c>parameter</c> (<c>Unknown option 'token': use --help</c>), never
    /// at the start of the text, after the <c>{</c>, <c>[</c>, <c>(</c> or <c>,</c> that a key of JSON or of a dictionary
    /// written into text follows, or after any other word (<c>Invalid value for 'password': correct horse battery</c>
    /// gives a value).
    /// </summary>
    private static bool IsQuotedNameInProse(string text, int index, int nameLength)
    {
        var close = index + nameLength;
        if (index < 2 || close >= text.Length || text[close] is not ('"' or '\'') || text[index - 1] != text[close])
        {
            return false;
        }

        var before = index - 2;
        while (before >= 0 && char.IsWhiteSpace(text[before]))
        {
            before--;
        }

        if (before < 0 || before == index - 2)
        {
            return false;
        }

        var wordStart = before;
        while (wordStart > 0 && char.IsAsciiLetter(text[wordStart - 1]))
        {
            wordStart--;
        }

        return SettingNouns.Contains(text.AsSpan(wordStart, before + 1 - wordStart));
    }

    /// <summary>
    /// Whether an unquoted value from <paramref name="start"/> to <paramref name="end"/> reads as the start of a sentence:
    /// a word of lower-case letters followed by more words (<c>use --help</c>, <c>did you mean</c>), not a lone word.
    /// </summary>
    private static bool IsProseAfter(string text, int start, int end)
    {
        if (text.AsSpan(start, end - start).ContainsAnyExceptInRange('a', 'z'))
        {
            return false;
        }

        var next = end;
        while (next < text.Length && text[next] == ' ')
        {
            next++;
        }

        return next > end && next < text.Length && !char.IsWhiteSpace(text[next]);
    }

    /// <summary>
    /// The index of the first <paramref name="quote"/> at or after <paramref name="start"/> that no backslash escapes,
    /// or -1 when the value is never closed.
    /// </summary>
    private static int ClosingQuote(string text, int start, char quote)
    {
        for (var i = start; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
            }
            else if (text[i] == quote)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Where the credentials after an authentication scheme that ends at <paramref name="schemeEnd"/> end: the next word
    /// (<c>dXNlcjpwYXNz</c>, base64 padding included), or <paramref name="schemeEnd"/> when none follows or the next
    /// word is a <c>name=value</c> parameter (<c>Digest username="jane"</c>), which is judged by its own name.
    /// </summary>
    private static int EndOfCredentials(string text, int schemeEnd)
    {
        var start = schemeEnd;
        while (start < text.Length && text[start] is ' ' or '\t')
        {
            start++;
        }

        var end = start;
        while (end < text.Length && !char.IsWhiteSpace(text[end]) && text[end] is not ('&' or ';' or ',' or ')' or '(' or '"' or '\'' or '#'))
        {
            end++;
        }

        return end > start && !text.AsSpan(start, end - start).TrimEnd('=').Contains('=') ? end : schemeEnd;
    }

    /// <summary>
    /// Redacts each run of hexadecimal digits, colons and dots that parses as an IPv6 address (<c>fe80::1</c>, also
    /// in <c>[2001:db8::1]:443</c>, <c>fe80::1%eth0</c> or <c>peer:fe80::1</c>). A run must stand on its own (no letter,
    /// digit or '_' right before or after it), so the scope operator of <c>std::vector</c> is kept; times such as
    /// <c>10:20:30</c> and MAC addresses do not parse and are kept too.
    /// </summary>
    private static string RedactIPv6(string text)
    {
        var addresses = IPv6Addresses(text);
        if (addresses is null)
        {
            return text;
        }

        return RedactSpans(text, addresses);
    }

    /// <summary>The spans of the IPv6 addresses <see cref="RedactIPv6(string)"/> redacts, in order, or null when none.</summary>
    private static List<(int Start, int End)>? IPv6Addresses(string text)
    {
        List<(int Start, int End)>? addresses = null;
        var i = 0;
        while (i < text.Length)
        {
            // A percent-escape is a separator (ping%20fe80::1, %5Bfe80::1%5D): its hex digits start no address.
            if (IsEscapeAt(text, i))
            {
                i += 3;
                continue;
            }

            if (!IsIPv6Char(text[i]))
            {
                i++;
                continue;
            }

            var start = i;
            while (i < text.Length && IsIPv6Char(text[i]))
            {
                i++;
            }

            if (FindIPv6(text, start, i) is { } address)
            {
                (addresses ??= []).Add(address);
            }
        }

        return addresses;
    }

    /// <summary>The IPv6 address a run of address characters holds, if any.</summary>
    private static (int Start, int End)? FindIPv6(string text, int start, int end)
    {
        // A sentence may end the address with a colon or a full stop ("refused by fe80::1."), and a label may be glued
        // to it with a colon ("peer:fe80::1", where the run starts at "ee:" or ":").
        while (end > start && (text[end - 1] == '.' || (text[end - 1] == ':' && end - start > 2 && text[end - 2] != ':')))
        {
            end--;
        }

        if (NoWordBefore(text, start) && NoWordAfter(text, end) && IsIPv6WithDigits(text.AsSpan(start, end - start)))
        {
            return (start, end);
        }

        // "ee:fe80::1" (the tail of "peer"): try again after the first single colon.
        var colon = text.IndexOf(':', start, end - start);
        if (colon >= 0 && colon + 1 < end && text[colon + 1] != ':' && NoWordAfter(text, end) && IsIPv6WithDigits(text.AsSpan(colon + 1, end - colon - 1)))
        {
            return (colon + 1, end);
        }

        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>
    /// True when a run starting at <paramref name="start"/> is not the end of a word (the "d::" of "std::"); a
    /// percent-escape before it (<c>%20</c>, <c>%5B</c>) ends a word too.
    /// </summary>
    private static bool NoWordBefore(string text, int start) =>
        start == 0 || !IsWordChar(text[start - 1]) || (start >= 3 && IsEscapeAt(text, start - 3));

    /// <summary>True when a percent-escape (<c>%</c> and two hexadecimal digits) starts at <paramref name="index"/>.</summary>
    private static bool IsEscapeAt(string text, int index) =>
        index + 2 < text.Length && text[index] == '%' && char.IsAsciiHexDigit(text[index + 1]) && char.IsAsciiHexDigit(text[index + 2]);

    /// <summary>True when a run ending at <paramref name="end"/> is not the start of a word (the "::" of "::vector").</summary>
    private static bool NoWordAfter(string text, int end) => end == text.Length || !IsWordChar(text[end]);

    /// <summary>An IPv6 address with at least one hexadecimal digit: "::" alone (a scope operator) is not taken for one.</summary>
    private static bool IsIPv6WithDigits(ReadOnlySpan<char> candidate) =>
        candidate.ContainsAnyExcept(':', '.') && IsIPv6(candidate);

    /// <summary>
    /// Redacts the IPv6 addresses whose colons are percent-encoded, as in a URL's query (<c>?host=2001%3Adb8%3A%3A1</c>)
    /// or a URL encoded whole (<c>http%3A%2F%2F%5B2001%3Adb8%3A%3A1%5D%2F</c>). Returns the same instance when none.
    /// </summary>
    private static string RedactEncodedIPv6(string text)
    {
        if (!text.Contains("%3A", StringComparison.OrdinalIgnoreCase))
        {
            return text;
        }

        var result = EncodedIpv6().Replace(text, m => RedactEncodedIPv6(m, text));
        return string.Equals(result, text, StringComparison.Ordinal) ? text : result;
    }

    private static string RedactEncodedIPv6(Match match, string text)
    {
        var address = match.Groups["address"].Value;
        var trimmed = address.TrimEnd('.');
        var decoded = trimmed.Replace("%3A", ":", StringComparison.OrdinalIgnoreCase);
        // The pattern itself requires no word before the run.
        if (!NoWordAfter(text, match.Index + match.Length) || !IsIPv6WithDigits(decoded))
        {
            return match.Value;
        }

        var prefix = match.Value[..(match.Length - address.Length)];
        return prefix + Redacted + address[trimmed.Length..];
    }

    private static bool IsIPv6Char(char c) => char.IsAsciiHexDigit(c) || c is ':' or '.';

    private static bool IsOnlyRedaction(string text) => text.Trim() == Redacted;

    private static int CountDigits(string text)
    {
        var digits = 0;
        foreach (var c in text)
        {
            if (char.IsAsciiDigit(c))
            {
                digits++;
            }
        }

        return digits;
    }

    private static bool ContainsCardNumber(string value)
    {
        if (value.Length < 13 || CountDigits(value) < 13)
        {
            return false;
        }

        foreach (var match in CardNumber().EnumerateMatches(value))
        {
            if (PassesLuhn(value.AsSpan(match.Index, match.Length)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The Luhn check digit test of a 13 to 19 digit card number written with or without spaces or dashes.</summary>
    private static bool PassesLuhn(ReadOnlySpan<char> candidate)
    {
        var sum = 0;
        var count = 0;
        for (var i = candidate.Length - 1; i >= 0; i--)
        {
            if (!char.IsAsciiDigit(candidate[i]))
            {
                continue;
            }

            var digit = candidate[i] - '0';
            if (count % 2 == 1)
            {
                digit *= 2;
                if (digit > 9)
                {
                    digit -= 9;
                }
            }

            sum += digit;
            count++;
        }

        return count is >= 13 and <= 19 && sum % 10 == 0;
    }

    private bool IsAllowed(string key, string path) =>
        _allowedNames.Contains(Normalize(key)) || _allowedPaths.Contains(path);

    /// <summary>
    /// Whether a key or the name of a <c>name=value</c> fragment names personal data: normalized on the stack and looked
    /// up without a string being made, as this runs for every key and every name in free text.
    /// </summary>
    private bool IsDeniedName(ReadOnlySpan<char> key)
    {
        Span<char> buffer = key.Length <= 256 ? stackalloc char[key.Length] : new char[key.Length];
        ReadOnlySpan<char> normalized = buffer[..Normalize(key, buffer)];
        if (_deniedNameLookup.Contains(normalized))
        {
            return true;
        }

        foreach (var fragment in DeniedFragments)
        {
            if (ContainsFragment(normalized, fragment))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether <paramref name="fragment"/> occurs in a normalized name; a fragment that ends in <c>key</c> does not where
    /// <c>board</c> follows it (<c>clientKeyboardLayout</c>, <c>masterKeyboard</c> and <c>accessKeyboardShortcuts</c>
    /// name keyboards, not keys).
    /// </summary>
    private static bool ContainsFragment(ReadOnlySpan<char> name, string fragment)
    {
        var from = 0;
        while (name[from..].IndexOf(fragment, StringComparison.Ordinal) is var at and >= 0)
        {
            var end = from + at + fragment.Length;
            if (!fragment.EndsWith("key", StringComparison.Ordinal) || !name[end..].StartsWith("board", StringComparison.Ordinal))
            {
                return true;
            }

            from += at + 1;
        }

        return false;
    }

    /// <summary>Lower-case, without '_', '-', '$', '.', ' ': <c>$Email_Address</c> and <c>emailAddress</c> are the same name.</summary>
    internal static string Normalize(string key)
    {
        Span<char> buffer = key.Length <= 256 ? stackalloc char[key.Length] : new char[key.Length];
        return new string(buffer[..Normalize(key, buffer)]);
    }

    /// <summary><see cref="Normalize(string)"/> into <paramref name="buffer"/> (as long as <paramref name="key"/>); returns the length written.</summary>
    private static int Normalize(ReadOnlySpan<char> key, Span<char> buffer)
    {
        var length = 0;
        foreach (var c in key)
        {
            if (c is '_' or '-' or '$' or '.' or ' ')
            {
                continue;
            }

            buffer[length++] = char.ToLowerInvariant(c);
        }

        return length;
    }

    private static bool ContainsIPv4(string value) =>
        value.Length >= 7 && value.Contains('.', StringComparison.Ordinal) && Ipv4Anywhere().IsMatch(value);

    private static bool ContainsDashedIPv4(string value) =>
        value.Length >= 7 && value.Contains('-', StringComparison.Ordinal) && DashedIpv4().IsMatch(value);

    /// <summary>A name whose value is a version: <c>version</c>, <c>appVersion</c>, <c>os_version</c>, <c>build</c>.</summary>
    private static bool IsVersionName(string name)
    {
        var normalized = Normalize(name);
        return normalized.EndsWith("version", StringComparison.Ordinal) || normalized == "build";
    }

    private static bool ContainsIPv6(string value)
    {
        if (value.Length < 2 || (!value.Contains(':', StringComparison.Ordinal) && !value.Contains("%3A", StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        foreach (var token in value.Split([' ', '/', '[', ']', ',', ';', '(', ')', '"', '\'', '=', '&', '?', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (IsIPv6(token))
            {
                return true;
            }
        }

        // Text with percent-escapes (q=ping%20fe80::1, %5B2001%3Adb8%3A%3A1%5D): what the redaction would take.
        return value.Contains('%', StringComparison.Ordinal) && !ReferenceEquals(RedactEncodedIPv6(RedactIPv6(value)), value);
    }

    private static bool IsIPv6(ReadOnlySpan<char> token)
    {
        var colons = token.Count(':');
        return colons >= 2
            && IPAddress.TryParse(token, out var address)
            && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    private static bool LooksLikeSecret(string value) =>
        value.Length >= 16 && (Jwt().IsMatch(value) || KnownSecretPrefix().IsMatch(value) || value.Contains("-----BEGIN", StringComparison.Ordinal));

    /// <summary>An e-mail address, internationalized (letters and digits of any script) or with its '@' percent-encoded.</summary>
    /// <remarks>
    /// The '@' may be encoded twice (<c>%2540</c>), the local part may be quoted (<c>"jane doe"@example.com</c>) or hold
    /// an apostrophe after its first character (<c>sean.o'brien@</c>, while <c>'jane@example.com'</c> keeps its quotes),
    /// and the domain may be an address literal (<c>jane@[10.0.0.5]</c>, <c>jane@[IPv6:2001:db8::5]</c>).
    /// </remarks>
    [GeneratedRegex(@"(""[^""\\\r\n]{1,64}""|[\p{L}\p{N}._%+\-][\p{L}\p{N}._%+\-']*)(@|%40|%2540)([\p{L}\p{N}\-]+(\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}|\[(IPv6:)?[0-9A-F:.]{2,45}\])", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase | RegexOptions.NonBacktracking)]
    private static partial Regex Email();

    /// <summary>
    /// The user name and password of a URL, after its scheme: <c>https://admin:hunter2@</c>, <c>redis://:pw@</c>, up to
    /// the last '@' before the path, so a user name that holds one (<c>https://jane@corp.com:pw@host/</c>) goes whole.
    /// </summary>
    [GeneratedRegex(@"(?<scheme>\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://)[^/?#\s\[\]""'<>]+@", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex UrlUserInfo();

    /// <summary>A host name, possibly with a port: letters, digits, dots and dashes only.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?\z", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex HostNameWithPort();

    /// <summary>
    /// The name of a <c>name=value</c> or <c>name: value</c> fragment, with its separator; the name may be quoted, as in
    /// JSON or a dictionary written into text (<c>{"password":"..."}</c>, <c>{'token': '...'}</c>).
    /// </summary>
    [GeneratedRegex(@"\b[A-Za-z][A-Za-z0-9_.\-]{0,63}[""']?[ \t]*[=:]", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex NamedValue();

    /// <summary>13 to 19 digits, optionally grouped by single spaces or dashes, starting with a card network's digit (2 to 6).</summary>
    [GeneratedRegex(@"\b[2-6]([ \-]?[0-9]){12,18}\b", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex CardNumber();

    /// <summary>
    /// The user-name segment of a home directory, at any depth of the path: <c>/home/jane</c>, <c>/Users/jane</c>, and in
    /// Windows form in any case, with backslashes (also doubled, as escaped in a string: <c>C:\\Users\\jane</c>) or with
    /// slashes after a drive (<c>c:/users/jane</c>); also percent-encoded (<c>%2Fhome%2Fjane</c>, <c>C:%5Cusers%5Cjane</c>),
    /// where the name ends at the next escape. A lower-case <c>/users/</c> without a drive is a URL's path (<c>/api/users/42</c>).
    /// </summary>
    [GeneratedRegex(@"(?<root>(/home/|/Users/|\\+[Uu][Ss][Ee][Rr][Ss]\\+|\b[A-Za-z]:/[Uu][Ss][Ee][Rr][Ss]/))(?<user>[^/\\\s""')]+)|(?<root>%2[Ff]home%2[Ff]|%2[Ff]Users%2[Ff]|(%5[Cc])+[Uu][Ss][Ee][Rr][Ss](%5[Cc])+)(?<user>[^/\\\s""')%&?#=]+)", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex HomeDirectory();

    /// <summary>
    /// A dotted IPv4 address anywhere in text, its numbers written with or without leading zeros (<c>10.0.0.1</c>,
    /// <c>192.168.001.015</c>, and so also time-like text such as <c>12.05.00.00</c>), also after a name and a dot
    /// (<c>host.10.0.0.17</c>, <c>node1.10.0.0.17</c>, <c>web-1.10.0.0.17</c>). Four numbers that are part of a longer
    /// dotted run of numbers (a version such as <c>1.2.3.4.5</c> or <c>v1.2.3.4.5</c>, an OID) are no address. A number
    /// glued to a name (the 1 of <c>node1</c> or <c>web-1</c>) is part of the name: it does not make the run after it
    /// longer; a <c>v</c> that starts a word is not a name but marks a version. A number right after a percent-escape
    /// (the 1 of <c>x%2E1.2.3.4.5</c>) starts a run: the escape's hexadecimal digits are no name.
    /// </summary>
    /// <remarks>
    /// The second look-behind only runs where a dot precedes (a digit there fails the first, unless it ends a
    /// percent-escape such as the <c>%20</c> of <c>ping%20192.168.1.5</c>), so it reads each run of digits back at most once.
    /// </remarks>
    [GeneratedRegex(@"(?:(?<![0-9])|(?<=%[0-9A-Fa-f][0-9]))(?<!(?:^|[^0-9A-Za-z_\-]|%[0-9A-Fa-f]{2}|(?<![0-9A-Za-z_\-])[vV])[0-9]+\.)(25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])){3}(?![0-9])(?!\.[0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex Ipv4Anywhere();

    /// <summary>
    /// A run of hexadecimal digits, dots and percent-encoded colons, possibly after an encoded '[': linear, as every
    /// alternative starts with a different character. It never starts inside a percent-escape (the <c>20</c> of
    /// <c>%20fe80%3A%3A1</c>), only after one.
    /// </summary>
    [GeneratedRegex(@"(?:(?<![0-9A-Za-z_%])(?<!%[0-9A-Fa-f])|(?<=%[0-9A-Fa-f]{2}))(?:%5[Bb])?(?<address>(?:[0-9A-Fa-f.]|%3[Aa])+)", RegexOptions.CultureInvariant)]
    private static partial Regex EncodedIpv6();

    /// <summary>
    /// An IPv4 address spelt with dashes, as cloud providers name hosts: four numbers from 0 to 255 without leading
    /// zeros (<c>ip-10-0-0-7</c>, <c>ec2-54-12-3-4</c>). Four numbers that are part of a longer dashed run of numbers
    /// are no address: a date and time (<c>2026-12-02-10-30</c>), <c>1-2-3-4-5</c>. A number glued to a name (the 2 of
    /// <c>ec2-</c>) is part of the name: it neither starts an address nor makes the run after it longer, while a number
    /// right after a percent-escape (the 1 of <c>build%2D1-2-3-4-5</c>) starts a run: the escape's digits are no name.
    /// </summary>
    /// <remarks>
    /// The second look-behind only runs where no letter or digit precedes (or a percent-escape such as <c>%20</c>
    /// does), so it reads each run of digits back at most once.
    /// </remarks>
    [GeneratedRegex(@"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))(?<!(?:^|[^0-9A-Za-z]|%[0-9A-Fa-f]{2})[0-9]+-)(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(-(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}(?![0-9])(?!-[0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex DashedIpv4();

    [GeneratedRegex(@"^(25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])){3}\z", RegexOptions.CultureInvariant)]
    private static partial Regex Ipv4Exact();

    /// <summary>
    /// A four-part version, whole: an optional <c>v</c>, four numbers (of up to 5 digits, so also <c>10.0.19045.3803</c>)
    /// and an optional pre-release or build suffix that starts with a letter (<c>-beta.2</c>, <c>+build.7</c>).
    /// </summary>
    [GeneratedRegex(@"^\s*[vV]?[0-9]{1,5}(\.[0-9]{1,5}){3}(?<suffix>[\-+][A-Za-z][0-9A-Za-z.\-+]*)?\s*\z", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex FourPartVersion();

    /// <summary>A dotted version of two to four numbers: <c>26.2</c>, <c>26.2.1</c>.</summary>
    [GeneratedRegex(@"^[0-9]{1,5}(\.[0-9]{1,5}){1,3}\z", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex DottedVersion();

    [GeneratedRegex(@"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex Jwt();

    [GeneratedRegex(@"(\b(sk|pk|rk)_(live|test)_[A-Za-z0-9]{8,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}|\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}|\bsk-(proj|ant|svcacct|admin)-[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{32,}|\bnpm_[A-Za-z0-9]{36}\b|\bglpat-[A-Za-z0-9_\-]{20,}|\bhooks\.slack\.com/services/[A-Za-z0-9]+/|\bdiscord(app)?\.com/api/webhooks/[0-9]+/|\b[Bb]earer\s+[A-Za-z0-9._\-]{16,})", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex KnownSecretPrefix();
}
