using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13, the per-attempt connect timeout against a real socket-level hang: a destination whose TCP connect never
/// completes (its listener's accept queue is full, so the kernel drops the SYNs) fails each attempt within the
/// configured connect timeout (gateway default, per model, per team), is retried, and the request falls back to the
/// next model, whose answer the client gets.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class ConnectTimeoutTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromMilliseconds(500);

    [Theory]
    [InlineData("gateway")]
    [InlineData("model")]
    [InlineData("team")]
    public async Task HangingConnect_EachAttemptFailsWithinTheConnectTimeout_ThenTheFallbackModelAnswers(string level)
    {
        using var hanging = HangingListener.Start();
        var settings = new Dictionary<string, string?>
        {
            ["Resilience:Retry:MaxAttempts"] = "2",
            ["Resilience:Retry:BaseDelay"] = "00:00:00.05",
            ["Resilience:Retry:MaxDelay"] = "00:00:00.1",
            ["Providers:openai:Destinations:0"] = hanging.Address, // gpt-4o-mini's only destination never accepts
            ["Models:gpt-4o-mini:Fallbacks:0"] = "azure-gpt-4o",   // another provider, served by the simulator
        };
        var timeout = ConnectTimeout.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        if (level == "gateway")
        {
            settings["Resilience:Timeouts:Connect"] = timeout;
        }
        else if (level == "model")
        {
            settings["Models:gpt-4o-mini:Resilience:Timeouts:Connect"] = timeout; // the gateway default stays 10 s
        }

        await using var server = await GatewayServer.StartAsync(settings);
        if (level == "team")
        {
            (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy",
                new { resilience = new { timeouts = new { connect = timeout } } })).EnsureSuccessStatusCode();
        }

        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0),
            NetworkTimeout = TimeSpan.FromSeconds(60),
        });
        var watch = Stopwatch.StartNew();

        var result = await client.CompleteChatAsync([new UserChatMessage("hello")]);

        watch.Stop();
        var raw = result.GetRawResponse();
        Assert.Equal(200, raw.Status);
        Assert.False(string.IsNullOrEmpty(result.Value.Content[0].Text));
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-attempts", out var attempts));
        Assert.Equal("3", attempts); // two hung connects on gpt-4o-mini, then the fallback
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-request-id", out var requestId));

        var billed = await server.WaitForEventAsync(requestId!);
        Assert.Equal("ok", billed.GetProperty("status").GetString());
        Assert.Equal("azure-gpt-4o", billed.GetProperty("model").GetString());
        Assert.Equal("azure", billed.GetProperty("provider").GetString());
        Assert.True(billed.GetProperty("costUsd").GetDecimal() > 0m);
        for (var n = 1; n <= 2; n++)
        {
            var attempt = await server.WaitForEventAsync($"{requestId}_attempt{n}");
            Assert.Equal(requestId, attempt.GetProperty("parentRequestId").GetString());
            Assert.Equal("connect_failure", attempt.GetProperty("errorCode").GetString());
            Assert.Equal("gpt-4o-mini", attempt.GetProperty("model").GetString());
            Assert.Equal(0m, attempt.GetProperty("costUsd").GetDecimal());
            var latency = TimeSpan.FromMilliseconds(attempt.GetProperty("latencyMs").GetDouble());
            output.WriteLine($"{level}: attempt {n} failed after {latency.TotalMilliseconds:F0} ms (connect timeout {ConnectTimeout.TotalMilliseconds:F0} ms)");
            // ≈ the connect timeout: never before it (the connect really hung), far below the 10 s default (bounded
            // generously for a loaded machine, never near the wall clock of a hang).
            Assert.InRange(latency, ConnectTimeout - TimeSpan.FromMilliseconds(50), ConnectTimeout + TimeSpan.FromSeconds(3));
        }

        output.WriteLine($"{level}: client-observed {watch.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(watch.Elapsed >= 2 * ConnectTimeout - TimeSpan.FromMilliseconds(100), $"took {watch.Elapsed}");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"took {watch.Elapsed}: the connect timeout was not applied");
    }

    /// <summary>
    /// A loopback listener whose connects hang: it listens with a backlog of 0 and never accepts; a few connections fill
    /// its accept queue, after which Linux drops further SYNs (no RST), so a connect waits for SYN retransmissions until
    /// the client gives up. Verified at start with a probe connect.
    /// </summary>
    private sealed class HangingListener : IDisposable
    {
        private readonly Socket _listener;
        private readonly List<Socket> _fill = [];

        private HangingListener(Socket listener) => _listener = listener;

        public string Address => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}/";

        public static HangingListener Start()
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(0);
            var hanging = new HangingListener(listener);
            var endpoint = (IPEndPoint)listener.LocalEndPoint!;
            for (var i = 0; i < 4; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
                try
                {
                    filler.Connect(endpoint);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
                {
                    // Completes (queued) or keeps retrying its SYN: either way it holds its place.
                }

                hanging._fill.Add(filler);
            }

            Thread.Sleep(200);
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(400));
            try
            {
                probe.ConnectAsync(endpoint, cts.Token).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                return hanging; // the connect hung, as a dead host's would
            }

            hanging.Dispose();
            throw new InvalidOperationException("A connect to the full listener completed: this kernel does not drop SYNs on a full accept queue.");
        }

        public void Dispose()
        {
            foreach (var socket in _fill)
            {
                socket.Dispose();
            }

            _listener.Dispose();
        }
    }
}
