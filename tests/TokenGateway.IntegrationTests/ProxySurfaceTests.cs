using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Responses;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>The official OpenAI SDK pointed at the gateway: every surface, streamed and not.</summary>
public sealed class ProxySurfaceTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    private OpenAIClientOptions Options => new() { Endpoint = Server.OpenAIEndpoint, NetworkTimeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task ChatCompletion_NonStreaming_ReturnsContentAndSwapsCredentials()
    {
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(Server.VirtualKey), Options);

        var result = await client.CompleteChatAsync([new UserChatMessage("Say hello to the gateway")]);

        Assert.False(string.IsNullOrWhiteSpace(result.Value.Content[0].Text));
        Assert.True(result.Value.Usage.InputTokenCount > 0);
        var requestId = result.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id : null;
        Assert.NotNull(requestId);
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.Headers.TryGetValue("x-tokengateway-request-id", out var v) && v == requestId);
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.Headers["Authorization"]);
        Assert.DoesNotContain(upstream.Headers, h => h.Value.Contains(Server.VirtualKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ChatCompletion_Streaming_AssemblesContentAndUsage()
    {
        var client = new ChatClient("gpt-4o", new ApiKeyCredential(Server.VirtualKey), Options);
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;

        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Stream a short answer")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.NotNull(usage);
        Assert.True(usage!.OutputTokenCount > 0);
    }

    [Fact]
    public async Task ChatCompletion_StreamingWithoutIncludeUsage_HidesTheUsageChunkTheGatewayAdded()
    {
        using var http = Server.CreateClient();
        using var response = await http.PostAsync("/v1/chat/completions", Json(new
        {
            model = "gpt-4o-mini",
            stream = true,
            messages = new[] { new { role = "user", content = "hello" } },
        }));

        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        Assert.Contains("data: [DONE]", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"usage\":{", body, StringComparison.Ordinal);
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.Headers.TryGetValue("x-tokengateway-request-id", out var v)
            && v == response.Headers.GetValues("x-tokengateway-request-id").Single());
        using var sent = JsonDocument.Parse(upstream.Body);
        Assert.True(sent.RootElement.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public async Task Responses_NonStreamingAndStreaming_Work()
    {
#pragma warning disable OPENAI001 // Responses API surface is marked experimental in the SDK
        var client = new ResponsesClient(new ApiKeyCredential(Server.VirtualKey), new ResponsesClientOptions { Endpoint = Server.OpenAIEndpoint });

        var response = await client.CreateResponseAsync(new CreateResponseOptions("gpt-4.1-mini", [ResponseItem.CreateUserMessageItem("What is TOON?")]));
        Assert.False(string.IsNullOrWhiteSpace(response.Value.GetOutputText()));
        Assert.True(response.Value.Usage.OutputTokenCount > 0);

        var text = new StringBuilder();
        var completed = false;
        await foreach (var update in await client.CreateResponseStreamingAsync(new CreateResponseOptions("gpt-4.1-mini", [ResponseItem.CreateUserMessageItem("Stream please")]) { StreamingEnabled = true }))
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
            }

            completed |= update is StreamingResponseCompletedUpdate;
        }
#pragma warning restore OPENAI001

        Assert.True(completed);
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
    }

    [Fact]
    public async Task Embeddings_ReturnVectors()
    {
        var client = new EmbeddingClient("text-embedding-3-small", new ApiKeyCredential(Server.VirtualKey), Options);

        var result = await client.GenerateEmbeddingAsync("tokens are money");

        Assert.Equal(1536, result.Value.ToFloats().Length);
    }

    [Fact]
    public async Task AzureProvider_UsesApiKeyHeaderAndDeploymentPath()
    {
        var client = new ChatClient("azure-gpt-4o", new ApiKeyCredential(Server.VirtualKey), Options);

        var result = await client.CompleteChatAsync([new UserChatMessage("hello azure")]);

        var requestId = result.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id : null;
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.Headers.TryGetValue("x-tokengateway-request-id", out var v) && v == requestId);
        Assert.StartsWith("/openai/deployments/azure-gpt-4o/chat/completions?api-version=", upstream.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(GatewayServer.ProviderKey, upstream.Headers["api-key"]);
        Assert.False(upstream.Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task Models_ListsCatalogueModels()
    {
        using var http = Server.CreateClient();

        var list = await http.GetFromJsonAsync<JsonElement>("/v1/models");

        var ids = list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("gpt-4o", ids);
        Assert.Contains("claude-sonnet-4-5", ids);
    }

    [Fact]
    public async Task UntouchedRequest_IsForwardedByteIdentical()
    {
        const string body = "{\"model\": \"gpt-4o-mini\",  \"messages\": [ {\"role\":\"user\",\"content\":\"exact bytes\"} ] }";
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        response.EnsureSuccessStatusCode();
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.Headers.TryGetValue("x-tokengateway-request-id", out var v) && v == requestId);
        Assert.Equal(body, upstream.BodyText);
    }

    internal static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}
