using System.Net;
using System.Net.Sockets;

[assembly: AssemblyFixture(typeof(TelemetryFunctions.Tests.Infrastructure.AzuriteFixture))]

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// One real Azurite for the whole test run, started from the repository's pinned npm package on free ports, in
/// memory. Set TELEMETRY_TEST_STORAGE to a connection string to use another emulator or account instead.
/// Tests isolate themselves with a unique table prefix each.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    // Azurite's well-known development account; not a secret.
    private const string DevAccount = "devstoreaccount1";
    private const string DevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private AzuriteProcess? _azurite;

    public string ConnectionString { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable("TELEMETRY_TEST_STORAGE");
        if (!string.IsNullOrWhiteSpace(external))
        {
            ConnectionString = external;
            return;
        }

        _azurite = await AzuriteProcess.StartAsync(persisted: false);
        ConnectionString = _azurite.ConnectionString;
    }

    public static string ConnectionStringFor(int blobPort, int queuePort, int tablePort) =>
        $"DefaultEndpointsProtocol=http;AccountName={DevAccount};AccountKey={DevKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{DevAccount};QueueEndpoint=http://127.0.0.1:{queuePort}/{DevAccount};TableEndpoint=http://127.0.0.1:{tablePort}/{DevAccount};";

    /// <summary>A table prefix no other test uses.</summary>
    public static string UniquePrefix() => "t" + Guid.NewGuid().ToString("N")[..12];

    public async ValueTask DisposeAsync()
    {
        if (_azurite is not null)
        {
            await _azurite.DisposeAsync();
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
