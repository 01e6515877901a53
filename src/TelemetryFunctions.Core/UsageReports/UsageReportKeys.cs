using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using TelemetryFunctions.Text;

namespace TelemetryFunctions.UsageReports;

/// <summary>
/// Table keys of the usage-report tables. Customer ids are configured; report ids and metric names are checked
/// against patterns that hold no character a key forbids; everything else a sender chooses (blob names,
/// installation ids, cluster and tenant names) reaches a key only as a hash.
/// </summary>
public static partial class UsageReportKeys
{
    /// <summary>Blob records of blobs outside any configured customer's folder.</summary>
    public const string NoCustomer = "_";

    public static bool IsValidReportId(string? reportId) => reportId is not null && ReportIdPattern().IsMatch(reportId);

    /// <summary>The customer folder a blob was uploaded under (<c>{customerId}/...</c>), when it names one.</summary>
    public static string? FolderOf(string blobName)
    {
        var slash = blobName.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? blobName[..slash] : null;
    }

    /// <summary>32 lowercase hex characters of the SHA-256 of <paramref name="text"/>.</summary>
    public static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..32];

    /// <summary>
    /// The key that tells installations apart (their periods must not overlap; their distinct counts are combined by
    /// maximum): the hash of the id without the characters <see cref="InvisibleText.IsInvisible"/> calls invisible, in Unicode
    /// normalization form KC, ignoring case as <see cref="StringComparison.OrdinalIgnoreCase"/> compares. So
    /// <c>café-1</c> with a precomposed <c>é</c> and <c>café-1</c> written <c>e</c> plus a combining acute accent,
    /// fullwidth <c>ｉｎｓｔ-1</c> and <c>inst-1</c>, and <c>INST-1</c> and <c>inst-1</c> are one installation (NFKC is
    /// what Unicode recommends for comparing identifiers, UAX #31). Normalizing first and casing after keeps the key of
    /// an id already in form KC what it was before ids were normalized. Upper-casing first makes every pair that
    /// comparison calls equal hash alike; lower-casing after keeps the key of an id already in lower case the hash of
    /// the id as written, as keys were before ids were compared ignoring case. Ids with invisible characters are refused
    /// now, but records stored before may hold them: without them they compare as the id a report names now. The id is
    /// normalized for this comparison only: records keep it as written. Callers compare records by this key of the
    /// stored id, not by the key stored with it, so a record stored under the key of an earlier form (the id as
    /// written, not normalized, or with invisible characters) compares as the id a report names now.
    /// </summary>
    public static string Installation(string installationId)
    {
        return Hash(InvisibleText.NormalizedKC(InvisibleText.WithoutInvisible(installationId)).ToUpperInvariant().ToLowerInvariant());
    }

    /// <summary>
    /// The key of a cluster and tenant in a report's breakdown rows: the names as written (neither case nor Unicode
    /// normalization is ignored). A scope only tells one report's per-cluster rows apart; monthly totals never combine
    /// figures by scope, so two spellings of a cluster give two rows of that breakdown but count nothing twice.
    /// </summary>
    public static string Scope(UsageScope scope) => Hash((scope.Cluster ?? "") + "\u001F" + (scope.Tenant ?? ""));

    /// <summary>The blob name the HTTP upload stores a report under, unless a blob of other content already has it.</summary>
    public static string UploadBlobName(string customerId, string reportId, bool compressed) =>
        $"{customerId}/{reportId}.json{(compressed ? ".gz" : "")}";

    /// <summary>
    /// Whether <paramref name="blobName"/> is a name the HTTP upload stores report <paramref name="reportId"/> under: its
    /// <see cref="UploadBlobName"/>, or that name <see cref="Tagged"/> (where a blob of other content had it). A report
    /// id holds no <c>~</c>, so <c>{customerId}/{reportId}~</c> begins no other report id's names.
    /// </summary>
    public static bool IsUploadBlobName(string customerId, string reportId, string blobName) =>
        blobName == UploadBlobName(customerId, reportId, compressed: false)
        || blobName == UploadBlobName(customerId, reportId, compressed: true)
        || blobName.StartsWith(TaggedUploadPrefix(customerId, reportId), StringComparison.Ordinal);

    /// <summary>What every tagged upload name of a report id begins with.</summary>
    public static string TaggedUploadPrefix(string customerId, string reportId) => $"{customerId}/{reportId}~";

    /// <summary>
    /// <paramref name="name"/> with <c>~{tag}</c> before its <c>.json</c> or <c>.json.gz</c> ending (at its end when it
    /// has neither): <c>acme/2026-01.json</c> tagged <c>1f0c</c> is <c>acme/2026-01~1f0c.json</c>. The name a blob gets
    /// where its own name is taken.
    /// </summary>
    public static string Tagged(string name, string tag)
    {
        foreach (var ending in (ReadOnlySpan<string>)[".json.gz", ".json"])
        {
            if (name.EndsWith(ending, StringComparison.OrdinalIgnoreCase) && name.Length > ending.Length)
            {
                return $"{name[..^ending.Length]}~{tag}{name[^ending.Length..]}";
            }
        }

        return $"{name}~{tag}";
    }

    // \z, not $: $ also matches before a final newline, so "r1\n" would pass.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\z")]
    private static partial Regex ReportIdPattern();
}
