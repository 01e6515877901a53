using System.Diagnostics;
using System.Globalization;
using Azure.Data.Tables;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// One Azurite process from the repository's pinned npm package, on fixed ports, in memory or persisted to a folder.
/// Persisted, it can be stopped and started again with its data: a storage outage a test can switch on and off.
/// </summary>
public sealed class AzuriteProcess : IAsyncDisposable
{
    private readonly int _blobPort;
    private readonly int _queuePort;
    private readonly int _tablePort;
    private readonly string? _location;
    private Process? _process;

    private AzuriteProcess(string? location)
    {
        _blobPort = AzuriteFixture.FreePort();
        _queuePort = AzuriteFixture.FreePort();
        _tablePort = AzuriteFixture.FreePort();
        _location = location;
        ConnectionString = AzuriteFixture.ConnectionStringFor(_blobPort, _queuePort, _tablePort);
    }

    public string ConnectionString { get; }

    public static async Task<AzuriteProcess> StartAsync(bool persisted, CancellationToken cancellationToken = default)
    {
        var azurite = new AzuriteProcess(persisted ? Directory.CreateTempSubdirectory("azurite-").FullName : null);
        await azurite.StartAsync(cancellationToken);
        return azurite;
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var executable = Path.Combine(RepositoryPaths.Root, "node_modules", ".bin", "azurite");
        if (!File.Exists(executable))
        {
            throw new InvalidOperationException($"Azurite is not installed at {executable}. Run `npm ci` in the repository root (scripts/test.sh does).");
        }

        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
            "--blobHost", "127.0.0.1", "--blobPort", _blobPort.ToString(CultureInfo.InvariantCulture),
            "--queueHost", "127.0.0.1", "--queuePort", _queuePort.ToString(CultureInfo.InvariantCulture),
            "--tableHost", "127.0.0.1", "--tablePort", _tablePort.ToString(CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Add(argument);
        }

        if (_location is null)
        {
            start.ArgumentList.Add("--inMemoryPersistence");
        }
        else
        {
            start.ArgumentList.Add("--location");
            start.ArgumentList.Add(_location);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("Azurite did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        var service = new TableServiceClient(ConnectionString, new TableClientOptions { Retry = { MaxRetries = 0 } });
        while (true)
        {
            try
            {
                await service.GetPropertiesAsync(cancellationToken);
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    /// <summary>Stops Azurite the way an orderly shutdown does (SIGTERM), so a persisted one keeps its data.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            using var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            await term!.WaitForExitAsync();
            if (!process.WaitForExit(10_000))
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        if (_location is not null)
        {
            try
            {
                Directory.Delete(_location, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        }
    }
}
