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
