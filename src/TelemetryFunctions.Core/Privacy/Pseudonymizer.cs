using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;

namespace TelemetryFunctions.Privacy;

/// <summary>What kind of identifier is pseudonymized; part of the hashed input so a user id and an instance id with the same text never collide.</summary>
public enum IdentifierKind
{
    User,
    Instance,
    Installation,
    Group,
    Message,
}

/// <summary>
/// Turns raw identifiers into keyed hashes (HMAC-SHA256) before they reach storage or logs.
/// The output is 32 lowercase hex characters (128 bits): safe in any table key, stable for a given key.
/// </summary>
/// <remarks>
/// A preview (<c>POST /v1/preview</c>) shows pseudonyms made under another key, derived one way from this one
/// (<see cref="ForPreview"/>): anyone holding a write key may preview, and a preview showing the stored pseudonym of an
/// id they chose would let them find that id's rows in a copy of the stored data.
/// </remarks>
public sealed class Pseudonymizer
{
    private readonly byte[] _key;

    public Pseudonymizer(IOptions<TelemetryOptions> options)
        : this(options.Value.Privacy.PseudonymizationKey)
    {
    }

    public Pseudonymizer(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        _key = Encoding.UTF8.GetBytes(key);
    }

    /// <summary>
    /// The pseudonymizer of previews: the same identifier always gets the same preview pseudonym, of the same form, but
    /// one that cannot be matched with the stored one, since the preview key is derived from this key by a one-way
    /// function (<see cref="PreviewKeyOf(string)"/>).
    /// </summary>
    public Pseudonymizer ForPreview() => new(PreviewKeyOf(_key));

    /// <summary>The key previews pseudonymize with for the configured <paramref name="key"/>: HMAC-SHA256 of <c>preview-pseudonyms</c> under it, in lowercase hex.</summary>
    public static string PreviewKeyOf(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return PreviewKeyOf(Encoding.UTF8.GetBytes(key));
    }

    private static string PreviewKeyOf(byte[] key) => Convert.ToHexStringLower(HMACSHA256.HashData(key, "preview-pseudonyms"u8));

    public string Pseudonymize(IdentifierKind kind, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var prefix = kind switch
        {
            IdentifierKind.User => "u\n",
            IdentifierKind.Instance => "i\n",
            IdentifierKind.Installation => "n\n",
            IdentifierKind.Group => "g\n",
            IdentifierKind.Message => "m\n",
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var byteCount = Encoding.UTF8.GetByteCount(prefix) + Encoding.UTF8.GetByteCount(value);
        var buffer = byteCount <= 1024 ? stackalloc byte[byteCount] : new byte[byteCount];
        var written = Encoding.UTF8.GetBytes(prefix, buffer);
        Encoding.UTF8.GetBytes(value, buffer[written..]);

        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(_key, buffer, hash);
        return Convert.ToHexStringLower(hash[..16]);
    }
}
