using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class DialectTranslatorTests
{
    [Theory]
    [InlineData(LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages, true, true)]
    [InlineData(LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat, true, true)]
    [InlineData(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages, true, false)]
    [InlineData(LlmDialect.AnthropicMessages, LlmDialect.OpenAIResponses, false, false)]
    [InlineData(LlmDialect.OpenAIEmbeddings, LlmDialect.AnthropicMessages, false, false)]
    [InlineData(LlmDialect.OpenAIChat, LlmDialect.OpenAIChat, false, false)]
    public void CanTranslate_OnlyTheImplementedPairs(LlmDialect client, LlmDialect upstream, bool request, bool answer)
    {
        Assert.Equal(request, DialectTranslator.CanTranslate(client, upstream));
        Assert.Equal(answer, DialectTranslator.CanTranslateAnswer(client, upstream));
    }

    [Fact]
    public void TranslateRequest_DispatchesByPair()
    {
        var chat = JsonNode.Parse("""{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi"}]}""")!.AsObject();
        var responses = JsonNode.Parse("""{"model":"claude-haiku-4-5","input":"Hi"}""")!.AsObject();

        var fromChat = DialectTranslator.TranslateRequest(LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages, chat);
        var fromResponses = DialectTranslator.TranslateRequest(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages, responses);
        var back = DialectTranslator.TranslateRequest(LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat, fromChat.Body!);

        Assert.True(JsonNode.DeepEquals(fromChat.Body, fromResponses.Body));
        Assert.Equal(4096, (int)back.Body!["max_completion_tokens"]!);
        Assert.Throws<NotSupportedException>(() => DialectTranslator.TranslateRequest(LlmDialect.OpenAIEmbeddings, LlmDialect.AnthropicMessages, chat));
    }

    [Fact]
    public void TranslateError_SameFamily_ReturnsNull()
    {
        var error = JsonNode.Parse("""{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}""")!.AsObject();

        Assert.Null(DialectTranslator.TranslateError(LlmDialect.AnthropicMessages, LlmDialect.AnthropicMessages, error, 429));
        Assert.Equal("rate_limit_error", (string)DialectTranslator.TranslateError(LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages, error, 429)!["error"]!["type"]!);
    }

    [Fact]
    public void CreateStreamTranslator_PicksTheDirection()
    {
        using var toChat = DialectTranslator.CreateStreamTranslator(LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages, includeUsage: true, created: 1);
        using var toAnthropic = DialectTranslator.CreateStreamTranslator(LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat, includeUsage: true, created: 1);

        Assert.IsType<AnthropicToChatStreamTranslator>(toChat);
        Assert.IsType<ChatToAnthropicStreamTranslator>(toAnthropic);
    }
}
