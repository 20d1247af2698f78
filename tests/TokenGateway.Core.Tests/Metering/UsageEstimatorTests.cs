using System.Buffers;
using System.Text;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Metering;

public sealed class UsageEstimatorTests
{
    private static readonly TiktokenTokenizerRegistry _tokenizers = TiktokenTokenizerRegistry.Shared;

    [Fact]
    public void ForStream_ProviderUsageSeen_ExactNotEstimated()
    {
        using var meter = Feed(LlmDialect.OpenAIChat, FixtureFiles.Read("openai-chat-stream.sse"));

        var result = UsageEstimator.ForStream(meter, preflightInputTokens: 999, _tokenizers, "o200k_base");

        Assert.Equal(new MeteredUsage(new TokenUsage(1187, 9, CachedInputTokens: 1024), Estimated: false), result);
    }

    [Fact]
    public void ForStream_CutBeforeUsage_PreflightInputAndDeliveredOutput()
    {
        var full = FixtureFiles.Read("openai-chat-stream.sse");
        var cut = full.AsSpan(0, Encoding.UTF8.GetString(full).IndexOf("\"content\":\" today\"", StringComparison.Ordinal)).ToArray();
        using var meter = Feed(LlmDialect.OpenAIChat, cut);

        var result = UsageEstimator.ForStream(meter, preflightInputTokens: 1180, _tokenizers, "o200k_base");

        Assert.True(result.Estimated);
        Assert.Equal(1180, result.Usage.InputTokens);
        Assert.Equal(_tokenizers.Count("o200k_base", "Hello! How can I help you"), result.Usage.OutputTokens);
    }

    [Fact]
    public void ForStream_AnthropicCutAfterMessageStart_KeepsProviderInputAndCache()
    {
        var full = FixtureFiles.Read("anthropic-messages-stream.sse");
        var cut = full.AsSpan(0, Encoding.UTF8.GetString(full).IndexOf("event: message_delta", StringComparison.Ordinal)).ToArray();
        using var meter = Feed(LlmDialect.AnthropicMessages, cut);

        var result = UsageEstimator.ForStream(meter, preflightInputTokens: 10, _tokenizers, "claude");

        Assert.True(result.Estimated);
        Assert.Equal(2065, result.Usage.InputTokens);
        Assert.Equal(2051, result.Usage.CacheWriteTokens);
        Assert.True(result.Usage.OutputTokens > 20);
    }

    [Fact]
    public void ForStream_NothingDelivered_BillsPreflightInputOnly()
    {
        using var meter = new SseStreamMeter(LlmDialect.OpenAIResponses, suppressUsageOnlyChunk: false);

        var result = UsageEstimator.ForStream(meter, preflightInputTokens: 321, _tokenizers, "o200k_base");

        Assert.Equal(new MeteredUsage(new TokenUsage(321, 0), Estimated: true), result);
    }

    [Fact]
    public void ForBody_WithUsage_Exact()
    {
        var result = UsageEstimator.ForBody(LlmDialect.AnthropicMessages, FixtureFiles.Read("anthropic-messages.json"), 5, _tokenizers, "claude");

        Assert.False(result.Estimated);
        Assert.Equal(89, result.Usage.OutputTokens);
    }

    [Fact]
    public void ForBody_WithoutUsage_CountsGeneratedText()
    {
        var body = """{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris."},"finish_reason":"stop"}]}"""u8;

        var result = UsageEstimator.ForBody(LlmDialect.OpenAIChat, body, 42, _tokenizers, "o200k_base");

        Assert.True(result.Estimated);
        Assert.Equal(42, result.Usage.InputTokens);
        Assert.Equal(_tokenizers.Count("o200k_base", "The capital of France is Paris.\n"), result.Usage.OutputTokens);
    }

    [Fact]
    public void NoResponse_NegativePreflight_ClampedToZero()
    {
        Assert.Equal(new MeteredUsage(new TokenUsage(0, 0), true), UsageEstimator.NoResponse(-1));
    }

    private static SseStreamMeter Feed(LlmDialect dialect, byte[] input)
    {
        var meter = new SseStreamMeter(dialect, suppressUsageOnlyChunk: true);
        var output = new ArrayBufferWriter<byte>();
        meter.Process(input, output);
        return meter;
    }
}
