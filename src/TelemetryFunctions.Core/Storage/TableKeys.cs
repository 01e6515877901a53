using System.Globalization;

namespace TelemetryFunctions.Storage;

/// <summary>
/// Key building blocks. Keys are made only of pseudonymized hashes (lowercase hex), configured source names
/// ([a-z0-9-]), dates and the separator '_', so no sender-controlled text can ever reach a key.
/// </summary>
public static class TableKeys
{
    /// <summary>The day as <c>yyyyMMdd</c>: sorts as text, so day ranges are key ranges.</summary>
    public static string Day(DateOnly day) => day.ToString("yyyyMMdd", CultureInfo.InvariantCulture);

    public static DateOnly ParseDay(string key) => DateOnly.ParseExact(key, "yyyyMMdd", CultureInfo.InvariantCulture);

    public static bool TryParseDay(string key, out DateOnly day) =>
        DateOnly.TryParseExact(key, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);

    /// <summary>One of 256 partitions chosen by a hash's first two hex digits: spreads a million instances evenly.</summary>
    public static string Bucket(string hash) => hash[..2];
}
