using System.Text;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class ResponsesTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Fact]
    public async Task Post_NonStreaming_ReturnsResponseObjectWithUsage()
    {
        var result = await _sim.PostJsonAsync("/v1/responses", new JsonObject { ["model"] = "gpt-4.1", ["input"] = "Tell me a story", ["instructions"] = "Be brief." });

        Assert.StartsWith("resp_", (string)result["id"]!, StringComparison.Ordinal);
        Assert.Equal("response", (string)result["object"]!);
        Assert.Equal("completed", (string)result["status"]!);
        var message = result["output"]![0]!;
        Assert.Equal("message", (string)message["type"]!);
        Assert.Equal("assistant", (string)message["role"]!);
        var part = message["content"]![0]!;
        Assert.Equal("output_text", (string)part["type"]!);
        Assert.Empty(part["annotations"]!.AsArray());
        var usage = result["usage"]!;
        Assert.Equal(Tokens.O200k((string)part["text"]!), (int)usage["output_tokens"]!);
        Assert.Equal(24, (int)usage["output_tokens"]!);
        var expectedInput = 3 + Tokens.O200k("system") + Tokens.O200k("Be brief.") + 3 + Tokens.O200k("user") + Tokens.O200k("Tell me a story") + 3;
        Assert.Equal(expectedInput, (int)usage["input_tokens"]!);
        Assert.Equal(0, (int)usage["input_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(0, (int)usage["output_tokens_details"]!["reasoning_tokens"]!);
        Assert.Equal(expectedInput + 24, (int)usage["total_tokens"]!);
    }

    [Fact]
    public async Task Post_Streaming_EmitsTypedEventsInOrderWithSequenceNumbers()
    {
        var events = await _sim.PostSseAsync("/v1/responses", new JsonObject { ["model"] = "gpt-4o", ["input"] = "hi", ["stream"] = true });

        var types = events.Select(e => e.Event).ToList();
        Assert.Equal(
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"],
            types.Take(4));
        Assert.Equal(
            ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"],
            types.TakeLast(4));
        Assert.All(types.Skip(4).SkipLast(4), t => Assert.Equal("response.output_text.delta", t));
        for (var i = 0; i < events.Count; i++)
        {
            Assert.Equal(events[i].Event, (string)events[i].Json["type"]!);
            Assert.Equal(i, (int)events[i].Json["sequence_number"]!);
        }

        var text = new StringBuilder();
        foreach (var e in events.Where(e => e.Event == "response.output_text.delta"))
        {
            text.Append((string)e.Json["delta"]!);
        }

        var done = events.Single(e => e.Event == "response.output_text.done").Json;
        Assert.Equal(text.ToString(), (string)done["text"]!);
        var completed = events[^1].Json["response"]!;
        Assert.Equal("completed", (string)completed["status"]!);
        Assert.Equal(Tokens.O200k(text.ToString()), (int)completed["usage"]!["output_tokens"]!);
        Assert.Null(events[0].Json["response"]!["usage"]);
    }

    [Fact]
    public async Task Post_MaxOutputTokens_ReturnsIncomplete()
    {
        var result = await _sim.PostJsonAsync("/v1/responses", new JsonObject { ["model"] = "gpt-4o", ["input"] = "hi", ["max_output_tokens"] = 4 });

        Assert.Equal("incomplete", (string)result["status"]!);
        Assert.Equal("max_output_tokens", (string)result["incomplete_details"]!["reason"]!);
        Assert.Equal(4, (int)result["usage"]!["output_tokens"]!);
    }

    [Fact]
    public async Task Post_ReasoningModel_AddsReasoningItemAndTokens()
    {
        var result = await _sim.PostJsonAsync("/v1/responses", new JsonObject
        {
            ["model"] = "o3",
            ["input"] = "hi",
            ["reasoning"] = new JsonObject { ["effort"] = "low" },
        });

        Assert.Equal("reasoning", (string)result["output"]![0]!["type"]!);
        Assert.Equal(32, (int)result["usage"]!["output_tokens_details"]!["reasoning_tokens"]!);
        Assert.Equal(32 + 24, (int)result["usage"]!["output_tokens"]!);
    }

    [Fact]
    public async Task Post_JsonSchemaTextFormat_ReturnsValidInstance()
    {
        var schema = SchemaAssert.Complex();
        var result = await _sim.PostJsonAsync("/v1/responses", new JsonObject
        {
            ["model"] = "gpt-4o",
            ["input"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Make a person" }),
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "person", ["strict"] = true, ["schema"] = schema.DeepClone() } },
        });

        SchemaAssert.Valid(schema, (string)result["output"]![0]!["content"]![0]!["text"]!);
    }

    [Fact]
    public async Task Post_ForcedFunctionStreaming_StreamsFunctionCallArguments()
    {
        var parameters = JsonNode.Parse("""{"type":"object","properties":{"q":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":5}},"required":["q","limit"]}""")!;
        var events = await _sim.PostSseAsync("/v1/responses", new JsonObject
        {
            ["model"] = "gpt-4o",
            ["input"] = "search",
            ["stream"] = true,
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "search", ["parameters"] = parameters.DeepClone() }),
            ["tool_choice"] = new JsonObject { ["type"] = "function", ["name"] = "search" },
        });

        var args = string.Concat(events.Where(e => e.Event == "response.function_call_arguments.delta").Select(e => (string)e.Json["delta"]!));
        SchemaAssert.Valid(parameters, args);
        var item = events.Single(e => e.Event == "response.output_item.done").Json["item"]!;
        Assert.Equal("function_call", (string)item["type"]!);
        Assert.Equal(args, (string)item["arguments"]!);
    }
}
