using System.Net;
using System.Net.Sockets;
using System.Text;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Oversized bodies, unreachable and slow upstreams: each gets its own gateway with tight limits.</summary>
public sealed class UpstreamFailureTests
{
    private static readonly object _chat = new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } };

    [Fact]
    public async Task BodyOverCap_Returns413()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:MaxRequestBodyBytes"] = "4096" });
        using var http = server.CreateClient();
        var big = new string('a', 10_000);

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = big } } }));

        await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
        Assert.DoesNotContain(server.Simulator.Recorder.Snapshot(), r => r.Body.Length > 4096);
    }

    [Fact]
    public async Task ChunkedBodyOverCap_Returns413()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:MaxRequestBodyBytes"] = "4096" });
        using var http = server.CreateClient();
        var json = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('b', 20_000) + "\"}]}";
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        content.Headers.ContentType = new("application/json");

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task UpstreamRefusesConnection_Returns502UpstreamUnavailable()
    {
        var closedPort = GetFreePort();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Providers:openai:Destinations:0"] = $"http://127.0.0.1:{closedPort}/",
        });
        using var http = server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(_chat));

        await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.BadGateway, "upstream_unavailable");
    }

    [Fact]
    public async Task UpstreamTooSlow_Returns504UpstreamTimeout()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:UpstreamTimeout"] = "00:00:01" });
        using var http = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ProxySurfaceTests.Json(_chat) };
        request.Headers.Add("x-simulator-fault", "latency=3000ms");

        using var response = await http.SendAsync(request);

        await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.GatewayTimeout, "upstream_timeout");
    }

    private static int GetFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
