using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

public sealed class ResponseTranslatorTests
{
    private static JsonObject Fixture(string name) => JsonNode.Parse(FixtureFiles.Read(name))!.AsObject();

    private static TokenUsage Usage(LlmDialect dialect, JsonNode body)
    {
        Assert.True(ResponseUsageReader.TryRead(dialect, JsonSerializer.SerializeToUtf8Bytes(body), out var usage));
        return usage;
    }

    [Fact]
    public void MessageToChatCompletion_ToolUseFixture_KeepsTextToolCallAndUsage()
    {
        var message = Fixture("anthropic-messages.json");

        var completion = ResponseTranslator.MessageToChatCompletion(message, created: 1_700_000_000);

        var choice = completion["choices"]![0]!;
        Assert.Equal("chat.completion", (string)completion["object"]!);
        Assert.Equal("msg_01XFDUDYJgAACzvnptvVoYEL", (string)completion["id"]!);
        Assert.Equal("claude-sonnet-4-5-20250929", (string)completion["model"]!);
        Assert.Equal(1_700_000_000, (long)completion["created"]!);
        Assert.Equal("tool_calls", (string)choice["finish_reason"]!);
        Assert.Equal("I'll check the weather in San Francisco for you.", (string)choice["message"]!["content"]!);
        var call = choice["message"]!["tool_calls"]![0]!;
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", (string)call["id"]!);
        Assert.Equal("get_weather", (string)call["function"]!["name"]!);
        Assert.True(JsonNode.DeepEquals(message["content"]![1]!["input"], JsonNode.Parse((string)call["function"]!["arguments"]!)));

        // prompt_tokens = input + cache read + cache write; the cache-write split has no OpenAI field.
        var anthropic = Usage(LlmDialect.AnthropicMessages, message);
        var openai = Usage(LlmDialect.OpenAIChat, completion);
        Assert.Equal(472 + 14385 + 2196, openai.InputTokens);
        Assert.Equal(anthropic.InputTokens, openai.InputTokens);
        Assert.Equal(anthropic.OutputTokens, openai.OutputTokens);
        Assert.Equal(anthropic.CachedInputTokens, openai.CachedInputTokens);
        Assert.Equal(anthropic.InputTokens + anthropic.OutputTokens, (int)completion["usage"]!["total_tokens"]!);
    }

    [Fact]
    public void MessageToChatCompletion_Thinking_GoesToReasoningContent()
    {
        var message = JsonNode.Parse("""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[
              {"type":"thinking","thinking":"Let me think.","signature":"sig"},{"type":"text","text":"42"}],
             "stop_reason":"max_tokens","usage":{"input_tokens":10,"output_tokens":5}}
            """)!.AsObject();

        var choice = ResponseTranslator.MessageToChatCompletion(message, 0)["choices"]![0]!;

        Assert.Equal("42", (string)choice["message"]!["content"]!);
        Assert.Equal("Let me think.", (string)choice["message"]!["reasoning_content"]!);
        Assert.Equal("length", (string)choice["finish_reason"]!);
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    [InlineData("model_context_window_exceeded", "length")]
    public void FinishReasonFor_MapsEveryStopReason(string stopReason, string finishReason)
    {
        Assert.Equal(finishReason, DialectMappings.FinishReasonFor(stopReason));
    }

    [Theory]
    [InlineData("stop", "end_turn")]
    [InlineData("length", "max_tokens")]
    [InlineData("tool_calls", "tool_use")]
    [InlineData("content_filter", "refusal")]
    public void StopReasonFor_MapsEveryFinishReason(string finishReason, string stopReason)
    {
        Assert.Equal(stopReason, DialectMappings.StopReasonFor(finishReason));
    }

    [Fact]
    public void ChatCompletionToMessage_Fixture_KeepsTextStopAndUsage()
    {
        var completion = Fixture("openai-chat.json");

        var message = ResponseTranslator.ChatCompletionToMessage(completion, out var error)!;

        Assert.Null(error);
        Assert.Equal("message", (string)message["type"]!);
        Assert.Equal("end_turn", (string)message["stop_reason"]!);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""[{"type":"text","text":"The capital of France is Paris."}]"""), message["content"]));
        var openai = Usage(LlmDialect.OpenAIChat, completion);
        var anthropic = Usage(LlmDialect.AnthropicMessages, message);
        Assert.Equal(openai.InputTokens, anthropic.InputTokens);
        Assert.Equal(openai.OutputTokens, anthropic.OutputTokens);
        Assert.Equal(openai.CachedInputTokens, anthropic.CachedInputTokens);
        Assert.Equal(0, anthropic.CacheWriteTokens);
    }

    [Fact]
    public void ChatCompletionToMessage_ToolCalls_BecomeToolUseWithIds()
    {
        var completion = JsonNode.Parse("""
            {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"finish_reason":"tool_calls",
              "message":{"role":"assistant","content":null,"tool_calls":[
                {"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
                {"id":"call_b","type":"function","function":{"name":"g","arguments":""}}]}}],
             "usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}
            """)!.AsObject();

        var message = ResponseTranslator.ChatCompletionToMessage(completion, out _)!;

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            [{"type":"tool_use","id":"call_a","name":"f","input":{"x":1},"caller":{"type":"direct"}},{"type":"tool_use","id":"call_b","name":"g","input":{},"caller":{"type":"direct"}}]
            """), message["content"]));
        Assert.Equal("tool_use", (string)message["stop_reason"]!);
    }

    [Fact]
    public void ChatCompletionToMessage_ArgumentsNotAnObject_ReportsError()
    {
        var completion = JsonNode.Parse("""
            {"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1,2"}}]}}]}
            """)!.AsObject();

        Assert.Null(ResponseTranslator.ChatCompletionToMessage(completion, out var error));
        Assert.Contains("not a JSON object", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("invalid_request_error", "invalid_request_error")]
    [InlineData("authentication_error", "authentication_error")]
    [InlineData("permission_error", "permission_error")]
    [InlineData("not_found_error", "not_found_error")]
    [InlineData("rate_limit_error", "rate_limit_error")]
    [InlineData("overloaded_error", "server_error")]
    [InlineData("api_error", "server_error")]
    public void AnthropicErrorToOpenAI_MapsTypeAndKeepsMessage(string anthropicType, string openAIType)
    {
        var body = JsonNode.Parse($$$"""{"type":"error","error":{"type":"{{{anthropicType}}}","message":"Something went wrong."}}""")!.AsObject();

        var error = ResponseTranslator.AnthropicErrorToOpenAI(body)!["error"]!;

        Assert.Equal(openAIType, (string)error["type"]!);
        Assert.Equal("Something went wrong.", (string)error["message"]!);
        Assert.Equal(anthropicType, (string)error["code"]!);
    }

    [Theory]
    [InlineData(400, "invalid_request_error", "invalid_request_error")]
    [InlineData(401, "invalid_request_error", "authentication_error")]
    [InlineData(404, "invalid_request_error", "not_found_error")]
    [InlineData(429, "tokens", "rate_limit_error")]
    [InlineData(429, "insufficient_quota", "billing_error")]
    [InlineData(500, "server_error", "api_error")]
    [InlineData(503, "server_error", "overloaded_error")]
    public void OpenAIErrorToAnthropic_MapsByStatus(int status, string openAIType, string anthropicType)
    {
        var body = JsonNode.Parse($$$"""{"error":{"message":"Bad.","type":"{{{openAIType}}}","param":"messages","code":null}}""")!.AsObject();

        var translated = ResponseTranslator.OpenAIErrorToAnthropic(body, status)!;

        Assert.Equal("error", (string)translated["type"]!);
        Assert.Equal(anthropicType, (string)translated["error"]!["type"]!);
        Assert.Equal("Bad. (param: messages)", (string)translated["error"]!["message"]!);
    }

    [Fact]
    public void ErrorTranslation_NotAnEnvelope_ReturnsNull()
    {
        Assert.Null(ResponseTranslator.AnthropicErrorToOpenAI(new JsonObject { ["message"] = "x" }));
        Assert.Null(ResponseTranslator.OpenAIErrorToAnthropic(new JsonObject { ["detail"] = "x" }, 500));
    }
}
