using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class StreamTranslatorTests
{
    private static byte[] Translate(SseEventTranslator sut, byte[] input, int chunk = int.MaxValue)
    {
        var output = new ArrayBufferWriter<byte>();
        for (var i = 0; i < input.Length; i += chunk)
        {
            sut.Process(input.AsSpan(i, Math.Min(chunk, input.Length - i)), output);
        }

        sut.Complete(output);
        return output.WrittenSpan.ToArray();
    }

    private static SseStreamMeter Meter(LlmDialect dialect, byte[] stream)
    {
        var meter = new SseStreamMeter(dialect, suppressUsageOnlyChunk: false);
        var sink = new ArrayBufferWriter<byte>();
        meter.Process(stream, sink);
        meter.Complete(sink);
        Assert.Equal(stream, sink.WrittenSpan.ToArray()); // the meter passes everything through: the stream is well-framed
        return meter;
    }

    private static List<(string? Event, string Data)> Events(byte[] stream)
    {
        var events = new List<(string?, string)>();
        foreach (var block in Encoding.UTF8.GetString(stream).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            string data = string.Empty;
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line["event: ".Length..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data = line["data: ".Length..];
                }
            }

            events.Add((name, data));
        }

        return events;
    }

    [Theory]
    [InlineData("anthropic-messages-stream.sse")]
    [InlineData("anthropic-messages-stream-tool.sse")]
    public void AnthropicToChat_GoldenStream_OpenAIMeterSeesSameUsageAndText(string fixture)
    {
        var input = FixtureFiles.Read(fixture);
        var original = Meter(LlmDialect.AnthropicMessages, input);

        var translated = Translate(new AnthropicToChatStreamTranslator(includeUsage: true, created: 1), input);

        var meter = Meter(LlmDialect.OpenAIChat, translated);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal(Encoding.UTF8.GetString(original.DeliveredTextUtf8), Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
        var expected = original.Usage!.Value;
        var actual = meter.Usage!.Value;
        Assert.Equal(expected.InputTokens, actual.InputTokens);
        Assert.Equal(expected.OutputTokens, actual.OutputTokens);
        Assert.Equal(expected.CachedInputTokens, actual.CachedInputTokens);
    }

    [Fact]
    public void AnthropicToChat_ToolStream_ChunksAreWhatOpenAIClientsExpect()
    {
        var translated = Translate(new AnthropicToChatStreamTranslator(includeUsage: true, created: 1749213600), FixtureFiles.Read("anthropic-messages-stream-tool.sse"));

        var events = Events(translated);
        Assert.All(events, e => Assert.Null(e.Event));
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => JsonNode.Parse(e.Data)!).ToList();
        Assert.All(chunks, c =>
        {
            Assert.Equal("chat.completion.chunk", (string)c["object"]!);
            Assert.Equal("msg_014p7gG3wDgGV9EUtLvnow3U", (string)c["id"]!);
            Assert.Equal("claude-sonnet-4-5-20250929", (string)c["model"]!);
            Assert.Equal(1749213600, (long)c["created"]!);
        });
        Assert.Equal("assistant", (string)chunks[0]["choices"]![0]!["delta"]!["role"]!);
        var deltas = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => c["choices"]![0]!["delta"]!).ToList();
        var toolStart = deltas.Single(d => d["tool_calls"]?[0]?["id"] is not null)["tool_calls"]![0]!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":""}}
            """), toolStart));
        var arguments = string.Concat(deltas.Select(d => (string?)d["tool_calls"]?[0]?["function"]?["arguments"]));
        Assert.Equal("{\"location\": \"San Francisco, CA\"}", arguments);
        Assert.Equal("tool_calls", (string)chunks[^2]["choices"]![0]!["finish_reason"]!);
        Assert.Empty(chunks[^1]["choices"]!.AsArray());
        Assert.Equal(472 + 2048, (int)chunks[^1]["usage"]!["prompt_tokens"]!);
        Assert.Equal(89, (int)chunks[^1]["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public void AnthropicToChat_WithoutIncludeUsage_SendsNoUsageChunk()
    {
        var translated = Translate(new AnthropicToChatStreamTranslator(includeUsage: false, created: 1), FixtureFiles.Read("anthropic-messages-stream.sse"));

        var text = Encoding.UTF8.GetString(translated);
        Assert.DoesNotContain("\"usage\"", text, StringComparison.Ordinal);
        Assert.EndsWith("\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void AnthropicToChat_CutStream_InventsNoEnd()
    {
        var input = FixtureFiles.Read("anthropic-messages-stream.sse");
        var cut = input.AsSpan(0, Encoding.UTF8.GetString(input).IndexOf("event: message_delta", StringComparison.Ordinal)).ToArray();
        var sut = new AnthropicToChatStreamTranslator(includeUsage: true, created: 1);

        var translated = Translate(sut, cut);

        Assert.False(sut.Completed);
        Assert.DoesNotContain("[DONE]", Encoding.UTF8.GetString(translated), StringComparison.Ordinal);
    }

    [Fact]
    public void AnthropicToChat_ErrorEvent_BecomesOpenAIErrorChunk()
    {
        var input = Encoding.UTF8.GetBytes("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");

        var translated = Encoding.UTF8.GetString(Translate(new AnthropicToChatStreamTranslator(true, 1), input));

        Assert.Equal("data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":\"overloaded_error\"}}\n\n", translated);
    }

    [Theory]
    [InlineData("openai-chat-stream.sse")]
    [InlineData("openai-chat-stream-tools.sse")]
    public void ChatToAnthropic_GoldenStream_AnthropicMeterSeesSameUsageAndText(string fixture)
    {
        var input = FixtureFiles.Read(fixture);
        var original = Meter(LlmDialect.OpenAIChat, input);

        var translated = Translate(new ChatToAnthropicStreamTranslator(), input);

        var meter = Meter(LlmDialect.AnthropicMessages, translated);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal(Encoding.UTF8.GetString(original.DeliveredTextUtf8), Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
        Assert.Equal(original.Usage, meter.Usage);
    }

    [Fact]
    public void ChatToAnthropic_ToolStream_EventsAreWhatAnthropicClientsExpect()
    {
        var translated = Translate(new ChatToAnthropicStreamTranslator(), FixtureFiles.Read("openai-chat-stream-tools.sse"));

        var events = Events(translated);
        Assert.Equal(
            ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
             "content_block_stop", "message_delta", "message_stop"],
            events.Select(e => e.Event));
        Assert.All(events, e => Assert.Equal(e.Event, (string)JsonNode.Parse(e.Data)!["type"]!));
        var start = JsonNode.Parse(events[1].Data)!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","name":"get_weather","input":{},"caller":{"type":"direct"}}}
            """), start));
        var json = string.Concat(events.Where(e => e.Event == "content_block_delta").Select(e => (string)JsonNode.Parse(e.Data)!["delta"]!["partial_json"]!));
        Assert.Equal("{\"location\":\"Paris, France\"}", json);
        var delta = JsonNode.Parse(events[^2].Data)!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},
             "usage":{"input_tokens":81,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":16}}
            """), delta));
        var message = JsonNode.Parse(events[0].Data)!["message"]!;
        Assert.Equal("chatcmpl-BfS7ToolCallStreamExample01", (string)message["id"]!);
        Assert.Equal("gpt-4.1-2025-04-14", (string)message["model"]!);
    }

    [Fact]
    public void ChatToAnthropic_TextThenParallelTools_OpensOneBlockEach()
    {
        var input = Encoding.UTF8.GetBytes(string.Concat(
            Chunk("""{"role":"assistant","content":"Let me look."}"""),
            Chunk("""{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"x\":"}},{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":""}}]}"""),
            Chunk("""{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}"""),
            Chunk("""{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"""),
            Chunk("{}", "\"tool_calls\""),
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n",
            "data: [DONE]\n\n"));

        var events = Events(Translate(new ChatToAnthropicStreamTranslator(), input)).Select(e => JsonNode.Parse(e.Data)!).ToList();

        var starts = events.Where(e => (string)e["type"]! == "content_block_start").Select(e => ((int)e["index"]!, (string)e["content_block"]!["type"]!)).ToList();
        Assert.Equal([(0, "text"), (1, "tool_use"), (2, "tool_use")], starts);
        var fragments = events.Where(e => (string?)e["delta"]?["type"] == "input_json_delta").Select(e => ((int)e["index"]!, (string)e["delta"]!["partial_json"]!)).ToList();
        Assert.Equal([(1, "{\"x\":"), (1, "1}"), (2, "{}")], fragments);
        Assert.Equal("message_stop", (string)events[^1]["type"]!);
    }

    [Fact]
    public void ChatToAnthropic_ErrorChunk_BecomesErrorEvent()
    {
        var input = Encoding.UTF8.GetBytes(Chunk("""{"role":"assistant","content":"Hi"}""") + "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n");

        var events = Events(Translate(new ChatToAnthropicStreamTranslator(), input));

        Assert.Equal("error", events[^1].Event);
        Assert.Equal("{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The server had an error\"}}", events[^1].Data);
    }

    [Theory]
    [InlineData("anthropic-messages-stream.sse", true)]
    [InlineData("anthropic-messages-stream-tool.sse", true)]
    [InlineData("openai-chat-stream.sse", false)]
    [InlineData("openai-chat-stream-tools.sse", false)]
    public void Translate_AnySplitAndLineEnding_SameOutput(string fixture, bool fromAnthropic)
    {
        var lf = FixtureFiles.Read(fixture);
        var crlf = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(lf).Replace("\n", "\r\n", StringComparison.Ordinal));
        SseEventTranslator Create() => fromAnthropic ? new AnthropicToChatStreamTranslator(true, 1) : new ChatToAnthropicStreamTranslator();
        var expected = Translate(Create(), lf);

        Gen.Select(Gen.Int[1, 64], Gen.Bool).Sample((chunk, useCrlf) =>
            Translate(Create(), useCrlf ? crlf : lf, chunk).AsSpan().SequenceEqual(expected), iter: 200);
    }

    [Theory]
    [InlineData("anthropic-messages-stream.sse", true)]
    [InlineData("openai-chat-stream.sse", false)]
    public void Translate_KeepAlivesAndComments_AddNothing(string fixture, bool fromAnthropic)
    {
        var clean = FixtureFiles.Read(fixture);
        var noisy = Encoding.UTF8.GetBytes("\n\n: keep-alive\n\n" + Encoding.UTF8.GetString(clean).Replace("\n\n", "\n\n\n: ping\n\n", StringComparison.Ordinal));
        SseEventTranslator Create() => fromAnthropic ? new AnthropicToChatStreamTranslator(true, 1) : new ChatToAnthropicStreamTranslator();

        Assert.Equal(Translate(Create(), clean), Translate(Create(), noisy, chunk: 5));
    }

    [Fact]
    public void Translate_EscapedText_PassesThroughWithoutReescaping()
    {
        var input = Encoding.UTF8.GetBytes(string.Concat(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"b\\u2014\\n\"}}\n\n"));

        var text = Encoding.UTF8.GetString(Translate(new AnthropicToChatStreamTranslator(false, 1), input));

        Assert.Contains("\"content\":\"a\\\"b\\u2014\\n\"", text, StringComparison.Ordinal);
        Assert.Equal("a\"b\u2014\n", (string)JsonNode.Parse(Events(Encoding.UTF8.GetBytes(text))[1].Data)!["choices"]![0]!["delta"]!["content"]!);
    }

    [Fact]
    public void AnthropicToChat_TextBlockStartingWithText_KeepsThatText()
    {
        var input = Encoding.UTF8.GetBytes(string.Concat(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Hello\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n"));

        var translated = Translate(new AnthropicToChatStreamTranslator(false, 1), input);

        var content = Events(translated).Skip(1).Select(e => (string)JsonNode.Parse(e.Data)!["choices"]![0]!["delta"]!["content"]!);
        Assert.Equal("Hello world", string.Concat(content));
    }

    [Theory]
    [InlineData("anthropic-messages-stream-tool.sse", true)]
    [InlineData("openai-chat-stream-tools.sse", false)]
    public void Translate_WarmStream_AllocatesLittlePerEvent(string fixture, bool fromAnthropic)
    {
        var input = FixtureFiles.Read(fixture);
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        SseEventTranslator Create() => fromAnthropic ? new AnthropicToChatStreamTranslator(true, 1) : new ChatToAnthropicStreamTranslator();
        using (var warm = Create())
        {
            warm.Process(input, output); // JIT and pool warm-up
            warm.Complete(output);
        }

        output.ResetWrittenCount();
        var before = GC.GetAllocatedBytesForCurrentThread();
        using (var sut = Create())
        {
            sut.Process(input, output);
            sut.Complete(output);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The translator, its reused JSON writer and a few per-stream strings (id, model, stop reason); nothing per
        // text delta. Measured: 568 bytes (Anthropic → chat, 11 events) and 408 bytes (chat → Anthropic, 9 chunks) per stream.
        Assert.True(allocated < 3 * 1024, $"{allocated} bytes allocated for one stream of {input.Length} bytes");
    }

    private static string Chunk(string delta, string finish = "null") =>
        $"data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n";
}
