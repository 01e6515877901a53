using Microsoft.Extensions.Configuration;

namespace TelemetryFunctions.Configuration;

/// <summary>
/// A list setting that is configured replaces its built-in default instead of being added to it. The configuration
/// binder appends configured items to a list that already holds defaults, so without this an operator could never
/// narrow the allow-list, stop reading an instance id from <c>context.instanceId</c>, or drop a default health event.
/// Lists without a default (the deny-list, write keys, customers) are unaffected: there is nothing to replace.
/// </summary>
internal static class ConfiguredLists
{
    public static void ReplaceDefaults(TelemetryOptions options, IConfiguration section)
    {
        Replace(section, "Privacy:AllowedPropertyNames", list => options.Privacy.AllowedPropertyNames = list);
        Replace(section, "Events:HealthEvents", list => options.Events.HealthEvents = list);
        Replace(section, "Events:InstanceIdPaths", list => options.Events.InstanceIdPaths = list);
        Replace(section, "Events:SharingLevelPaths", list => options.Events.SharingLevelPaths = list);
        Replace(section, "Events:VersionPaths", list => options.Events.VersionPaths = list);
        Replace(section, "Events:OsPaths", list => options.Events.OsPaths = list);
        Replace(section, "Events:EditionPaths", list => options.Events.EditionPaths = list);
        Replace(section, "Events:SupportEmailPaths", list => options.Events.SupportEmailPaths = list);
        Replace(section, "Events:ErrorPaths", list => options.Events.ErrorPaths = list);
    }

    private static void Replace(IConfiguration section, string key, Action<List<string>> set)
    {
        var configured = section.GetSection(key);
        if (configured.GetChildren().Any())
        {
            set(configured.Get<List<string>>() ?? []);
        }
    }
}
