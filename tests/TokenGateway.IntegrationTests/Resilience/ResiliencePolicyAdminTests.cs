using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

public sealed class ResiliencePolicyAdminTests
{
    [Fact]
    public async Task PutTeamPolicy_ResilienceAndFallbacks_AreStoredAndReturned()
    {
        await using var server = await GatewayServer.StartAsync();

        var put = await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new
        {
            resilience = new { continueStreams = true, retry = new { maxAttempts = 2, retryAfterCap = "00:00:05" } },
            fallbacks = new Dictionary<string, string[]> { ["gpt-4o-mini"] = ["gpt-4.1-mini"] },
        });
        var get = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/policy");

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.True(get.GetProperty("resilience").GetProperty("continueStreams").GetBoolean());
        Assert.Equal(2, get.GetProperty("resilience").GetProperty("retry").GetProperty("maxAttempts").GetInt32());
        Assert.Equal("00:00:05", get.GetProperty("resilience").GetProperty("retry").GetProperty("retryAfterCap").GetString());
        Assert.Equal("gpt-4.1-mini", get.GetProperty("fallbacks").GetProperty("gpt-4o-mini")[0].GetString());
    }

    [Fact]
    public async Task PutTeamPolicy_CrossDialectFallback_IsAccepted()
    {
        // Translation (issue #16) lets a model of the other API stand in: the request is translated for it.
        await using var server = await GatewayServer.StartAsync();

        var put = await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new
        {
            fallbacks = new Dictionary<string, string[]> { ["gpt-4o-mini"] = ["claude-sonnet-4-5"] },
        });

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
    }

    [Theory]
    [InlineData("no-such-model", "fallbacks.gpt-4o-mini[0]", "not in the catalogue")]
    [InlineData("gpt-4o-mini", "fallbacks.gpt-4o-mini[0]", "itself")]
    public async Task PutTeamPolicy_BadFallback_400WithTheField(string fallback, string field, string message)
    {
        await using var server = await GatewayServer.StartAsync();

        var put = await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new
        {
            fallbacks = new Dictionary<string, string[]> { ["gpt-4o-mini"] = [fallback] },
        });
        var problem = await put.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        Assert.Equal("invalid_policy", problem.GetProperty("code").GetString());
        Assert.Contains(message, problem.GetProperty("errors").GetProperty(field)[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PutKeyPolicy_Resilience_IsRefusedWithAPointerToTheTeamPolicy()
    {
        await using var server = await GatewayServer.StartAsync();
        var keys = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/keys");
        var keyId = keys.GetProperty("data")[0].GetProperty("id").GetString();

        var put = await server.Admin.PutAsJsonAsync($"/admin/keys/{keyId}/policy", new { resilience = new { continueStreams = true } });
        var problem = await put.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        Assert.Contains("team", problem.GetProperty("errors").GetProperty("resilience")[0].GetString(), StringComparison.Ordinal);
    }
}
