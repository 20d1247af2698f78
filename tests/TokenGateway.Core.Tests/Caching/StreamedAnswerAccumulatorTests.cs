using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Streaming;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.Caching;

public sealed class StreamedAnswerAccumulatorTests
{
    private const string ChatWithTools = """
        {"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
           "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                         {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
           "logprobs":null,"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}
        """;

    private const string Anthropic = """
        {"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
         "content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x","n":2}}],
         "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":11}}
        """;

    private const string Responses = """
        {"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"gpt-4o",
         "output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello there","annotations":[]}]}],
         "usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}
        """;

    [Theory]
    [InlineData(LlmDialect.OpenAIChat, ChatWithTools)]
    [InlineData(LlmDialect.AnthropicMessages, Anthropic)]
    [InlineData(LlmDialect.OpenAIResponses, Responses)]
    public void Build_ReplayedStream_RebuildsTheSameAnswer(LlmDialect dialect, string json)
    {
        var original = JsonNode.Parse(json)!.AsObject();

        var built = Accumulate(dialect, Replay(dialect, original));

        Assert.NotNull(built);
        Assert.True(JsonNode.DeepEquals(Normalize(original), Normalize(built)), built!.ToJsonString());
    }

    [Fact]
    public void Build_ChatStreamSplitIntoManyDeltas_ConcatenatesContentAndArguments()
    {
        var sse = string.Concat(
            Chunk("""{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}"""),
            Chunk("""{"index":0,"delta":{"content":"lo"},"finish_reason":null}"""),
            Chunk("""{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":null}"""),
            Chunk("""{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":null}"""),
            Chunk("""{"index":0,"delta":{},"finish_reason":"stop"}"""),
            "data: [DONE]\n\n");

        var built = Accumulate(LlmDialect.OpenAIChat, sse, new TokenUsage(3, 4))!;

        var message = built["choices"]![0]!["message"]!;
        Assert.Equal("Hello", message["content"]!.GetValue<string>());
        Assert.Equal("{\"a\":1}", message["tool_calls"]![0]!["function"]!["arguments"]!.GetValue<string>());
        Assert.Equal(4, built["usage"]!["completion_tokens"]!.GetValue<int>()); // the billed usage when the chunk was hidden
    }

    [Theory]
    [InlineData("length")]
    [InlineData("content_filter")]
    public void Build_TruncatedOrFilteredChat_IsNotStored(string finish)
    {
        var sse = Chunk("""{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}""")
            + Chunk("{\"index\":0,\"delta\":{},\"finish_reason\":\"" + finish + "\"}") + "data: [DONE]\n\n";

        Assert.Null(Accumulate(LlmDialect.OpenAIChat, sse, new TokenUsage(1, 1)));
    }

    [Fact]
    public void Build_ChatWithoutDone_IsNotStored()
    {
        var sse = Chunk("""{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":"stop"}""");

        Assert.Null(Accumulate(LlmDialect.OpenAIChat, sse, new TokenUsage(1, 1)));
    }

    [Fact]
    public void Build_AnthropicErrorEventOrMissingStop_IsNotStored()
    {
        var full = Replay(LlmDialect.AnthropicMessages, JsonNode.Parse(Anthropic)!.AsObject());
        var withError = full.Replace("event: message_stop", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\nevent: message_stop", StringComparison.Ordinal);
        var withoutStop = full[..full.IndexOf("event: message_stop", StringComparison.Ordinal)];

        Assert.Null(Accumulate(LlmDialect.AnthropicMessages, withError));
        Assert.Null(Accumulate(LlmDialect.AnthropicMessages, withoutStop));
    }

    [Fact]
    public void Build_AnthropicMaxTokens_IsNotStored()
    {
        var truncated = JsonNode.Parse(Anthropic)!.AsObject();
        truncated["stop_reason"] = "max_tokens";

        Assert.Null(Accumulate(LlmDialect.AnthropicMessages, Replay(LlmDialect.AnthropicMessages, truncated)));
    }

    [Fact]
    public void Build_ResponsesIncomplete_IsNotStored()
    {
        var sse = "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\"}}\n\n";

        Assert.Null(Accumulate(LlmDialect.OpenAIResponses, sse));
    }

    [Fact]
    public void OnEvent_StreamOverTheByteLimit_IsNotStored()
    {
        var sut = new StreamedAnswerAccumulator(LlmDialect.OpenAIChat, maxBytes: 64);
        Feed(sut, Replay(LlmDialect.OpenAIChat, JsonNode.Parse(ChatWithTools)!.AsObject()));

        Assert.True(sut.Failed);
        Assert.Null(sut.Build(new TokenUsage(1, 1)));
    }

    private static string Chunk(string choice) =>
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[" + choice + "]}\n\n";

    private static string Replay(LlmDialect dialect, JsonObject response)
    {
        var output = new ArrayBufferWriter<byte>();
        SseReplay.Write(dialect, response, includeUsage: true, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    private static JsonObject? Accumulate(LlmDialect dialect, string sse, TokenUsage? billed = null)
    {
        var sut = new StreamedAnswerAccumulator(dialect, maxBytes: 1 << 20);
        Feed(sut, sse);
        return sut.Build(billed);
    }

    private static void Feed(StreamedAnswerAccumulator sut, string sse)
    {
        using var framer = new SseEventFramer();
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);
        // Split at an odd size: framing must not matter.
        for (var i = 0; i < bytes.Length; i += 7)
        {
            framer.Process(bytes.AsSpan(i, Math.Min(7, bytes.Length - i)), output, new Handler(sut));
        }

        framer.Complete(output, new Handler(sut));
    }

    /// <summary>Drops fields that a replay legitimately adds or rewrites (null refusal/logprobs, sequence fields).</summary>
    private static JsonNode Normalize(JsonObject response)
    {
        var copy = response.DeepClone().AsObject();
        foreach (var choice in copy["choices"] as JsonArray ?? [])
        {
            choice!.AsObject().Remove("logprobs");
            choice["message"]!.AsObject().Remove("refusal");
        }

        return copy;
    }

    private sealed class Handler(StreamedAnswerAccumulator sut) : ISseEventHandler
    {
        public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
        {
            sut.OnEvent(sseEvent);
            return true;
        }
    }
}
