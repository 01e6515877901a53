using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TelemetryFunctions.Configuration;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Http;

/// <summary>
/// Segment's write-key authentication: HTTP Basic with the key as user name and an empty password, or
/// <c>writeKey</c> in the body. Keys are compared by their SHA-256 digest, so lookup time says nothing about a key.
/// </summary>
public sealed class WriteKeyAuthenticator
{
    private readonly Dictionary<string, WriteKeyOptions> _keys;

    public WriteKeyAuthenticator(IOptions<TelemetryOptions> options)
    {
        _keys = options.Value.WriteKeys.ToDictionary(k => Digest(k.Key), StringComparer.Ordinal);
    }

    public (string? Source, IngestError? Error) AuthenticateHeader(HttpRequest request)
    {
        var (key, problem) = AuthorizationCredentials.Read(request, acceptBearer: false);
        return problem is { } refused
            ? (null, AuthorizationCredentials.Refusal(refused, "Use HTTP Basic authentication with the write key as the user name and an empty password."))
            : Authenticate(key!);
    }

    public (string? Source, IngestError? Error) AuthenticateBody(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("writeKey", out var key) || key.ValueKind != JsonValueKind.String)
        {
            return (null, IngestError.Unauthorized("A write key is required: HTTP Basic authentication with the key as the user name, or writeKey in the body."));
        }

        return StrictJson.FindInvalidValue(key, "writeKey") is null
            ? Authenticate(key.GetString() ?? "")
            : (null, IngestError.Unauthorized("The write key is not valid."));
    }

    public (string? Source, IngestError? Error) Authenticate(string key)
    {
        if (key.Length == 0 || !_keys.TryGetValue(Digest(key), out var configured))
        {
            return (null, IngestError.Unauthorized("The write key is not valid."));
        }

        return configured.Revoked
            ? (null, IngestError.Unauthorized("The write key has been revoked."))
            : (configured.Source, null);
    }

    private static string Digest(string key) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
