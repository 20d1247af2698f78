using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Translation;

/// <summary>
/// Gemini through its OpenAI-compatible endpoint (issue #16): the shipped <c>gemini</c> provider is
/// <c>OpenAICompatible</c> with <c>PathPrefix</c> replacing <c>/v1</c> by Google's API root. Here its destination is a
/// simulator served under a prefix (Google's root cannot be reached offline), with the catalogue's Gemini prices.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class GeminiProviderTests
{
    private const string Prefix = "/v1beta/openai";

    [Fact]
    public async Task OpenAISdkAndAnthropicClient_GeminiModel_ReachThePrefixedRootWithBearerKeyAndAreBilledAtGeminiPrices()
    {
        await using var gemini = await SimulatorServer.StartAsync(GatewayServer.ProviderKey, Prefix);
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Providers:gemini:Destinations:0"] = gemini.Address,
            // The simulator serves {prefix}/v1/…; Google serves {root}/chat/completions — the mapping is the same shape.
            ["Providers:gemini:PathPrefix"] = Prefix + "/v1",
            ["Providers:gemini:ApiKeyEnv"] = GatewayServer.ProviderKeyEnv,
        });
        var chat = new ChatClient("gemini-2.5-flash", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });

        ClientResult<ChatCompletion> result = await chat.CompleteChatAsync([new UserChatMessage("hello gemini")], new ChatCompletionOptions { MaxOutputTokenCount = 20 });

        var upstream = gemini.Recorder.Snapshot().Single(r => r.BodyText.Contains("hello gemini", StringComparison.Ordinal));
        Assert.Equal(Prefix + "/v1/chat/completions", upstream.PathAndQuery);
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.GetHeader("authorization"));
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var id));
        var e = await server.WaitForEventAsync(id!);
        var usage = result.Value.Usage;
        Assert.Equal("gemini", e.GetProperty("provider").GetString());
        Assert.Equal((usage.InputTokenCount * 0.3m + usage.OutputTokenCount * 2.5m) / 1_000_000m, e.GetProperty("costUsd").GetDecimal());

        // The Anthropic API on a Gemini model: translated to chat, with the older max_tokens field compatible servers know.
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        http.DefaultRequestHeaders.Add("x-api-key", server.VirtualKey);
        using var response = await http.PostAsync("/v1/messages", new StringContent(
            """{"model":"gemini-2.5-flash","max_tokens":30,"messages":[{"role":"user","content":"hello gemini from claude code"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message", (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["type"]!);
        var translated = gemini.Recorder.Snapshot().Single(r => r.BodyText.Contains("from claude code", StringComparison.Ordinal));
        Assert.Equal(Prefix + "/v1/chat/completions", translated.PathAndQuery);
        var body = JsonNode.Parse(translated.BodyText)!;
        Assert.Equal(30, (int)body["max_tokens"]!);
        Assert.Null(body["max_completion_tokens"]);
    }
}
