using System.Text;
using Microsoft.AspNetCore.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Http;

/// <summary>Why an <c>Authorization</c> header presents no key.</summary>
public enum AuthorizationProblem
{
    /// <summary>No <c>Authorization</c> header, or an empty one.</summary>
    Missing,

    /// <summary>Two <c>Authorization</c> headers, or two credentials in one: which one is meant cannot be known.</summary>
    Ambiguous,

    /// <summary>A scheme the endpoint does not take.</summary>
    UnsupportedScheme,

    /// <summary>HTTP Basic credentials that are not base64.</summary>
    InvalidBasic,
}

/// <summary>
/// The key an <c>Authorization</c> header presents: the user name of HTTP Basic credentials (the password is not looked
/// at) or, where the endpoint takes it, a Bearer token. Ingest (write keys) and the usage-report routes (report keys)
/// read it here, so both refuse the same headers; each words its own reason where the schemes it takes differ. No
/// reason ever repeats the credentials, and nothing here logs.
/// </summary>
public static class AuthorizationCredentials
{
    public const string AmbiguousReason = "Send one Authorization header with one set of credentials.";
    public const string InvalidBasicReason = "The Basic credentials are not valid base64.";

    /// <summary>True when the request carries an <c>Authorization</c> header, even an empty one.</summary>
    public static bool IsPresent(HttpRequest request) => request.Headers.Authorization.Count > 0;

    /// <summary>The presented key, or why there is none. An empty key (<c>Basic Og==</c>, <c>Bearer </c>) is returned as such: no key matches it.</summary>
    public static (string? Key, AuthorizationProblem? Problem) Read(HttpRequest request, bool acceptBearer)
    {
        var values = request.Headers.Authorization;
        var header = values.ToString();

        // Two headers, or two credentials in one (base64 and token68 have no ','): which one is meant cannot be known.
        if (values.Count > 1 || header.Contains(',', StringComparison.Ordinal))
        {
            return (null, AuthorizationProblem.Ambiguous);
        }

        if (header.Trim().Length == 0)
        {
            return (null, AuthorizationProblem.Missing);
        }

        if (acceptBearer && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (header["Bearer ".Length..].Trim(), null);
        }

        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return (null, AuthorizationProblem.UnsupportedScheme);
        }

        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
        }
        catch (FormatException)
        {
            return (null, AuthorizationProblem.InvalidBasic);
        }

        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
        return (colon < 0 ? decoded : decoded[..colon], null);
    }

    /// <summary>
    /// The 401 for <paramref name="problem"/>: the shared wording for ambiguous and malformed credentials, and
    /// <paramref name="requiredReason"/> (the endpoint's own: which key, which schemes) for a missing one or another scheme.
    /// </summary>
    public static IngestError Refusal(AuthorizationProblem problem, string requiredReason) => problem switch
    {
        AuthorizationProblem.Ambiguous => IngestError.Unauthorized(AmbiguousReason),
        AuthorizationProblem.InvalidBasic => IngestError.Unauthorized(InvalidBasicReason),
        _ => IngestError.Unauthorized(requiredReason),
    };
}
