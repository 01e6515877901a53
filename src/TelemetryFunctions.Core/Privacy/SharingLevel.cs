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
    public static bool TryParse(string? text, out SharingLevel level)
    {
        switch (text?.Trim().ToUpperInvariant())
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

    public static string ToWire(this SharingLevel level) => level switch
    {
        SharingLevel.Disabled => "disabled",
        SharingLevel.Basic => "basic",
        _ => "advanced",
    };
}
