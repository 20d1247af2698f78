using System.Buffers;
using System.Text;
using System.Text.Json;
using TokenGateway.Core.Resilience;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class AnthropicStreamSplicerTests
{
    private static bool Feed(AnthropicStreamSplicer sut, string name, string json, ArrayBufferWriter<byte> output)
    {
        var data = Encoding.UTF8.GetBytes(json);
        var raw = Encoding.UTF8.GetBytes($"event: {name}\ndata: {json}\n\n");
        var forwarded = sut.OnEvent(new SseEvent(raw, Encoding.UTF8.GetBytes(name), data, 1), output);
        if (forwarded)
        {
            output.Write(raw);
        }

        return forwarded;
    }

    private static List<JsonElement> Events(ArrayBufferWriter<byte> output) =>
        Encoding.UTF8.GetString(output.WrittenSpan).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => JsonDocument.Parse(e[(e.IndexOf("data: ", StringComparison.Ordinal) + 6)..]).RootElement.Clone())
            .ToList();

    private static void FirstAttempt(AnthropicStreamSplicer sut, ArrayBufferWriter<byte> output, bool closeBlock)
    {
        Feed(sut, "message_start", """{"type":"message_start","message":{"id":"m1","usage":{"input_tokens":10,"output_tokens":1}}}""", output);
        Feed(sut, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""", output);
        Feed(sut, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello "}}""", output);
        Feed(sut, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"world"}}""", output);
        if (closeBlock)
        {
            Feed(sut, "content_block_stop", """{"type":"content_block_stop","index":0}""", output);
        }
    }

    private static void Continuation(AnthropicStreamSplicer sut, ArrayBufferWriter<byte> output)
    {
        Assert.False(Feed(sut, "message_start", """{"type":"message_start","message":{"id":"m2","usage":{"input_tokens":14,"output_tokens":1}}}""", output));
        Feed(sut, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""", output);
        Feed(sut, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" again"}}""", output);
        Feed(sut, "content_block_stop", """{"type":"content_block_stop","index":0}""", output);
        Feed(sut, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}""", output);
        Assert.True(Feed(sut, "message_stop", """{"type":"message_stop"}""", output));
    }

    [Fact]
    public void OnEvent_CutInsideATextBlock_ContinuationMergesIntoTheOpenBlockAndUsageAddsUp()
    {
        var sut = new AnthropicStreamSplicer();
        var output = new ArrayBufferWriter<byte>();
        FirstAttempt(sut, output, closeBlock: false);
        Assert.True(sut.CanContinue);
        Assert.Equal("Hello world", sut.DeliveredText);

        sut.BeginContinuation(priorInputTokens: 10, priorOutputTokens: 2);
        Continuation(sut, output);

        var events = Events(output);
        var types = events.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal(["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"], types);
        Assert.All(events.Where(e => e.TryGetProperty("index", out _)), e => Assert.Equal(0, e.GetProperty("index").GetInt32()));
        var usage = events[6].GetProperty("usage");
        Assert.Equal(5, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(24, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal("Hello world again", sut.DeliveredText);
    }

    [Fact]
    public void OnEvent_CutAfterTheBlockClosed_ContinuationBlocksAreRenumberedAfterIt()
    {
        var sut = new AnthropicStreamSplicer();
        var output = new ArrayBufferWriter<byte>();
        FirstAttempt(sut, output, closeBlock: true);

        sut.BeginContinuation(10, 2);
        Continuation(sut, output);

        var starts = Events(output).Where(e => e.GetProperty("type").GetString() == "content_block_start").Select(e => e.GetProperty("index").GetInt32());
        Assert.Equal([0, 1], starts);
        Assert.Equal(2, sut.BlockCount);
    }

    [Fact]
    public void OnEvent_ToolUseDelivered_CannotContinue()
    {
        var sut = new AnthropicStreamSplicer();
        var output = new ArrayBufferWriter<byte>();
        Feed(sut, "message_start", """{"type":"message_start","message":{"id":"m1","usage":{"input_tokens":10,"output_tokens":1}}}""", output);
        Feed(sut, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}""", output);
        Feed(sut, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a"}}""", output);

        Assert.False(sut.CanContinue);
    }
}
