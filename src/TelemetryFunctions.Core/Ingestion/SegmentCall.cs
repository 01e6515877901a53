namespace TelemetryFunctions.Ingestion;

/// <summary>The Segment HTTP Tracking API call a request was made to.</summary>
public enum SegmentCall
{
    Batch,
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

internal static class SegmentCalls
{
    /// <summary>The event <c>type</c> a single-event call implies; null for batch.</summary>
    public static string? ImpliedType(this SegmentCall call) => call switch
    {
        SegmentCall.Track => "track",
        SegmentCall.Identify => "identify",
        SegmentCall.Page => "page",
        SegmentCall.Screen => "screen",
        SegmentCall.Group => "group",
        SegmentCall.Alias => "alias",
        _ => null,
    };

    public static bool IsKnownType(string type) =>
        type is "track" or "identify" or "page" or "screen" or "group" or "alias";
}
