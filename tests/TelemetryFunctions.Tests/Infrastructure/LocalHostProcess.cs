using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// The real local host as a separate process (<c>dotnet TelemetryFunctions.LocalHost.dll</c> from its own build
/// output) on a free loopback port, against the shared Azurite with a table prefix of its own. Its console output is
/// kept and written to the test's output when disposed, so a failing test shows what the host logged. It can be
/// killed hard and started again on the same port, as after a crash.
/// </summary>
public sealed class LocalHostProcess : IAsyncDisposable
{
    public const string WriteKey = LocalHostFactory.WriteKey;
    public const string InstallerKey = LocalHostFactory.InstallerKey;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private readonly Dictionary<string, string?> _environment;
    private readonly StringBuilder _output = new();
    private readonly Lock _outputLock = new();
    private readonly HttpClient _probe = new() { Timeout = TimeSpan.FromSeconds(2) };
    private Process? _process;
    private int _starts;

    private LocalHostProcess(AzuriteFixture azurite, IReadOnlyDictionary<string, string?>? settings)
    {
        Tables = new StorageProbe(azurite.ConnectionString, TablePrefix);
        _environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["DOTNET_ENVIRONMENT"] = "Testing",
            ["Telemetry__Storage__ConnectionString"] = azurite.ConnectionString,
            ["Telemetry__Storage__TablePrefix"] = TablePrefix,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }
    }

    /// <summary>The folder the host runs from: the LocalHost project's build output in this build's configuration.</summary>
    public static string OutputDirectory { get; } = FindOutputDirectory();

    public string TablePrefix { get; } = AzuriteFixture.UniquePrefix();

    public StorageProbe Tables { get; }

    public int Port { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}");

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>Everything the host has written to stdout and stderr so far, across restarts.</summary>
    public string Output
    {
        get
        {
            lock (_outputLock)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts the host and returns once <c>GET /health</c> answers 200. <paramref name="settings"/> is extra
    /// configuration (keys like <c>Telemetry:Ingestion:MaxBatchEvents</c>), passed as environment variables.
    /// </summary>
    public static async Task<LocalHostProcess> StartAsync(AzuriteFixture azurite, IReadOnlyDictionary<string, string?>? settings = null, CancellationToken cancellationToken = default)
    {
        var host = new LocalHostProcess(azurite, settings);
        try
        {
            // A free port can be taken by someone else between choosing and binding it; then another is chosen.
            await host.StartWithRetriesAsync(choosePort: true, cancellationToken);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills the host at once (SIGKILL on Unix): no shutdown, no flushing, as in a crash.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    /// <summary>Kills the host if it runs, then starts it again on the same port with the same settings.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        Kill();
        await StartWithRetriesAsync(choosePort: false, cancellationToken);
    }

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A client that authenticates like a Segment SDK: HTTP Basic, write key as user name, empty password.</summary>
    public HttpClient CreateSegmentClient(string writeKey = WriteKey)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        return client;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        _process = null;
        _probe.Dispose();
        TestContext.Current.TestOutputHelper?.WriteLine($"--- local host on port {Port.ToString(CultureInfo.InvariantCulture)}, table prefix {TablePrefix} ---\n{Output}");
        return ValueTask.CompletedTask;
    }

    private async Task StartWithRetriesAsync(bool choosePort, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (choosePort)
            {
                Port = AzuriteFixture.FreePort();
            }

            var result = await TryStartAsync(cancellationToken);
            if (result == StartResult.Healthy)
            {
                return;
            }

            if (result != StartResult.PortTaken || attempt == 3)
            {
                var exit = _process is { HasExited: true } p ? p.ExitCode.ToString(CultureInfo.InvariantCulture) : "still running";
                throw new InvalidOperationException($"The local host did not become healthy on port {Port.ToString(CultureInfo.InvariantCulture)} (exit code: {exit}).\n{Output}");
            }

            // The same port just after a kill can take a moment to be released.
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
    }

    /// <summary>Starts the process and waits until <c>/health</c> answers 200, the process exits, or time runs out.</summary>
    private async Task<StartResult> TryStartAsync(CancellationToken cancellationToken)
    {
        Kill();
        _process?.Dispose();
        _starts++;
        Append($"=== start {_starts.ToString(CultureInfo.InvariantCulture)} on port {Port.ToString(CultureInfo.InvariantCulture)} ===");
        int outputBefore;
        lock (_outputLock)
        {
            outputBefore = _output.Length;
        }

        var dll = Path.Combine(OutputDirectory, "TelemetryFunctions.LocalHost.dll");
        var start = new ProcessStartInfo(DotnetHost())
        {
            ArgumentList = { dll, "--urls", BaseAddress.ToString().TrimEnd('/') },
            WorkingDirectory = OutputDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in _environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("The local host process did not start.");
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + StartTimeout;
        while (!process.HasExited && DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await _probe.GetAsync(new Uri(BaseAddress, "/health"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return StartResult.Healthy;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The probe timed out; the host may still be starting.
            }

            await Task.Delay(100, cancellationToken);
        }

        if (!process.HasExited)
        {
            return StartResult.Failed;
        }

        // Let the output readers drain, then tell a taken port from any other failure.
        await process.WaitForExitAsync(cancellationToken);
        string output;
        lock (_outputLock)
        {
            output = _output.ToString(outputBefore, _output.Length - outputBefore);
        }

        return output.Contains("address already in use", StringComparison.OrdinalIgnoreCase) ? StartResult.PortTaken : StartResult.Failed;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_outputLock)
        {
            _output.AppendLine(line);
        }
    }

    private enum StartResult
    {
        Healthy,
        PortTaken,
        Failed,
    }

    /// <summary>The <c>dotnet</c> that runs this test run, else the one on the PATH.</summary>
    internal static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path && File.Exists(path) ? path : "dotnet";

    private static string FindOutputDirectory()
    {
        var metadata = typeof(LocalHostProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value);
        var configuration = metadata.GetValueOrDefault("BuildConfiguration") ?? "Debug";
        var framework = metadata.GetValueOrDefault("TargetFramework") ?? "net10.0";
        var directory = Path.Combine(RepositoryPaths.Root, "src", "TelemetryFunctions.LocalHost", "bin", configuration, framework);
        if (!File.Exists(Path.Combine(directory, "TelemetryFunctions.LocalHost.dll")))
        {
            throw new InvalidOperationException($"The local host is not built at {directory}. Build the solution in {configuration} first.");
        }

        return directory;
    }
}
