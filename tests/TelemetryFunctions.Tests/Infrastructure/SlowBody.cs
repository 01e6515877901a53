using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>A sender that drips a request body over real Kestrel and a socket, to prove how the server bounds slow bodies.</summary>
internal static class SlowBody
{
    /// <summary>
    /// Over real Kestrel and a socket (the minimum body data rate is a server setting the in-memory test server lacks):
    /// announces a 100,000-byte body, sends <paramref name="opening"/> and then a few spaces at a time until the server
    /// answers or a minute passes.
    /// </summary>
    public static async Task<(bool Answered, TimeSpan Elapsed, string Answer)> DripAsync(
        LocalHostFactory host, string path, string authorization, string opening, int bytesPerWrite, TimeSpan every)
    {
        var cancel = TestContext.Current.CancellationToken;
        host.UseKestrel(0);
        host.StartServer();
        var address = new Uri(host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port, cancel);
        var stream = tcp.GetStream();
        var head = $"POST {path} HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/json\r\nAuthorization: {authorization}\r\nContent-Length: 100000\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head + opening), cancel);

        var started = Stopwatch.StartNew();
        var buffer = new byte[4096];
        var firstRead = stream.ReadAsync(buffer, cancel).AsTask();
        var chunk = Encoding.ASCII.GetBytes(new string(' ', bytesPerWrite));
        while (started.Elapsed < TimeSpan.FromSeconds(60) && await Task.WhenAny(firstRead, Task.Delay(every, cancel)) != firstRead)
        {
            await stream.WriteAsync(chunk, cancel);
        }

        if (!firstRead.IsCompleted)
        {
            return (false, started.Elapsed, "");
        }

        var elapsed = started.Elapsed;
        var answer = new StringBuilder();
        var read = await firstRead;
        while (read > 0)
        {
            answer.Append(Encoding.UTF8.GetString(buffer, 0, read));
            if (answer.ToString().EndsWith('}'))
            {
                break;
            }

            try
            {
                read = await stream.ReadAsync(buffer, cancel);
            }
            catch (IOException)
            {
                // The server closes the connection after its answer while drip bytes it never read are still
                // arriving, so the socket may be reset before the rest is read; the assertions judge what arrived.
                break;
            }
        }

        return (true, elapsed, answer.ToString());
    }
}
