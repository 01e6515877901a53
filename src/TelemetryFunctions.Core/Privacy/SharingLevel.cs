using System.Text;
using TelemetryFunctions.Text;

namespace TelemetryFunctions.Privacy;

/// <summary>How much an installation's administrator agreed to share (Confluence's levels).</summary>
public enum SharingLevel
{
    /// <summary>Nothing is stored; the instance is treated as opted out.</summary>
    Disabled,

    /// <summary>Installation, heartbeat and health events only.</summary>
    Basic,

    /// <summary>Everything, feature usage included.</summary>
    Advanced,
}

public static class SharingLevels
{
    /// <summary>
    /// Reads a declared level, in any case, around white space, and also spelt with compatibility forms (fullwidth
    /// letters) or invisible characters inside (a zero-width space): such a <c>disabled</c> still opts out.
    /// </summary>
    public static bool TryParse(string? text, out SharingLevel level)
    {
        switch (Canonical(text)?.Trim().ToUpperInvariant())
        {
            case "DISABLED":
            case "OFF":
            case "NONE":
                level = SharingLevel.Disabled;
                return true;
            case "BASIC":
                level = SharingLevel.Basic;
                return true;
            case "ADVANCED":
            case "FULL":
                level = SharingLevel.Advanced;
                return true;
            default:
                level = SharingLevel.Advanced;
                return false;
        }
    }

    private static string? Canonical(string? text) =>
        text is null || Ascii.IsValid(text)
            ? text
            : InvisibleText.NormalizedKC(InvisibleText.WithoutInvisible(new string([.. text.Where(c => !InvisibleText.IsNoncharacter(c))])));

    public static string ToWire(this SharingLevel level) => level switch
    {
        SharingLevel.Disabled => "disabled",
        SharingLevel.Basic => "basic",
        _ => "advanced",
    };
}
