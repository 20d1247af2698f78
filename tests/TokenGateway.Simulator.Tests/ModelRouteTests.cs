using System.Net;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

/// <summary>
/// Like the real providers, the simulator serves each model family on its own API only, so a gateway test cannot pass
/// without translation (issue #16).
/// </summary>
public sealed class ModelRouteTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat(string model) => new()
    {
        ["model"] = model,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    private static JsonObject Messages(string model) => new()
    {
        ["model"] = model,
        ["max_tokens"] = 16,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    [Theory]
    [InlineData("/v1/chat/completions", "claude-sonnet-4-5")]
    [InlineData("/v1/chat/completions", "claude-3-5-haiku-latest")]
    [InlineData("/v1/responses", "claude-haiku-4-5")]
    [InlineData("/v1/embeddings", "claude-haiku-4-5")]
    [InlineData("/openai/deployments/claude-sonnet-4-5/chat/completions", "claude-sonnet-4-5")]
    public async Task Post_ClaudeModelOnOpenAIRoute_404InOpenAIEnvelope(string path, string model)
    {
        var body = path == "/v1/responses"
            ? new JsonObject { ["model"] = model, ["input"] = "hello" }
            : path == "/v1/embeddings" ? new JsonObject { ["model"] = model, ["input"] = "hello" } : Chat(model);

        using var response = await _sim.PostAsync(path, body);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        var expected = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = $"The model `{model}` does not exist or you do not have access to it.",
                ["type"] = "invalid_request_error",
                ["param"] = null,
                ["code"] = "model_not_found",
            },
        };
        Assert.True(JsonNode.DeepEquals(expected, json), json.ToJsonString());
    }

    [Theory]
    [InlineData("/v1/messages", "gpt-4o-mini")]
    [InlineData("/v1/messages", "o3-mini")]
    [InlineData("/v1/messages", "ft:gpt-4o-mini:acme::abc")]
    [InlineData("/v1/messages/count_tokens", "gpt-4.1")]
    public async Task Post_OpenAIModelOnMessages_404InAnthropicEnvelope(string path, string model)
    {
        using var response = await _sim.PostAsync(path, Messages(model));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        var expected = new JsonObject
        {
            ["type"] = "error",
            ["error"] = new JsonObject { ["type"] = "not_found_error", ["message"] = "model: " + model },
        };
        Assert.True(JsonNode.DeepEquals(expected, json), json.ToJsonString());
    }

    [Theory]
    [InlineData("/v1/chat/completions", "gpt-4o-mini")]
    [InlineData("/v1/chat/completions", "llama-3.1-8b")] // an OpenAI-compatible server's model
    [InlineData("/v1/messages", "claude-sonnet-4-5")]
    [InlineData("/v1/messages", "llama-3.1-8b")]
    public async Task Post_ModelOnItsOwnRoute_200(string path, string model)
    {
        using var response = await _sim.PostAsync(path, path == "/v1/messages" ? Messages(model) : Chat(model));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Post_ClaudeOnChatWithStreaming_404BeforeAnyStream()
    {
        var body = Chat("claude-sonnet-4-5");
        body["stream"] = true;

        using var response = await _sim.PostAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }
}
