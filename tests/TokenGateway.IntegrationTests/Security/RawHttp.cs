using System.Net.Sockets;
using System.Text;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>HTTP/1.1 over a raw socket, for requests whose body the client deliberately never finishes.</summary>
internal static class RawHttp
{
    /// <summary>
    /// Sends the request line and headers declaring <paramref name="declaredLength"/> body bytes, then only
    /// <paramref name="sentBytes"/> of them, and reads the response head. Throws <see cref="TimeoutException"/> when the
    /// server does not answer within <paramref name="timeout"/> (it is waiting for the rest of the body).
    /// </summary>
    public static async Task<string> SendPartialBodyAsync(string address, string method, string path, long declaredLength, int sentBytes,
        string? headers = null, TimeSpan? timeout = null, string contentType = "application/json")
    {
        var uri = new Uri(address);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var head = $"{method} {path} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: {contentType}\r\nContent-Length: {declaredLength}\r\n{headers}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var chunk = new byte[Math.Min(sentBytes, 16 * 1024)];
        chunk.AsSpan().Fill((byte)' ');
        chunk[0] = (byte)'{';
        for (var sent = 0; sent < sentBytes; sent += chunk.Length)
        {
            await stream.WriteAsync(chunk.AsMemory(0, Math.Min(chunk.Length, sentBytes - sent)));
        }

        await stream.FlushAsync();
        return await ReadHeadAsync(stream, timeout, $"No response after sending {sentBytes} of {declaredLength} body bytes: the server is waiting for the body.");
    }

    /// <summary>
    /// Sends a chunked body of <paramref name="bodyBytes"/> bytes and no terminating chunk, then reads the response head.
    /// Keep the body within what the server buffers (≤ 1 MiB past its limit) so it can answer without a reset.
    /// </summary>
    public static async Task<string> SendChunkedAsync(string address, string path, int bodyBytes, string? headers = null, TimeSpan? timeout = null)
    {
        var uri = new Uri(address);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var head = $"POST {path} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{headers}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var data = new byte[16 * 1024];
        data.AsSpan().Fill((byte)'n');
        "{\"name\":\""u8.CopyTo(data);
        for (var sent = 0; sent < bodyBytes; sent += data.Length)
        {
            var n = Math.Min(data.Length, bodyBytes - sent);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(n.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + "\r\n"));
            await stream.WriteAsync(data.AsMemory(0, n));
            await stream.WriteAsync("\r\n"u8.ToArray());
            data.AsSpan(0, 16).Fill((byte)'n'); // the JSON prefix only once: one long string value
        }

        await stream.FlushAsync();
        return await ReadHeadAsync(stream, timeout, $"No response after {bodyBytes} chunked body bytes.");
    }

    /// <summary>Reads the response head and, when it declares a Content-Length, its body.</summary>
    private static async Task<string> ReadHeadAsync(NetworkStream stream, TimeSpan? timeout, string timeoutMessage)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var received = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            while (!Complete(received.ToString()))
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException(timeoutMessage);
        }
        catch (IOException) when (received.Length > 0)
        {
            // The server closed after answering (it does not read the rest of a refused body).
        }

        return received.ToString();
    }

    private static bool Complete(string response)
    {
        var end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        var length = response[..end].Split("\r\n").Skip(1)
            .Select(line => line.Split(':', 2))
            .Where(parts => parts.Length == 2 && parts[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            .Select(parts => int.Parse(parts[1].Trim(), System.Globalization.CultureInfo.InvariantCulture))
            .FirstOrDefault();
        return Encoding.UTF8.GetByteCount(response[(end + 4)..]) >= length;
    }

    public static int Status(string response) => int.Parse(response.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);
}
