using TokenGateway.Core.Dialects;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class MessagesTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Message(string content = "Hello, Claude", bool stream = false, int maxTokens = 1024) => new()
    {
        ["model"] = "claude-sonnet-4-5",
        ["max_tokens"] = maxTokens,
        ["stream"] = stream,
        ["system"] = "You are helpful.",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    };

    [Fact]
    public async Task Post_NonStreaming_ReturnsMessageWithUsage()
    {
        var result = await _sim.PostJsonAsync("/v1/messages", Message());

        Assert.StartsWith("msg_", (string)result["id"]!, StringComparison.Ordinal);
        Assert.Equal("message", (string)result["type"]!);
        Assert.Equal("end_turn", (string)result["stop_reason"]!);
        var text = (string)result["content"]![0]!["text"]!;
        var usage = result["usage"]!;
        Assert.Equal(24, (int)usage["output_tokens"]!);
        Assert.Equal(Tokens.O200k(text), (int)usage["output_tokens"]!);
        var expectedInput = Tokens.Prompt(LlmDialect.AnthropicMessages, Message(), "claude");
        Assert.Equal(expectedInput, (int)usage["input_tokens"]!);
        Assert.Equal(0, (int)usage["cache_creation_input_tokens"]!);
        Assert.Equal(0, (int)usage["cache_read_input_tokens"]!);
    }

    [Fact]
    public async Task Post_Streaming_EmitsAnthropicEventSequence()
    {
        var events = await _sim.PostSseAsync("/v1/messages", Message(stream: true));

        var types = events.Select(e => e.Event).ToList();
        Assert.Equal(["message_start", "content_block_start", "ping"], types.Take(3));
        Assert.Equal(["content_block_stop", "message_delta", "message_stop"], types.TakeLast(3));
        Assert.All(events, e => Assert.Equal(e.Event, (string)e.Json["type"]!));
        var start = events[0].Json["message"]!;
        Assert.Equal(1, (int)start["usage"]!["output_tokens"]!);
        Assert.True((int)start["usage"]!["input_tokens"]! > 0);
        var text = new StringBuilder();
        foreach (var e in events.Where(e => e.Event == "content_block_delta"))
        {
            Assert.Equal("text_delta", (string)e.Json["delta"]!["type"]!);
            text.Append((string)e.Json["delta"]!["text"]!);
        }

        var delta = events[^2].Json;
        Assert.Equal("end_turn", (string)delta["delta"]!["stop_reason"]!);
        Assert.Equal(Tokens.O200k(text.ToString()), (int)delta["usage"]!["output_tokens"]!);
    }

    [Fact]
    public async Task Post_MaxTokens_StopsWithMaxTokens()
    {
        var result = await _sim.PostJsonAsync("/v1/messages", Message(maxTokens: 6));

        Assert.Equal("max_tokens", (string)result["stop_reason"]!);
        Assert.Equal(6, (int)result["usage"]!["output_tokens"]!);
        Assert.Equal(6, Tokens.O200k((string)result["content"]![0]!["text"]!));
    }

    [Fact]
    public async Task CountTokens_MatchesMessagesInputTokens()
    {
        var body = Message("How many tokens is this?");
        body.Remove("max_tokens");

        var count = await _sim.PostJsonAsync("/v1/messages/count_tokens", body);
        var message = await _sim.PostJsonAsync("/v1/messages", Message("How many tokens is this?"));

        Assert.Equal((int)message["usage"]!["input_tokens"]!, (int)count["input_tokens"]!);
    }

    [Fact]
    public async Task Post_ForcedToolStreaming_StreamsInputJsonThatSatisfiesSchema()
    {
        var schema = SchemaAssert.Complex();
        var body = Message(stream: true);
        body["tools"] = new JsonArray(new JsonObject { ["name"] = "save_person", ["description"] = "Save", ["input_schema"] = schema.DeepClone() });
        body["tool_choice"] = new JsonObject { ["type"] = "tool", ["name"] = "save_person" };

        var events = await _sim.PostSseAsync("/v1/messages", body);

        var block = events[1].Json["content_block"]!;
        Assert.Equal("tool_use", (string)block["type"]!);
        Assert.Equal("save_person", (string)block["name"]!);
        var json = string.Concat(events.Where(e => e.Event == "content_block_delta").Select(e => (string)e.Json["delta"]!["partial_json"]!));
        SchemaAssert.Valid(schema, json);
        Assert.Equal("tool_use", (string)events[^2].Json["delta"]!["stop_reason"]!);
    }

    [Fact]
    public async Task Post_ForcedToolNonStreaming_ReturnsToolUseBlock()
    {
        var schema = JsonNode.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""")!;
        var body = Message();
        body["tools"] = new JsonArray(new JsonObject { ["name"] = "weather", ["input_schema"] = schema.DeepClone() });
        body["tool_choice"] = new JsonObject { ["type"] = "any" };

        var result = await _sim.PostJsonAsync("/v1/messages", body);

        var block = result["content"]![0]!;
        Assert.Equal("tool_use", (string)block["type"]!);
        Assert.StartsWith("toolu_", (string)block["id"]!, StringComparison.Ordinal);
        SchemaAssert.Valid(schema, block["input"]!.ToJsonString());
        Assert.Equal("tool_use", (string)result["stop_reason"]!);
    }

    [Fact]
    public async Task Post_OutputFormatSchema_ReturnsValidJsonText()
    {
        var schema = SchemaAssert.Complex();
        var body = Message();
        body["output_format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = schema.DeepClone() };

        var result = await _sim.PostJsonAsync("/v1/messages", body);

        SchemaAssert.Valid(schema, (string)result["content"]![0]!["text"]!);
    }

    [Fact]
    public async Task Post_MissingMaxTokens_Returns400InAnthropicEnvelope()
    {
        var body = Message();
        body.Remove("max_tokens");

        using var response = await _sim.PostAsync("/v1/messages", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("error", (string)error["type"]!);
        Assert.Equal("invalid_request_error", (string)error["error"]!["type"]!);
        Assert.Contains("max_tokens", (string)error["error"]!["message"]!, StringComparison.Ordinal);
    }
}
