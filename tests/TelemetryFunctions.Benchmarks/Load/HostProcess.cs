using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace TelemetryFunctions.Benchmarks.Load;

/// <summary>
/// The local host as its own process (<c>dotnet TelemetryFunctions.LocalHost.dll</c> from its Release build), as
/// <c>scripts/run-local.sh</c> runs it, on a free loopback port with a table prefix of its own; so its memory and
/// CPU are its own and not the load generator's. Killed when disposed. The last lines it printed are kept for errors.
/// </summary>
internal sealed class HostProcess : IDisposable
{
    private const int KeptLines = 40;
    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();

    private HostProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri Address { get; }

    public Process Process => _process;

    public static async Task<HostProcess> StartAsync(string connectionString, string tablePrefix, bool timers, IReadOnlyList<KeyValuePair<string, string>> settings, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(RepositoryRoot.Path, "src", "TelemetryFunctions.LocalHost", "bin", "Release", "net10.0");
        var dll = Path.Combine(directory, "TelemetryFunctions.LocalHost.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"The local host is not built at {dll}. scripts/load-test.sh builds it (dotnet build -c Release).");
        }

        var address = new Uri($"http://127.0.0.1:{Azurite.FreePort().ToString(CultureInfo.InvariantCulture)}/");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--urls", address.ToString().TrimEnd('/') },
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Telemetry__Storage__ConnectionString"] = connectionString;
        start.Environment["Telemetry__Storage__TablePrefix"] = tablePrefix;
        start.Environment["TelemetryDisableTimers"] = timers ? "false" : "true";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var host = new HostProcess(Process.Start(start) ?? throw new InvalidOperationException("The local host did not start."), address);
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency * 60);
        while (Stopwatch.GetTimestamp() < deadline && !host._process.HasExited)
        {
            try
            {
                using var response = await probe.GetAsync(new Uri(address, "health"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return host;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Not listening yet.
            }

            await Task.Delay(200, cancellationToken);
        }

        var output = host.LastLines();
        host.Dispose();
        throw new InvalidOperationException($"The local host did not become healthy at {address}. Its last output:\n{output}");
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Resident memory now (Linux /proc; the working set elsewhere).</summary>
    public long ResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux: fall back to what .NET reports.
        }

        _process.Refresh();
        return _process.WorkingSet64;
    }

    public TimeSpan CpuTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    public string LastLines()
    {
        lock (_lastLines)
        {
            return string.Join('\n', _lastLines);
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            if (_lastLines.Count > KeptLines)
            {
                _lastLines.Dequeue();
            }
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }
}
