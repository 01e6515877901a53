namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>Finds the repository root (the folder with TelemetryFunctions.sln) from the test output folder.</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TelemetryFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (with TelemetryFunctions.sln) was not found above " + AppContext.BaseDirectory);
    }
}
