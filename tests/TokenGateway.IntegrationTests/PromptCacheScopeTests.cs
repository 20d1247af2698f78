using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// OpenAI's prompt cache scoped per team (issue #15): the gateway sends a team-scoped <c>prompt_cache_key</c>, so one
/// team cannot read another's cache state through <c>cached_tokens</c>, while a team's own conversation keeps hitting.
/// The simulator models OpenAI's prefix caching (1024 tokens, then 128-token steps, keyed by prompt_cache_key).
/// </summary>
public sealed class PromptCacheScopeTests(GatewayFixture fixture, ITestOutputHelper output) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    [Fact]
    public async Task IdenticalLongPrompt_FromAnotherTeam_ReadsNoCachedTokens()
    {
        var (_, keyA) = await Server.CreateTeamWithKeyAsync("pc-a-" + Guid.NewGuid().ToString("N")[..6]);
        var (_, keyB) = await Server.CreateTeamWithKeyAsync("pc-b-" + Guid.NewGuid().ToString("N")[..6]);
        var messages = new object[] { new { role = "system", content = LongSystemPrompt() }, new { role = "user", content = "Summarize." } };

        var warm = await CachedTokensAsync(Server.CreateClient(keyA), messages);
        var again = await CachedTokensAsync(Server.CreateClient(keyA), messages);
        var otherTeam = await CachedTokensAsync(Server.CreateClient(keyB), messages);

        // Before scoping (the provider sees one organization, no key): the same prompt sent twice straight to the
        // simulator reads the first one's prefix, whoever sent it.
        using var direct = new HttpClient { BaseAddress = new Uri(Server.Simulator.Address) };
        direct.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.ProviderKey);
        var unscopedMessages = new object[] { new { role = "system", content = LongSystemPrompt() }, new { role = "user", content = "Summarize, unscoped." } };
        await CachedTokensAsync(direct, unscopedMessages);
        var unscoped = await CachedTokensAsync(direct, unscopedMessages);
        output.WriteLine($"team A first={warm.Cached}/{warm.Prompt}, team A again={again.Cached}/{again.Prompt}, team B={otherTeam.Cached}/{otherTeam.Prompt}, unscoped second sender={unscoped.Cached}/{unscoped.Prompt}");

        Assert.Equal(0, warm.Cached);
        Assert.True(again.Cached >= 1024, $"team A's second request read {again.Cached} cached tokens");
        Assert.Equal(0, otherTeam.Cached);
        Assert.True(unscoped.Cached >= 1024, "without prompt_cache_key a second sender reads the first one's prefix");
        var forwarded = Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("Summarize.", StringComparison.Ordinal));
        using var body = JsonDocument.Parse(forwarded.Body);
        Assert.StartsWith("tg-", body.RootElement.GetProperty("prompt_cache_key").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientPromptCacheKeyAndUser_AreNamespacedByTeam()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("pc-ns-" + Guid.NewGuid().ToString("N")[..6]);
        var marker = Guid.NewGuid().ToString("N");
        using var response = await Server.CreateClient(key).PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "gpt-4o-mini", prompt_cache_key = "my-app", user = "alice", messages = new[] { new { role = "user", content = marker + " " + LongSystemPrompt() } },
        });
        response.EnsureSuccessStatusCode();

        var forwarded = Server.Simulator.Recorder.Snapshot().Single(r => r.BodyText.Contains(marker, StringComparison.Ordinal));
        using var body = JsonDocument.Parse(forwarded.Body);
        var cacheKey = body.RootElement.GetProperty("prompt_cache_key").GetString()!;
        var user = body.RootElement.GetProperty("user").GetString()!;
        Assert.Matches("^tg-[0-9a-f]{16}:my-app$", cacheKey);
        Assert.Equal(cacheKey[..19] + ":alice", user);
    }

    [Fact]
    public async Task ShortPrompt_IsNotScoped_AndStaysByteIdentical()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("pc-short-" + Guid.NewGuid().ToString("N")[..6]);
        var body = "{\"model\": \"gpt-4o-mini\", \"user\": \"bob\", \"messages\": [{\"role\":\"user\",\"content\":\"short " + Guid.NewGuid().ToString("N") + "\"}]}";
        using var response = await Server.CreateClient(key).PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();

        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var forwarded = Server.Simulator.Recorder.Snapshot().Last(r => r.GetHeader("x-tokengateway-request-id") == requestId);
        Assert.Equal(body, forwarded.BodyText); // below OpenAI's 1024-token caching minimum: nothing to scope
    }

    [Fact]
    public async Task MultiTurnConversation_KeepsHittingTheProviderPrefixCache()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("pc-conv-" + Guid.NewGuid().ToString("N")[..6]);
        var shares = new List<string>();
        long cached = 0, prompt = 0;
        foreach (var optimize in new[] { "off", "on" })
        {
            using var client = Server.CreateClient(key);
            client.DefaultRequestHeaders.Add("x-tokengateway-optimize", optimize);
            var conversation = new List<object> { new { role = "system", content = LongSystemPrompt() + " " + optimize } };
            long turnCached = 0, turnPrompt = 0;
            for (var turn = 0; turn < 6; turn++)
            {
                conversation.Add(new { role = "user", content = $"Question {turn}: what does step {turn} of the runbook require?" });
                using var response = await client.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-4o-mini", max_tokens = 60, messages = conversation });
                response.EnsureSuccessStatusCode();
                var json = await response.Content.ReadFromJsonAsync<JsonElement>();
                var usage = json.GetProperty("usage");
                if (turn > 0)
                {
                    turnCached += usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
                    turnPrompt += usage.GetProperty("prompt_tokens").GetInt32();
                }

                conversation.Add(new { role = "assistant", content = json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() });
            }

            shares.Add($"optimize {optimize}: {turnCached}/{turnPrompt} = {(double)turnCached / turnPrompt:P1}");
            cached = turnCached;
            prompt = turnPrompt;
        }

        output.WriteLine(string.Join("; ", shares));
        Assert.True((double)cached / prompt > 0.8, shares[^1]);
    }

    private static async Task<(int Cached, int Prompt)> CachedTokensAsync(HttpClient client, object[] messages)
    {
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-4o-mini", max_tokens = 20, messages });
        response.EnsureSuccessStatusCode();
        var usage = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("usage");
        return (usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32(), usage.GetProperty("prompt_tokens").GetInt32());
    }

    private static string LongSystemPrompt()
    {
        var text = new StringBuilder("You are the operations assistant for the payments platform. Follow the runbook exactly. ");
        for (var i = 0; i < 120; i++)
        {
            text.Append($"Step {i}: verify the ledger partition {i} replicated, check alert channel {i % 7}, and record the outcome. ");
        }

        return text.ToString();
    }
}
