using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Privacy;

/// <summary>
/// Removes personal data from event properties, context and traits before anything is stored:
/// keys that name personal data, and values that look like e-mail or IP addresses or secrets.
/// An allow-list (names, or dot paths such as <c>context.library.name</c>) keeps what the product needs.
/// </summary>
public sealed partial class PersonalDataScrubber
{
    private static readonly HashSet<string> BuiltInDeniedNames = new(StringComparer.Ordinal)
    {
        "email", "emailaddress", "mail", "ip", "ipaddress", "ipv4", "ipv6", "clientip", "remoteip", "remoteaddr",
        "xforwardedfor", "forwardedfor", "name", "firstname", "lastname", "fullname", "username", "displayname",
        "nickname", "login", "phone", "phonenumber", "mobile", "fax", "password", "passwd", "pwd", "passphrase",
        "secret", "clientsecret", "token", "accesstoken", "refreshtoken", "idtoken", "apikey", "apitoken",
        "authorization", "auth", "cookie", "cookies", "sessionid", "ssn", "creditcard", "cardnumber", "iban",
        "address", "street", "city", "region", "postalcode", "zip", "zipcode", "latitude", "longitude", "geo",
        "location", "useragent", "userid", "distinctid", "deviceid", "anonymousid", "instanceid", "birthday", "dateofbirth",
        "dob", "gender", "avatar",
    };

    /// <summary>Fragments that make any key personal or secret wherever they occur in it.</summary>
    private static readonly string[] DeniedFragments =
    [
        "email", "password", "passwd", "secret", "token", "apikey", "phone", "ipaddress", "cookie",
        "creditcard", "username", "firstname", "lastname", "fullname",
    ];

    private static readonly string[] BuiltInAllowedPaths =
    [
        "context.library.name", "context.library.version", "context.app.name", "context.app.version",
        "context.app.build", "context.os.name", "context.os.version",
    ];

    private readonly HashSet<string> _deniedNames;
    private readonly HashSet<string> _allowedNames;
    private readonly HashSet<string> _allowedPaths;

    public PersonalDataScrubber(IOptions<TelemetryOptions> options)
        : this(options.Value.Privacy)
    {
    }

    public PersonalDataScrubber(PrivacyOptions options)
    {
        _deniedNames = new HashSet<string>(BuiltInDeniedNames, StringComparer.Ordinal);
        foreach (var name in options.DeniedPropertyNames)
        {
            _deniedNames.Add(Normalize(name));
        }

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

    /// <summary>Scrubs <paramref name="node"/> in place and returns how many keys or values were removed.</summary>
    public int Scrub(JsonNode? node, string path)
    {
        var removed = 0;
        ScrubNode(node, path, ref removed);
        return removed;
    }

    /// <summary>True when a free-form string holds an e-mail address, an IP address or a secret.</summary>
    /// <remarks>
    /// Every pattern runs in time linear in the value's length (a bounded pattern, or the non-backtracking engine),
    /// so none has a match time-out: a time-out is measured on the wall clock, and a thread held up by the scheduler
    /// or a garbage collection would have had harmless text judged personal.
    /// </remarks>
    public static bool LooksPersonal(string value, bool ipv4IsPersonal = true) =>
        ContainsEmail(value) || (ipv4IsPersonal && ContainsIPv4(value)) || ContainsIPv6(value) || LooksLikeSecret(value);

    public static bool LooksLikeIpAddress(string value) =>
        Ipv4Exact().IsMatch(value.Trim()) || IsIPv6(value.Trim());

    public static bool ContainsEmail(string value) => value.Contains('@', StringComparison.Ordinal) && Email().IsMatch(value);

    private void ScrubNode(JsonNode? node, string path, ref int removed)
    {
        switch (node)
        {
            case JsonObject obj:
                List<string>? toRemove = null;
                foreach (var (key, child) in obj)
                {
                    var childPath = path.Length == 0 ? key : path + "." + key;
                    var allowed = IsAllowed(key, childPath);
                    if (!allowed && (IsDeniedName(key) || LooksPersonal(key)))
                    {
                        (toRemove ??= []).Add(key);
                        continue;
                    }

                    if (child is JsonValue value && value.TryGetValue(out string? text) && LooksPersonal(text, ipv4IsPersonal: !allowed))
                    {
                        (toRemove ??= []).Add(key);
                        continue;
                    }

                    ScrubNode(child, childPath, ref removed);
                }

                if (toRemove is not null)
                {
                    foreach (var key in toRemove)
                    {
                        obj.Remove(key);
                    }

                    removed += toRemove.Count;
                }

                break;

            case JsonArray array:
                for (var i = array.Count - 1; i >= 0; i--)
                {
                    if (array[i] is JsonValue item && item.TryGetValue(out string? text) && LooksPersonal(text))
                    {
                        array.RemoveAt(i);
                        removed++;
                    }
                    else
                    {
                        ScrubNode(array[i], path, ref removed);
                    }
                }

                break;
        }
    }

    private bool IsAllowed(string key, string path) =>
        _allowedNames.Contains(Normalize(key)) || _allowedPaths.Contains(path);

    private bool IsDeniedName(string key)
    {
        var normalized = Normalize(key);
        if (_deniedNames.Contains(normalized))
        {
            return true;
        }

        foreach (var fragment in DeniedFragments)
        {
            if (normalized.Contains(fragment, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Lower-case, without '_', '-', '$', '.', ' ': <c>$Email_Address</c> and <c>emailAddress</c> are the same name.</summary>
    internal static string Normalize(string key)
    {
        Span<char> buffer = key.Length <= 256 ? stackalloc char[key.Length] : new char[key.Length];
        var length = 0;
        foreach (var c in key)
        {
            if (c is '_' or '-' or '$' or '.' or ' ')
            {
                continue;
            }

            buffer[length++] = char.ToLowerInvariant(c);
        }

        return new string(buffer[..length]);
    }

    private static bool ContainsIPv4(string value) =>
        value.Length >= 7 && value.Contains('.', StringComparison.Ordinal) && Ipv4Anywhere().IsMatch(value);

    private static bool ContainsIPv6(string value)
    {
        if (value.Length < 2 || !value.Contains(':', StringComparison.Ordinal))
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

        return false;
    }

    private static bool IsIPv6(string token)
    {
        var colons = token.AsSpan().Count(':');
        return colons >= 2
            && IPAddress.TryParse(token, out var address)
            && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    private static bool LooksLikeSecret(string value) =>
        value.Length >= 16 && (Jwt().IsMatch(value) || KnownSecretPrefix().IsMatch(value) || value.Contains("-----BEGIN", StringComparison.Ordinal));

    [GeneratedRegex(@"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex Email();

    [GeneratedRegex(@"(?<![0-9.])(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}(?![0-9]|\.[0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex Ipv4Anywhere();

    [GeneratedRegex(@"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$", RegexOptions.CultureInvariant)]
    private static partial Regex Ipv4Exact();

    [GeneratedRegex(@"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex Jwt();

    [GeneratedRegex(@"(\b(sk|pk|rk)_(live|test)_[A-Za-z0-9]{8,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}|\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}|\b[Bb]earer\s+[A-Za-z0-9._\-]{16,})", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking)]
    private static partial Regex KnownSecretPrefix();
}
