using TelemetryFunctions.LocalHost;

LocalHostApp.Build(args).Run();

/// <summary>The local host's entry point (public so tests can start it with WebApplicationFactory).</summary>
public partial class Program;
