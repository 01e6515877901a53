using TelemetryFunctions.LocalHost;
using TelemetryFunctions.LocalHost.Admin;

if (RollupCommand.Matches(args))
{
    return await RollupCommand.RunAsync(args);
}

await LocalHostApp.Build(args).RunAsync();
return 0;

/// <summary>The local host's entry point (public so tests can start it with WebApplicationFactory).</summary>
public partial class Program;
