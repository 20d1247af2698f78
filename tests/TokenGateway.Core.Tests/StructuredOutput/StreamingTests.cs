using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class StreamingTests
{
    private static CompiledSchema Person()
    {
        CompiledSchema.TryCompile(JsonNode.Parse(SchemaDiscoveryTests.Person)!.AsObject(), out var compiled, out _);
        return compiled!;
    }

    private static SchemaTarget Target(SchemaCarrier carrier = SchemaCarrier.ResponseFormat) =>
        new("person", JsonNode.Parse(SchemaDiscoveryTests.Person)!.AsObject(), carrier, true, SchemaSource.Request);

    private static string Run(StreamingSchemaGuard guard, string sse, int chunk = 7)
    {
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            guard.Process(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)), output);
        }

        guard.Complete(output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    private static string ChatStream(params string[] pieces) =>
        string.Concat(pieces.Select(p => "data: " + JsonSerializer.Serialize(new { choices = new[] { new { index = 0, delta = new { content = p } } } }) + "\n\n"))
        + "data: [DONE]\n\n";

    [Theory]
    [InlineData("\r")]
    [InlineData("\r\n")]
    [InlineData("\n")]
    public void Guard_AnyLineEnding_HoldsDoneAndValidates(string eol)
    {
        var sse = ChatStream("{\"name\":", "\"Ada\",\"age\":36}").Replace("\n", eol, StringComparison.Ordinal);
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());

        var output = Run(guard, sse, chunk: 3);

        Assert.Equal(sse, output);
        Assert.True(guard.Result!.IsValid);
        Assert.Equal("{\"name\":\"Ada\",\"age\":36}", guard.Answer);
    }

    [Fact]
    public void Guard_CrOnlyInvalidAnswer_DoneReplacedByErrorEvent()
    {
        var sse = ChatStream("{\"name\":\"Ada\"}").Replace("\n", "\r", StringComparison.Ordinal);
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());

        var output = Run(guard, sse);

        Assert.DoesNotContain("[DONE]", output, StringComparison.Ordinal);
        Assert.Contains("schema_validation_failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Guard_MultiLineData_JoinedWithLineFeedBeforeParsing()
    {
        // One JSON chunk split over two data: lines (the framer joins them with '\n'; see SseEventFramerTests).
        var sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\n"
            + "data: \"{\\\"name\\\":\\\"Ada\\\",\\\"age\\\":36}\"}}]}\n\n"
            + "data: [DONE]\n\n";
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());

        var output = Run(guard, sse, chunk: 5);

        Assert.Equal(sse, output);
        Assert.True(guard.Result!.IsValid);
    }

    [Fact]
    public void Guard_BehindMeter_SeesTheMeterFramedEventsOnce()
    {
        var sse = ChatStream("{\"name\":\"Ada\"}").Replace("\n", "\r", StringComparison.Ordinal);
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());
        using var meter = new TokenGateway.Core.Metering.SseStreamMeter(LlmDialect.OpenAIChat, suppressUsageOnlyChunk: false, guard);
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);

        for (var i = 0; i < bytes.Length; i += 4)
        {
            meter.Process(bytes.AsSpan(i, Math.Min(4, bytes.Length - i)), output);
        }

        meter.Complete(output);
        guard.Complete(output);
        var text = Encoding.UTF8.GetString(output.WrittenSpan);

        Assert.True(meter.SawTerminalEvent);
        Assert.DoesNotContain("[DONE]", text, StringComparison.Ordinal);
        Assert.Contains("schema_validation_failed", text, StringComparison.Ordinal);
        Assert.False(guard.Result!.IsValid);
    }

    [Fact]
    public void Guard_ChatValidAnswer_PassesEverythingThroughIncludingDone()
    {
        var sse = ChatStream("{\"name\":", "\"Ada\",\"age\":36}");
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());

        var output = Run(guard, sse);

        Assert.Equal(sse, output);
        Assert.True(guard.Result!.IsValid);
    }

    [Fact]
    public void Guard_ChatInvalidAnswer_ReplacesDoneWithErrorEvent()
    {
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());

        var output = Run(guard, ChatStream("{\"name\":\"Ada\"}"));

        Assert.DoesNotContain("[DONE]", output, StringComparison.Ordinal);
        Assert.Contains("\"code\":\"schema_validation_failed\"", output, StringComparison.Ordinal);
        Assert.False(guard.Result!.IsValid);
    }

    [Fact]
    public void Guard_AnthropicToolInput_CollectedFromInputJsonDeltas()
    {
        var sse = """
            event: message_start
            data: {"type":"message_start","message":{"id":"m"}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","name":"person","input":{}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":\"A\","}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"age\":\"x\"}"}}

            event: message_stop
            data: {"type":"message_stop"}


            """.Replace("\r\n", "\n", StringComparison.Ordinal);
        var guard = new StreamingSchemaGuard(LlmDialect.AnthropicMessages, Target(SchemaCarrier.Tool), Person());

        var output = Run(guard, sse);

        Assert.Equal("{\"name\":\"A\",\"age\":\"x\"}", guard.Answer);
        Assert.Contains("event: error", output, StringComparison.Ordinal);
        Assert.DoesNotContain("message_stop", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Guard_PassthroughOnFailure_KeepsTerminal()
    {
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());
        var output = new ArrayBufferWriter<byte>();
        guard.Process(Encoding.UTF8.GetBytes(ChatStream("{}")), output);

        guard.Complete(output, errorOnFailure: false);

        Assert.EndsWith("data: [DONE]\n\n", Encoding.UTF8.GetString(output.WrittenSpan), StringComparison.Ordinal);
        Assert.False(guard.Result!.IsValid);
    }

    [Fact]
    public void Replay_Chat_GuardReassemblesTheSameAnswer()
    {
        var response = JsonNode.Parse("""
            {"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"{\"name\":\"Ada\",\"age\":36}"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}
            """)!.AsObject();
        var output = new ArrayBufferWriter<byte>();

        SseReplay.Write(LlmDialect.OpenAIChat, response, includeUsage: true, output);

        var sse = Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.EndsWith("data: [DONE]\n\n", sse, StringComparison.Ordinal);
        Assert.Contains("\"usage\":{\"prompt_tokens\":3", sse, StringComparison.Ordinal);
        var guard = new StreamingSchemaGuard(LlmDialect.OpenAIChat, Target(), Person());
        Assert.Equal(sse, Run(guard, sse));
        Assert.Equal("{\"name\":\"Ada\",\"age\":36}", guard.Answer);
    }

    [Fact]
    public void Replay_AnthropicAndResponses_WellFormedEventSequences()
    {
        var message = JsonNode.Parse("""{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"{}"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}""")!.AsObject();
        var response = JsonNode.Parse("""{"id":"r","object":"response","status":"completed","output":[{"id":"i","type":"message","role":"assistant","content":[{"type":"output_text","text":"{}"}]}],"usage":{"input_tokens":3,"output_tokens":2}}""")!.AsObject();
        var a = new ArrayBufferWriter<byte>();
        var r = new ArrayBufferWriter<byte>();

        SseReplay.Write(LlmDialect.AnthropicMessages, message, includeUsage: false, a);
        SseReplay.Write(LlmDialect.OpenAIResponses, response, includeUsage: false, r);

        var events = Encoding.UTF8.GetString(a.WrittenSpan).Split('\n').Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l[7..]);
        Assert.Equal(["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"], events);
        var rText = Encoding.UTF8.GetString(r.WrittenSpan);
        Assert.StartsWith("event: response.created", rText, StringComparison.Ordinal);
        Assert.Contains("event: response.output_text.delta", rText, StringComparison.Ordinal);
        Assert.Contains("event: response.completed", rText, StringComparison.Ordinal);
    }
}
