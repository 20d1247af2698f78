using System.Buffers;
using System.Text;
using CsCheck;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Metering;

public sealed class SseStreamMeterTests
{
    private static readonly TokenUsage _chatUsage = new(InputTokens: 1187, OutputTokens: 9, CachedInputTokens: 1024);

    [Fact]
    public void Process_ChatStreamClientAskedForUsage_PassesEverythingThrough()
    {
        var input = FixtureFiles.Read("openai-chat-stream.sse");

        var (output, meter) = Run(LlmDialect.OpenAIChat, suppress: false, input);

        Assert.Equal(input, output);
        Assert.Equal(_chatUsage, meter.Usage);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal(13, meter.EventCount);
        Assert.Equal("Hello! How can I help you today?", Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
    }

    [Fact]
    public void Process_ChatStreamUsageForcedByGateway_RemovesOnlyUsageChunk()
    {
        var input = FixtureFiles.Read("openai-chat-stream.sse");

        var (output, meter) = Run(LlmDialect.OpenAIChat, suppress: true, input);

        var text = Encoding.UTF8.GetString(output);
        Assert.DoesNotContain("\"usage\":{", text, StringComparison.Ordinal);
        Assert.EndsWith("\"finish_reason\":\"stop\"}],\"usage\":null}\n\ndata: [DONE]\n\n", text, StringComparison.Ordinal);
        Assert.Equal(_chatUsage, meter.Usage);
        Assert.Equal(1, meter.SuppressedEventCount);
    }

    [Fact]
    public void Process_ChatToolCallStream_CountsNameAndArguments()
    {
        var (_, meter) = Run(LlmDialect.OpenAIChat, suppress: true, FixtureFiles.Read("openai-chat-stream-tools.sse"));

        Assert.Equal("get_weather{\"location\":\"Paris, France\"}", Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
        Assert.Equal(new TokenUsage(81, 16), meter.Usage);
    }

    [Fact]
    public void Process_ResponsesStream_UsageFromCompletedAndTextFromDeltas()
    {
        var input = FixtureFiles.Read("openai-responses-stream.sse");

        var (output, meter) = Run(LlmDialect.OpenAIResponses, suppress: true, input);

        Assert.Equal(input, output);
        Assert.Equal(new TokenUsage(InputTokens: 1560, OutputTokens: 141, CachedInputTokens: 1408, ReasoningTokens: 128), meter.Usage);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal("Under the silver moon, a unicorn \u201cdreamed\u201d.", Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
    }

    [Fact]
    public void Process_AnthropicStream_InputFromStartOutputFromDelta()
    {
        var input = FixtureFiles.Read("anthropic-messages-stream.sse");

        var (output, meter) = Run(LlmDialect.AnthropicMessages, suppress: true, input);

        Assert.Equal(input, output);
        Assert.Equal(new TokenUsage(InputTokens: 14 + 2051, OutputTokens: 58, CacheWriteTokens: 2051), meter.Usage);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal(
            "The user wants a haiku about the sea.Waves fold into foam,\nsalt wind carries gull voices\u2014\nthe tide keeps its time.",
            Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
    }

    [Fact]
    public void Process_AnthropicToolStream_CumulativeDeltaUsageWins()
    {
        var (_, meter) = Run(LlmDialect.AnthropicMessages, suppress: false, FixtureFiles.Read("anthropic-messages-stream-tool.sse"));

        Assert.Equal(new TokenUsage(InputTokens: 472 + 2048, OutputTokens: 89, CachedInputTokens: 2048), meter.Usage);
        Assert.Contains("get_weather{\"location\": \"San Francisco, CA\"}", Encoding.UTF8.GetString(meter.DeliveredTextUtf8), StringComparison.Ordinal);
    }

    [Fact]
    public void Process_AnthropicStreamCutAfterStart_StartUsageOnlyAndNotTerminal()
    {
        var full = FixtureFiles.Read("anthropic-messages-stream.sse");
        var cut = full.AsSpan(0, Encoding.UTF8.GetString(full).IndexOf("event: content_block_stop", StringComparison.Ordinal)).ToArray();

        var (_, meter) = Run(LlmDialect.AnthropicMessages, suppress: false, cut);

        Assert.Null(meter.Usage);
        Assert.False(meter.SawTerminalEvent);
        Assert.Equal(new TokenUsage(InputTokens: 2065, OutputTokens: 1, CacheWriteTokens: 2051), meter.StartUsage);
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void Process_OtherLineEndings_SameUsageAndBytes(string newline)
    {
        var input = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(FixtureFiles.Read("anthropic-messages-stream.sse")).Replace("\n", newline, StringComparison.Ordinal));

        var (output, meter) = Run(LlmDialect.AnthropicMessages, suppress: false, input);

        Assert.Equal(input, output);
        Assert.Equal(58, meter.Usage!.Value.OutputTokens);
        Assert.Equal(13, meter.EventCount);
    }

    [Fact]
    public void Process_CommentsAndMultiLineData_JoinedWithNewline()
    {
        var input = """
            : keep-alive comment

            data: {"choices":[{"delta":{"content":"a"}}],
            data: "usage":{"prompt_tokens":7,"completion_tokens":2}}

            data:[DONE]


            """u8.ToArray();

        var (output, meter) = Run(LlmDialect.OpenAIChat, suppress: false, input);

        Assert.Equal(input, output);
        Assert.Equal(new TokenUsage(7, 2), meter.Usage);
        Assert.True(meter.SawTerminalEvent);
        Assert.Equal(3, meter.EventCount); // the comment-only event counts, the extra blank line does not
    }

    [Fact]
    public void Process_MalformedEvents_PassedThroughAndIgnored()
    {
        var input = """
            data: {"choices":[{"delta":{"content":"ok"}}]}

            data: {"choices":[{"delta":{"content":"broken

            data: not json at all

            event
            data

            data: {"choices":[],"usage":{"prompt_tokens":"x"}}

            data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}


            """u8.ToArray();

        var (output, meter) = Run(LlmDialect.OpenAIChat, suppress: false, input);

        Assert.Equal(input, output);
        Assert.Equal("ok", Encoding.UTF8.GetString(meter.DeliveredTextUtf8));
        Assert.Equal(new TokenUsage(5, 1), meter.Usage);
    }

    [Fact]
    public void Process_PartialEvent_HeldUntilCompleteThenCompleteEmitsTrailing()
    {
        using var meter = new SseStreamMeter(LlmDialect.OpenAIChat, suppressUsageOnlyChunk: false);
        var output = new ArrayBufferWriter<byte>();

        Assert.Equal(0, meter.Process("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n"u8, output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal(1, meter.Process("\ndata: [DO"u8, output));
        Assert.Equal(9, meter.BufferedBytes);
        meter.Complete(output);

        Assert.Equal("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DO", Encoding.UTF8.GetString(output.WrittenSpan));
        Assert.False(meter.SawTerminalEvent);
    }

    [Fact]
    public void Process_ErrorEvent_Flagged()
    {
        var input = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"u8.ToArray();

        var (output, meter) = Run(LlmDialect.AnthropicMessages, suppress: false, input);

        Assert.Equal(input, output);
        Assert.True(meter.SawErrorEvent);
        Assert.Null(meter.Usage);
    }

    [Fact]
    public void Process_OpenAIErrorChunk_Flagged()
    {
        var input = "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"u8.ToArray();

        var (output, meter) = Run(LlmDialect.OpenAIChat, suppress: true, input);

        Assert.Equal(input, output);
        Assert.True(meter.SawErrorEvent);
        Assert.False(meter.SawTerminalEvent);
    }

    [Fact]
    public void DeliveredOutputTokens_Counts_TextUnderEncoding()
    {
        var (_, meter) = Run(LlmDialect.OpenAIChat, suppress: false, FixtureFiles.Read("openai-chat-stream.sse"));

        var tokens = meter.DeliveredOutputTokens(TiktokenTokenizerRegistry.Shared, "o200k_base");

        Assert.Equal(TiktokenTokenizerRegistry.Shared.Count("o200k_base", "Hello! How can I help you today?"), tokens);
    }

    public static TheoryData<string, int, bool> SplitCases => new()
    {
        { "openai-chat-stream.sse", (int)LlmDialect.OpenAIChat, true },
        { "openai-chat-stream-tools.sse", (int)LlmDialect.OpenAIChat, false },
        { "openai-responses-stream.sse", (int)LlmDialect.OpenAIResponses, false },
        { "anthropic-messages-stream.sse", (int)LlmDialect.AnthropicMessages, false },
        { "anthropic-messages-stream-tool.sse", (int)LlmDialect.AnthropicMessages, false },
    };

    [Theory]
    [MemberData(nameof(SplitCases))]
    public void Process_AnySplitAnyLineEnding_SameBytesSameUsage(string fixture, int dialectValue, bool suppress)
    {
        var dialect = (LlmDialect)dialectValue;
        var lf = Encoding.UTF8.GetString(FixtureFiles.Read(fixture));
        var variants = new[] { lf, lf.Replace("\n", "\r\n", StringComparison.Ordinal), lf.Replace("\n", "\r", StringComparison.Ordinal) }
            .Select(Encoding.UTF8.GetBytes).ToArray();

        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 40], Gen.Int[int.MinValue, int.MaxValue]).Sample((variant, cutCount, seed) =>
        {
            var input = variants[variant];
            var (expectedBytes, expectedMeter) = Run(dialect, suppress, input);
            var random = new Random(seed);
            var cuts = Enumerable.Range(0, cutCount).Select(_ => random.Next(0, input.Length + 1)).Order().ToArray();

            var (bytes, meter) = Run(dialect, suppress, input, cuts);

            return bytes.AsSpan().SequenceEqual(expectedBytes)
                && meter.Usage == expectedMeter.Usage
                && meter.EventCount == expectedMeter.EventCount
                && meter.SawTerminalEvent == expectedMeter.SawTerminalEvent
                && meter.DeliveredTextUtf8.SequenceEqual(expectedMeter.DeliveredTextUtf8);
        }, iter: 300);
    }

    [Fact]
    public void Process_ArbitraryBytesAnySplit_NeverThrowsAndPreservesBytes()
    {
        var alphabet = Gen.OneOf("data: ", "event: ", "\n", "\r", "\r\n", ":", "{", "}", "\"usage\":", "[DONE]", "\"choices\":[]", "x", "é", "\\u00e9");
        Gen.Select(alphabet.Array[0, 80], Gen.Int[0, 20], Gen.Int[int.MinValue, int.MaxValue]).Sample((parts, cutCount, seed) =>
        {
            var input = Encoding.UTF8.GetBytes(string.Concat(parts));
            var random = new Random(seed);
            var cuts = Enumerable.Range(0, cutCount).Select(_ => random.Next(0, input.Length + 1)).Order().ToArray();
            foreach (var dialect in new[] { LlmDialect.OpenAIChat, LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages })
            {
                var (whole, _) = Run(dialect, suppress: false, input);
                var (split, _) = Run(dialect, suppress: false, input, cuts);
                if (!whole.AsSpan().SequenceEqual(input) || !split.AsSpan().SequenceEqual(input))
                {
                    return false;
                }
            }

            return true;
        }, iter: 500);
    }

    private static (byte[] Output, SseStreamMeter Meter) Run(LlmDialect dialect, bool suppress, byte[] input, int[]? cuts = null)
    {
        var meter = new SseStreamMeter(dialect, suppress);
        var output = new ArrayBufferWriter<byte>();
        var start = 0;
        foreach (var cut in cuts ?? [])
        {
            meter.Process(input.AsSpan(start, cut - start), output);
            start = cut;
        }

        meter.Process(input.AsSpan(start), output);
        meter.Complete(output);
        return (output.WrittenSpan.ToArray(), meter);
    }
}
