using System.Diagnostics;
using System.Net.Sockets;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>
/// Redis for the scale-out tests: the shared server <c>.ci/services start</c> runs on 127.0.0.1:56379 (or
/// <c>TOKENGATEWAY_TEST_REDIS</c>), used with a key prefix per test and never flushed, and throwaway
/// <c>redis-server</c> processes a test may stop and restart at will.
/// </summary>
public static class RedisServers
{
    private static readonly Lazy<bool> _sharedAvailable = new(() => Answers(SharedEndpoint));

    public static string SharedEndpoint => Environment.GetEnvironmentVariable("TOKENGATEWAY_TEST_REDIS") is { Length: > 0 } configured ? configured : "127.0.0.1:56379";

    /// <summary>Skips the test (with the reason) when the shared Redis does not answer.</summary>
    public static void SkipUnlessShared() =>
        Skip.IfNot(_sharedAvailable.Value, $"No Redis answers at {SharedEndpoint}: run `.ci/services start` (or set TOKENGATEWAY_TEST_REDIS).");

    /// <summary>Skips the test when <c>redis-server</c> is not installed.</summary>
    public static void SkipUnlessInstalled() =>
        Skip.IfNot(File.Exists("/usr/bin/redis-server") || File.Exists("/usr/local/bin/redis-server"), "redis-server is not installed (apt-get install redis-server, or `.ci/services start`).");

    /// <summary>A key prefix no other test uses.</summary>
    public static string NewPrefix() => "tgit-" + Guid.NewGuid().ToString("N")[..12] + ":";

    private static bool Answers(string endpoint)
    {
        var parts = endpoint.Split(':');
        try
        {
            using var client = new TcpClient();
            client.Connect(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
            using var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            var buffer = new byte[16];
            var read = stream.Read(buffer);
            return read > 0 && buffer[0] == (byte)'+';
        }
        catch (Exception ex) when (ex is SocketException or IOException or FormatException or IndexOutOfRangeException)
        {
            return false;
        }
    }
}

/// <summary>A redis-server process of the test's own on a free loopback port, without persistence: stop it, start it again empty.</summary>
public sealed class OwnRedisServer : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tg-redis-" + Guid.NewGuid().ToString("N"));
    private Process? _process;

    public OwnRedisServer()
    {
        Port = GatewayProcess.FreePort();
        Directory.CreateDirectory(_directory);
    }

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    public async Task StartAsync()
    {
        var info = new ProcessStartInfo("redis-server", $"--port {Port} --bind 127.0.0.1 --save \"\" --appendonly no --dir {_directory}")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Sends one inline command (e.g. <c>CLIENT PAUSE 3000 ALL</c>) and returns the first reply line.</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port);
        await using var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"));
        var buffer = new byte[256];
        var read = await stream.ReadAsync(buffer);
        return System.Text.Encoding.ASCII.GetString(buffer, 0, read).TrimEnd();
    }

    /// <summary>Kills the server (SIGKILL): its data is gone (no persistence).</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
