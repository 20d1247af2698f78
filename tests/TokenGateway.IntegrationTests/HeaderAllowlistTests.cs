using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// Headers cross the gateway by per-provider allowlist only (issue #12 item 9): client headers that bill, identify or
/// steer (organisation, project, beta flags, forwarding chains, the gateway's own request id) never reach the
/// provider, and provider headers (cookies, organisation, rate-limit state) never reach the client, unless configured.
/// </summary>
public sealed class HeaderAllowlistTests : IAsyncLifetime
{
    private GatewayServer _server = null!;

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(new Dictionary<string, string?>
    {
        ["Providers:anthropic:ForwardRequestHeaders:1"] = "anthropic-beta",
        ["Providers:azure:ReturnResponseHeaders:0"] = "x-ratelimit-remaining-tokens",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task ChatRequest_HeadersOutsideAllowlist_NeverReachProvider()
    {
        using var http = _server.CreateClient();
        var marker = Guid.NewGuid().ToString("N");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = ProxySurfaceTests.Json(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi " + marker } } }),
        };
        request.Headers.Add("OpenAI-Organization", "org-someone-else");
        request.Headers.Add("OpenAI-Project", "proj_someone_else");
        request.Headers.Add("anthropic-beta", "prompt-caching-2024-07-31");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        request.Headers.Add("X-Forwarded-Host", "evil.example");
        request.Headers.Add("Forwarded", "for=203.0.113.7");
        request.Headers.Add("x-tokengateway-request-id", "req_chosen_by_client");
        request.Headers.Add("X-Custom-Tracking", "abc");

        using var response = await http.SendAsync(request);

        response.EnsureSuccessStatusCode();
        var upstream = _server.Simulator.Recorder.Snapshot().Single(r => r.BodyText.Contains(marker, StringComparison.Ordinal));
        foreach (var name in new[] { "OpenAI-Organization", "OpenAI-Project", "anthropic-beta", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Custom-Tracking" })
        {
            Assert.Null(upstream.GetHeader(name));
        }

        var gatewayId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        Assert.Equal(gatewayId, upstream.GetHeader("x-tokengateway-request-id"));
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.GetHeader("Authorization"));
    }

    [Fact]
    public async Task MessagesRequest_AnthropicBetaAllowedByConfiguration_Forwarded()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_server.Address) };
        var marker = Guid.NewGuid().ToString("N");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = ProxySurfaceTests.Json(new { model = "claude-sonnet-4-5", max_tokens = 20, messages = new[] { new { role = "user", content = "hi " + marker } } }),
        };
        request.Headers.Add("x-api-key", _server.VirtualKey);
        request.Headers.Add("anthropic-version", "2023-06-01");
        request.Headers.Add("anthropic-beta", "prompt-caching-2024-07-31");

        using var response = await http.SendAsync(request);

        response.EnsureSuccessStatusCode();
        var upstream = _server.Simulator.Recorder.Snapshot().Single(r => r.BodyText.Contains(marker, StringComparison.Ordinal));
        Assert.Equal("prompt-caching-2024-07-31", upstream.GetHeader("anthropic-beta"));
        Assert.Equal("2023-06-01", upstream.GetHeader("anthropic-version"));
        Assert.Equal(GatewayServer.ProviderKey, upstream.GetHeader("x-api-key"));
    }

    [Fact]
    public async Task ProviderHeadersOutsideAllowlist_NeverReachClient()
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = ProxySurfaceTests.Json(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } }),
        };
        request.Headers.Add("x-simulator-fault", "provider-headers");

        using var response = await http.SendAsync(request);

        response.EnsureSuccessStatusCode();
        foreach (var name in new[] { "Set-Cookie", "openai-organization", "openai-project", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "anthropic-ratelimit-requests-remaining" })
        {
            Assert.False(response.Headers.Contains(name), $"{name} reached the client");
        }

        Assert.True(response.Headers.Contains("x-request-id")); // the provider's request id is allowed (support tickets)
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices");
    }

    [Fact]
    public async Task ProviderHeaderNamedInConfiguration_ReachesClient()
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = ProxySurfaceTests.Json(new { model = "azure-gpt-4o", messages = new[] { new { role = "user", content = "hi" } } }),
        };
        request.Headers.Add("x-simulator-fault", "provider-headers");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("799000", response.Headers.GetValues("x-ratelimit-remaining-tokens").Single());
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }
}
