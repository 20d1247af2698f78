using System.Text;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;

namespace TokenGateway.Core.Tests.Metering;

public sealed class ResponseUsageReaderTests
{
    [Fact]
    public void TryRead_OpenAIChatFixture_ReadsCachedAndReasoning()
    {
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.OpenAIChat, FixtureFiles.Read("openai-chat.json"), out var usage));

        Assert.Equal(new TokenUsage(InputTokens: 1342, OutputTokens: 208, CachedInputTokens: 1152, ReasoningTokens: 192), usage);
    }

    [Fact]
    public void TryRead_ResponsesFixture_ReadsInputOutputDetails()
    {
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.OpenAIResponses, FixtureFiles.Read("openai-responses.json"), out var usage));

        Assert.Equal(new TokenUsage(InputTokens: 2345, OutputTokens: 476, CachedInputTokens: 2048, ReasoningTokens: 448), usage);
    }

    [Fact]
    public void TryRead_EmbeddingsFixture_ReadsPromptTokensOnly()
    {
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.OpenAIEmbeddings, FixtureFiles.Read("openai-embeddings.json"), out var usage));

        Assert.Equal(new TokenUsage(InputTokens: 12, OutputTokens: 0), usage);
    }

    [Fact]
    public void TryRead_AnthropicFixture_SumsInputCacheReadsAndWrites()
    {
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.AnthropicMessages, FixtureFiles.Read("anthropic-messages.json"), out var usage));

        Assert.Equal(
            new TokenUsage(InputTokens: 472 + 14385 + 2196, OutputTokens: 89, CachedInputTokens: 14385, CacheWriteTokens: 2196, CacheWrite1hTokens: 1172),
            usage);
    }

    [Fact]
    public void TryRead_AnthropicWithoutTtlBreakdown_AllWritesAreFiveMinute()
    {
        var body = """{"type":"message","content":[],"usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":0,"output_tokens":5}}"""u8;

        Assert.True(ResponseUsageReader.TryRead(LlmDialect.AnthropicMessages, body, out var usage));

        Assert.Equal(new TokenUsage(InputTokens: 310, OutputTokens: 5, CacheWriteTokens: 300), usage);
    }

    [Fact]
    public void TryRead_CountTokensAnswer_ZeroBilledUsage()
    {
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.AnthropicCountTokens, FixtureFiles.Read("anthropic-count-tokens.json"), out var usage));

        Assert.Equal(default, usage);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"id":"x","choices":[]}""")]
    [InlineData("""{"usage":null}""")]
    [InlineData("""{"usage":{"prompt_tokens":12""")]
    public void TryRead_NoOrMalformedUsage_ReturnsFalse(string body)
    {
        Assert.False(ResponseUsageReader.TryRead(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out _));
    }

    [Fact]
    public void TryRead_UsageAfterLargeChoices_SkipsWithoutDom()
    {
        var big = new string('x', 200_000);
        var body = Encoding.UTF8.GetBytes("""{"choices":[{"message":{"role":"assistant","content":"BIG"}}],"usage":{"prompt_tokens":3,"completion_tokens":50000}}""".Replace("BIG", big, StringComparison.Ordinal));
        ResponseUsageReader.TryRead(LlmDialect.OpenAIChat, body, out _); // warm up

        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(ResponseUsageReader.TryRead(LlmDialect.OpenAIChat, body, out var usage));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(new TokenUsage(3, 50000), usage);
        Assert.True(allocated < 1024, $"allocated {allocated} bytes");
    }
}
