using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class ChatCompletionsTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync();

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat(string model = "gpt-4o-mini", string content = "hello", bool stream = false) => new()
    {
        ["model"] = model,
        ["stream"] = stream,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    };

    [Fact]
    public async Task Post_NonStreaming_ReturnsCompletionWithExactUsage()
    {
        var result = await _sim.PostJsonAsync("/v1/chat/completions", Chat());

        Assert.Equal("chat.completion", (string)result["object"]!);
        Assert.StartsWith("chatcmpl-", (string)result["id"]!, StringComparison.Ordinal);
        var choice = result["choices"]![0]!;
        Assert.Equal("stop", (string)choice["finish_reason"]!);
        Assert.Equal("assistant", (string)choice["message"]!["role"]!);
        var content = (string)choice["message"]!["content"]!;
        var usage = result["usage"]!;
        Assert.Equal(24, (int)usage["completion_tokens"]!);
        Assert.Equal(Tokens.O200k(content), (int)usage["completion_tokens"]!);
        Assert.Equal(8, (int)usage["prompt_tokens"]!); // 3 + "user" + "hello" + 3, as OpenAI bills it
        Assert.Equal(32, (int)usage["total_tokens"]!);
        Assert.Equal(0, (int)usage["prompt_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(0, (int)usage["completion_tokens_details"]!["reasoning_tokens"]!);
    }

    [Fact]
    public async Task Post_PromptWithNamesAndSystem_CountsCookbookOverhead()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "You are terse." },
                new JsonObject { ["role"] = "user", ["name"] = "alice", ["content"] = "Summarise the plan." }),
        };

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        var expected = 3 + Tokens.Cl100k("system") + Tokens.Cl100k("You are terse.") +
            3 + Tokens.Cl100k("user") + Tokens.Cl100k("alice") + 1 + Tokens.Cl100k("Summarise the plan.") + 3;
        Assert.Equal(expected, (int)result["usage"]!["prompt_tokens"]!);
        Assert.Equal(Tokens.Cl100k((string)result["choices"]![0]!["message"]!["content"]!), (int)result["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_ToolsSchemaAndParts_PromptTokensEqualGatewayPreflightCount()
    {
        var body = JsonNode.Parse("""
            {
              "model": "gpt-4.1",
              "messages": [
                {"role": "developer", "content": "Answer with the tool."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}
              ],
              "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}}}
            }
            """)!.AsObject();

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        Assert.Equal(Tokens.Prompt(TokenGateway.Core.Dialects.LlmDialect.OpenAIChat, body, "o200k_base"), (int)result["usage"]!["prompt_tokens"]!);
    }

    [Fact]
    public async Task Post_SameBodyTwice_ReturnsSameText()
    {
        var a = await _sim.PostJsonAsync("/v1/chat/completions", Chat(content: "determinism"));
        var b = await _sim.PostJsonAsync("/v1/chat/completions", Chat(content: "determinism"));
        var c = await _sim.PostJsonAsync("/v1/chat/completions", Chat(content: "something else"));

        Assert.Equal((string)a["choices"]![0]!["message"]!["content"]!, (string)b["choices"]![0]!["message"]!["content"]!);
        Assert.NotEqual((string)a["choices"]![0]!["message"]!["content"]!, (string)c["choices"]![0]!["message"]!["content"]!);
    }

    [Theory]
    [InlineData("gpt-4o", 1)]
    [InlineData("gpt-4o", 7)]
    [InlineData("gpt-4.1-mini", 333)]
    [InlineData("gpt-4", 50)]
    [InlineData("gpt-3.5-turbo", 1000)]
    public async Task Post_OutputTokensFault_AnswersWithExactlyThatManyTokens(string model, int tokens)
    {
        var result = await _sim.PostJsonAsync("/v1/chat/completions", Chat(model), $"output-tokens={tokens}");

        var content = (string)result["choices"]![0]!["message"]!["content"]!;
        var count = model == "gpt-4" || model.StartsWith("gpt-3.5", StringComparison.Ordinal) ? Tokens.Cl100k(content) : Tokens.O200k(content);
        Assert.Equal(tokens, count);
        Assert.Equal(tokens, (int)result["usage"]!["completion_tokens"]!);
        Assert.Equal("stop", (string)result["choices"]![0]!["finish_reason"]!);
    }

    [Theory]
    [InlineData("max_tokens")]
    [InlineData("max_completion_tokens")]
    public async Task Post_MaxTokensBelowAnswer_TruncatesWithFinishLength(string field)
    {
        var body = Chat();
        body[field] = 5;

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body, "output-tokens=40");

        var content = (string)result["choices"]![0]!["message"]!["content"]!;
        Assert.Equal(5, Tokens.O200k(content));
        Assert.Equal(5, (int)result["usage"]!["completion_tokens"]!);
        Assert.Equal("length", (string)result["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task Post_ReasoningModel_ReportsReasoningTokensInsideCompletionTokens()
    {
        var result = await _sim.PostJsonAsync("/v1/chat/completions", Chat("o4-mini"));

        var usage = result["usage"]!;
        var reasoning = (int)usage["completion_tokens_details"]!["reasoning_tokens"]!;
        Assert.Equal(64, reasoning);
        var visible = Tokens.O200k((string)result["choices"]![0]!["message"]!["content"]!);
        Assert.Equal(visible + reasoning, (int)usage["completion_tokens"]!);

        var high = Chat("gpt-5");
        high["reasoning_effort"] = "high";
        var highResult = await _sim.PostJsonAsync("/v1/chat/completions", high);
        Assert.Equal(128, (int)highResult["usage"]!["completion_tokens_details"]!["reasoning_tokens"]!);
    }

    [Fact]
    public async Task Post_N3_ThreeChoicesAndUsageCountsEveryChoice()
    {
        var body = Chat();
        body["n"] = 3;
        body["max_tokens"] = 10;

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        var choices = result["choices"]!.AsArray();
        Assert.Equal([0, 1, 2], choices.Select(c => (int)c!["index"]!));
        var texts = choices.Select(c => (string)c!["message"]!["content"]!).ToList();
        Assert.All(texts, t => Assert.Equal(10, Tokens.O200k(t)));
        Assert.All(choices, c => Assert.Equal("length", (string)c!["finish_reason"]!));
        Assert.True(texts.Distinct().Count() > 1, "choices should differ like real samples");
        Assert.Equal(texts.Sum(Tokens.O200k), (int)result["usage"]!["completion_tokens"]!);
        Assert.Equal(30, (int)result["usage"]!["completion_tokens"]!);
        Assert.Equal(8, (int)result["usage"]!["prompt_tokens"]!); // the prompt is billed once
    }

    [Fact]
    public async Task Post_N1_OneChoice()
    {
        var body = Chat(content: "one");
        body["n"] = 1;

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        var choice = Assert.Single(result["choices"]!.AsArray())!;
        Assert.Equal(Tokens.O200k((string)choice["message"]!["content"]!), (int)result["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_StreamingN2_ChunksCarryTheirChoiceIndexAndUsageSumsBoth()
    {
        var body = Chat(stream: true);
        body["n"] = 2;
        body["max_tokens"] = 7;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        var events = await _sim.PostSseAsync("/v1/chat/completions", body);

        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.Take(events.Count - 1).Select(e => e.Json).ToList();
        var texts = new[] { new StringBuilder(), new StringBuilder() };
        var finishes = new string?[2];
        foreach (var chunk in chunks.SkipLast(1))
        {
            var choice = Assert.Single(chunk["choices"]!.AsArray())!;
            var index = (int)choice["index"]!;
            texts[index].Append((string?)choice["delta"]!["content"]);
            finishes[index] ??= (string?)choice["finish_reason"];
        }

        Assert.Equal(new string?[] { "length", "length" }, finishes.AsEnumerable());
        Assert.All(texts, t => Assert.Equal(7, Tokens.O200k(t.ToString())));
        Assert.Equal(14, (int)chunks[^1]["usage"]!["completion_tokens"]!);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("129")]
    [InlineData("\"two\"")]
    public async Task Post_InvalidN_400NamingN(string n)
    {
        var body = $$"""{"model":"gpt-4o-mini","n":{{n}},"messages":[{"role":"user","content":"x"}]}""";

        using var response = await _sim.PostAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("\"n\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_Streaming_EmitsRoleDeltasFinishUsageAndDone()
    {
        var body = Chat(stream: true);
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        var events = await _sim.PostSseAsync("/v1/chat/completions", body);

        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.Take(events.Count - 1).Select(e => e.Json).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", (string)c["object"]!));
        Assert.Equal("assistant", (string)chunks[0]["choices"]![0]!["delta"]!["role"]!);
        var usageChunk = chunks[^1];
        Assert.Empty(usageChunk["choices"]!.AsArray());
        var finishChunk = chunks[^2];
        Assert.Equal("stop", (string)finishChunk["choices"]![0]!["finish_reason"]!);
        var text = new StringBuilder();
        foreach (var chunk in chunks.Skip(1).SkipLast(2))
        {
            text.Append((string)chunk["choices"]![0]!["delta"]!["content"]!);
        }

        Assert.Equal(24, chunks.Count - 3); // one token per content chunk
        Assert.Equal(Tokens.O200k(text.ToString()), (int)usageChunk["usage"]!["completion_tokens"]!);
        Assert.Equal(8, (int)usageChunk["usage"]!["prompt_tokens"]!);
        Assert.Equal(24, (int)usageChunk["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_StreamingWithoutIncludeUsage_SendsNoUsageChunk()
    {
        var events = await _sim.PostSseAsync("/v1/chat/completions", Chat(stream: true));

        Assert.Equal("[DONE]", events[^1].Data);
        Assert.All(events.SkipLast(1), e => Assert.False(e.Json.ContainsKey("usage")));
        Assert.Equal("stop", (string)events[^2].Json["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task Post_StreamingWithMaxTokens_FinishesWithLength()
    {
        var body = Chat(stream: true);
        body["max_tokens"] = 3;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        var events = await _sim.PostSseAsync("/v1/chat/completions", body);

        Assert.Equal("length", (string)events[^3].Json["choices"]![0]!["finish_reason"]!);
        Assert.Equal(3, (int)events[^2].Json["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_ForcedFunctionStreaming_StreamsArgumentsThatSatisfyTheSchema()
    {
        var parameters = SchemaAssert.Complex();
        var body = Chat(stream: true);
        body["tools"] = new JsonArray(new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = "save_person", ["description"] = "Save a person", ["parameters"] = parameters.DeepClone() },
        });
        body["tool_choice"] = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "save_person" } };
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        var events = await _sim.PostSseAsync("/v1/chat/completions", body);

        var first = events[0].Json["choices"]![0]!["delta"]!["tool_calls"]![0]!;
        Assert.Equal("save_person", (string)first["function"]!["name"]!);
        Assert.StartsWith("call_", (string)first["id"]!, StringComparison.Ordinal);
        var args = new StringBuilder();
        foreach (var e in events.Skip(1).SkipLast(3))
        {
            args.Append((string)e.Json["choices"]![0]!["delta"]!["tool_calls"]![0]!["function"]!["arguments"]!);
        }

        SchemaAssert.Valid(parameters, args.ToString());
        Assert.Equal(Tokens.O200k(args.ToString()), (int)events[^2].Json["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_ToolChoiceRequired_ReturnsToolCallsMessage()
    {
        var body = Chat();
        body["tools"] = new JsonArray(new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = "get_weather",
                ["parameters"] = JsonNode.Parse("""{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"]}"""),
            },
        });
        body["tool_choice"] = "required";

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        var choice = result["choices"]![0]!;
        Assert.Equal("tool_calls", (string)choice["finish_reason"]!);
        Assert.Null(choice["message"]!["content"]);
        var call = choice["message"]!["tool_calls"]![0]!;
        Assert.Equal("get_weather", (string)call["function"]!["name"]!);
        var args = JsonNode.Parse((string)call["function"]!["arguments"]!)!;
        Assert.Equal("c", (string)args["unit"]!);
    }

    [Fact]
    public async Task Post_JsonSchemaResponseFormat_ReturnsValidInstance()
    {
        var schema = SchemaAssert.Complex();
        var body = Chat();
        body["response_format"] = new JsonObject
        {
            ["type"] = "json_schema",
            ["json_schema"] = new JsonObject { ["name"] = "person", ["strict"] = true, ["schema"] = schema.DeepClone() },
        };

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        var content = (string)result["choices"]![0]!["message"]!["content"]!;
        SchemaAssert.Valid(schema, content);
        Assert.Equal(Tokens.O200k(content), (int)result["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_JsonObjectResponseFormat_ReturnsJsonObject()
    {
        var body = Chat();
        body["response_format"] = new JsonObject { ["type"] = "json_object" };

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body);

        Assert.IsType<JsonObject>(JsonNode.Parse((string)result["choices"]![0]!["message"]!["content"]!));
    }

    [Fact]
    public async Task Post_InvalidJsonFault_BreaksFirstAnswerAndRepairsWhenAssistantTurnPresent()
    {
        var schema = SchemaAssert.Complex();
        var body = Chat();
        body["response_format"] = new JsonObject
        {
            ["type"] = "json_schema",
            ["json_schema"] = new JsonObject { ["name"] = "person", ["strict"] = true, ["schema"] = schema.DeepClone() },
        };

        var first = await _sim.PostJsonAsync("/v1/chat/completions", body, "invalid-json");
        var bad = (string)first["choices"]![0]!["message"]!["content"]!;
        SchemaAssert.Invalid(schema, bad);

        var repair = body.DeepClone().AsObject();
        repair["messages"]!.AsArray().Add(new JsonObject { ["role"] = "assistant", ["content"] = bad });
        repair["messages"]!.AsArray().Add(new JsonObject { ["role"] = "user", ["content"] = "That did not match the schema; fix it." });
        var second = await _sim.PostJsonAsync("/v1/chat/completions", repair, "invalid-json");
        SchemaAssert.Valid(schema, (string)second["choices"]![0]!["message"]!["content"]!);

        var always = await _sim.PostJsonAsync("/v1/chat/completions", repair, "invalid-json=always");
        SchemaAssert.Invalid(schema, (string)always["choices"]![0]!["message"]!["content"]!);
    }

    [Fact]
    public async Task Post_FencedJsonFault_WrapsValidJsonInProseAndFence()
    {
        var schema = JsonNode.Parse("""{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}""")!;
        var body = Chat();
        body["response_format"] = new JsonObject
        {
            ["type"] = "json_schema",
            ["json_schema"] = new JsonObject { ["name"] = "a", ["schema"] = schema.DeepClone() },
        };

        var result = await _sim.PostJsonAsync("/v1/chat/completions", body, "fenced-json");

        var content = (string)result["choices"]![0]!["message"]!["content"]!;
        var start = content.IndexOf("```json\n", StringComparison.Ordinal);
        var end = content.LastIndexOf("\n```", StringComparison.Ordinal);
        Assert.True(start > 0, content);
        Assert.True(end > start, content);
        Assert.False(content.EndsWith("```", StringComparison.Ordinal), "prose after the fence");
        SchemaAssert.Valid(schema, content[(start + 8)..end]);
        Assert.Equal(Tokens.O200k(content), (int)result["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Post_AzureDeployment_UsesDeploymentAsModel()
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }) };

        var result = await _sim.PostJsonAsync("/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", body);

        Assert.Equal("gpt-4o-prod", (string)result["model"]!);
        Assert.Equal(24, (int)result["usage"]!["completion_tokens"]!);
        Assert.EndsWith("?api-version=2024-10-21", _sim.Recorder.Last()!.PathAndQuery, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model")]
    [InlineData("""{"model":"gpt-4o"}""", "messages")]
    [InlineData("""{"model":"gpt-4o","messages":[]}""", "messages")]
    public async Task Post_InvalidBody_Returns400InOpenAIEnvelope(string body, string param)
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("invalid_request_error", (string)error["type"]!);
        Assert.Equal(param, (string)error["param"]!);
        Assert.NotNull(error["message"]);
    }

    [Fact]
    public async Task Post_NotJson_Returns400()
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", "{not json");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("\"error\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
