using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class DialectTranslatorTests
{
    [Theory]
    [InlineData(LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages, true, true)]
    [InlineData(LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat, true, true)]
    [InlineData(LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages, true, true)]
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

public sealed class MalformedInputTests
{
    [Theory]
    [InlineData("""{"model":"m","messages":[1,{"role":"user","content":[2,"x"]}],"stream_options":"x","tool_choice":5,"response_format":"x","tools":[3]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[7,{"id":"c","function":"f"}]}]}""")]
    [InlineData("""{"model":"m","messages":"nope"}""")]
    public void ChatToMessages_WrongJsonKinds_RefusesWithoutThrowing(string json)
    {
        var result = ChatToMessagesRequest.Translate(JsonNode.Parse(json)!.AsObject());

        Assert.False(result.Succeeded);
        Assert.NotEmpty(result.ErrorMessage);
    }

    [Theory]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[1,{"role":"user","content":[2]}],"thinking":"x","output_config":5,"tool_choice":"auto","metadata":3}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[4]}]}],"tools":[{"name":"f","input_schema":{}},5]}""")]
    public void MessagesToChat_WrongJsonKinds_RefusesWithoutThrowing(string json)
    {
        var result = MessagesToChatRequest.Translate(JsonNode.Parse(json)!.AsObject());

        Assert.False(result.Succeeded);
        Assert.NotEmpty(result.ErrorMessage);
    }

    [Theory]
    [InlineData("""{"model":"m","input":[1,{"type":"message","role":"user","content":[2]}],"text":"x","reasoning":4,"tools":[5]}""")]
    [InlineData("""{"model":"m","input":{"a":1}}""")]
    public void ResponsesToMessages_WrongJsonKinds_RefusesWithoutThrowing(string json)
    {
        var result = ResponsesToMessagesRequest.Translate(JsonNode.Parse(json)!.AsObject());

        Assert.False(result.Succeeded);
        Assert.NotEmpty(result.ErrorMessage);
    }

    [Theory]
    [InlineData("""{"id":"m","content":[1,"x",{"type":"text","text":"ok"}],"usage":{"input_tokens":"x"}}""")]
    [InlineData("""{"id":"m","content":"not blocks","usage":null}""")]
    public void MessageToChatCompletion_MalformedUpstream_DoesNotThrow(string json)
    {
        var completion = ResponseTranslator.MessageToChatCompletion(JsonNode.Parse(json)!.AsObject(), 1);

        Assert.Equal("chat.completion", (string)completion["object"]!);
    }

    [Theory]
    [InlineData("""{"choices":[1]}""")]
    [InlineData("""{"choices":[{"message":{"role":"assistant","tool_calls":[1,{"id":"c","function":"x"}]}}],"usage":{"prompt_tokens_details":3}}""")]
    public void ChatCompletionToMessage_MalformedUpstream_DoesNotThrow(string json)
    {
        var message = ResponseTranslator.ChatCompletionToMessage(JsonNode.Parse(json)!.AsObject(), out var error);

        Assert.True(message is not null || error is not null);
    }
}
