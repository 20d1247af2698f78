using System.Net;
using System.Net.Http.Json;
using System.Text;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>Issue #12 item 5: the dry-run optimizer has the LLM routes' body cap and counts against the team's rate.</summary>
public sealed class OptimizeDryRunLimitTests
{
    private const string Chat = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise   this    please\"}]}";

    [Fact]
    public async Task DryRuns_CountAgainstTheTeamsRequestsPerMinute_WithTheLlmRoutes()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("rpm-dry-run");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { rateLimits = new { requestsPerMinute = 2 } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using var first = await http.PostAsync("/v1/tokengateway/optimize", Body());
        using var chat = await http.PostAsync("/v1/chat/completions", Body());
        using var third = await http.PostAsync("/v1/tokengateway/optimize", Body());

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("1", first.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        await ErrorHandlingTests.AssertOpenAIErrorAsync(third, HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.NotNull(third.Headers.RetryAfter);
        // Nothing was billed by the dry run: the only usage is the chat request.
        var usage = await server.UsageAsync($"teamId={teamId}");
        Assert.True(usage.GetProperty("totals").GetProperty("requests").GetInt32() <= 2);
    }

    [Fact]
    public async Task DryRun_BodyOverTheCap_413RequestTooLarge()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:MaxRequestBodyBytes"] = "65536" });
        using var http = server.CreateClient();
        var big = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 200_000) + "\"}]}";

        using var declared = await http.PostAsync("/v1/tokengateway/optimize", new StringContent(big, Encoding.UTF8, "application/json"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tokengateway/optimize")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big))),
        };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TransferEncodingChunked = true;
        using var chunked = await http.SendAsync(request);

        await ErrorHandlingTests.AssertOpenAIErrorAsync(declared, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
        await ErrorHandlingTests.AssertOpenAIErrorAsync(chunked, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
    }

    [Fact]
    public async Task DryRun_WithoutKey_401BeforeTheBodyIsSent()
    {
        await using var server = await GatewayServer.StartAsync();

        var response = await RawHttp.SendPartialBodyAsync(server.Address, "POST", "/v1/tokengateway/optimize", 300L * 1024 * 1024, 16 * 1024);

        Assert.Equal(401, RawHttp.Status(response));
    }

    private static StringContent Body() => new(Chat, Encoding.UTF8, "application/json");
}
