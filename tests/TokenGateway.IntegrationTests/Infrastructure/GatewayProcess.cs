using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>
/// The built gateway as a child process (<c>dotnet TokenGateway.dll</c>) on a free loopback port, configured through
/// environment variables, routed to a simulator. Its output is kept for failure messages.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private GatewayProcess(Process process, string address)
    {
        _process = process;
        Address = address;
        Admin = new HttpClient { BaseAddress = new Uri(address) };
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);
    }

    public string Address { get; }

    public HttpClient Admin { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output.TakeLast(60));
            }
        }
    }

    public static async Task<GatewayProcess> StartAsync(string simulatorAddress, IDictionary<string, string> environment)
    {
        var port = FreePort();
        var dll = Path.Combine(RepoPaths.GatewayOutputDirectory(), "TokenGateway.dll");
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" --urls http://127.0.0.1:{port}")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepoPaths.GatewayOutputDirectory(),
        };
        info.Environment["TOKENGATEWAY_ADMIN_KEY"] = GatewayServer.AdminKey;
        info.Environment[GatewayServer.ProviderKeyEnv] = GatewayServer.ProviderKey;
        info.Environment["Gateway__Simulator"] = "Never";
        info.Environment["Serilog__MinimumLevel__Default"] = "Warning";
        info.Environment["Providers__openai__Destinations__0"] = simulatorAddress;
        info.Environment["Providers__openai__ApiKeyEnv"] = GatewayServer.ProviderKeyEnv;
        info.Environment["Providers__openai__ForwardRequestHeaders__0"] = "x-simulator-fault";
        info.Environment["Providers__anthropic__ForwardRequestHeaders__0"] = "x-simulator-fault";
        info.Environment["Providers__anthropic__Destinations__0"] = simulatorAddress;
        info.Environment["Providers__anthropic__ApiKeyEnv"] = GatewayServer.ProviderKeyEnv;
        info.Environment["Resilience__Retry__MaxAttempts"] = "1";
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        var process = Process.Start(info)!;
        var gateway = new GatewayProcess(process, $"http://127.0.0.1:{port}/");
        process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await gateway.WaitUntilReadyAsync();
        return gateway;
    }

    public HttpClient CreateClient(string key)
    {
        var client = new HttpClient { BaseAddress = new Uri(Address), Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>SIGKILL, the way a crash or an OOM kill ends the process: no shutdown, no flush.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }
    }

    private async Task WaitUntilReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The gateway process exited with {_process.ExitCode}:\n{Output}");
            }

            try
            {
                using var r = await Admin.GetAsync("/readyz");
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The gateway did not become ready:\n{Output}");
            }

            await Task.Delay(100);
        }
    }
}
