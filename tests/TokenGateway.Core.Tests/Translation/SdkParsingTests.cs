using System.Buffers;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

/// <summary>
/// The official OpenAI and Anthropic .NET SDKs parse what the translators produce from the golden provider answers
/// (served by an in-memory handler: no host, no network). The Anthropic client validates responses strictly.
/// </summary>
public sealed class SdkParsingTests
{
    private static ChatClient OpenAIChat(byte[] body, string contentType) => new("claude-sonnet-4-5", new ApiKeyCredential("tg-test"), new OpenAIClientOptions
    {
        Transport = new HttpClientPipelineTransport(new HttpClient(new CannedHandler(body, contentType))),
        RetryPolicy = new ClientRetryPolicy(0),
    });

    private static AnthropicClient Claude(byte[] body, string contentType) => new()
    {
        ApiKey = "tg-test",
        BaseUrl = "http://translated.invalid",
        HttpClient = new HttpClient(new CannedHandler(body, contentType)),
        MaxRetries = 0,
        ResponseValidation = true,
    };

    private static byte[] Translate(SseEventTranslator translator, byte[] input)
    {
        var output = new ArrayBufferWriter<byte>();
        translator.Process(input, output);
        translator.Complete(output);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public async Task OpenAISdk_TranslatedClaudeToolStream_ReassemblesTextToolCallAndUsage()
    {
        var stream = Translate(new AnthropicToChatStreamTranslator(includeUsage: true, created: 1), FixtureFiles.Read("anthropic-messages-stream-tool.sse"));
        var text = new StringBuilder();
        var arguments = new StringBuilder();
        string? id = null;
        string? name = null;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;

        await foreach (var update in OpenAIChat(stream, "text/event-stream").CompleteChatStreamingAsync([new UserChatMessage("Weather?")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            foreach (var call in update.ToolCallUpdates)
            {
                id ??= call.ToolCallId;
                name ??= call.FunctionName;
                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("Okay, let's check the weather for San Francisco, CA:", text.ToString());
        Assert.Equal("toolu_01T1x1fJ34qAmk2tNTrN7Up6", id);
        Assert.Equal("get_weather", name);
        Assert.Equal("San Francisco, CA", (string)JsonNode.Parse(arguments.ToString())!["location"]!);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal(472 + 2048, usage!.InputTokenCount);
        Assert.Equal(89, usage.OutputTokenCount);
        Assert.Equal(2048, usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task OpenAISdk_TranslatedClaudeMessage_ParsesToolCallAndUsage()
    {
        var completion = ResponseTranslator.MessageToChatCompletion(JsonNode.Parse(FixtureFiles.Read("anthropic-messages.json"))!.AsObject(), created: 1);
        var body = JsonSerializer.SerializeToUtf8Bytes(completion);

        ChatCompletion result = await OpenAIChat(body, "application/json").CompleteChatAsync([new UserChatMessage("Weather?")]);

        Assert.Equal(ChatFinishReason.ToolCalls, result.FinishReason);
        Assert.Equal("I'll check the weather in San Francisco for you.", result.Content[0].Text);
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", result.ToolCalls[0].Id);
        Assert.Equal("celsius", (string)JsonNode.Parse(result.ToolCalls[0].FunctionArguments.ToString())!["unit"]!);
        Assert.Equal(472 + 14385 + 2196, result.Usage.InputTokenCount);
        Assert.Equal(14385, result.Usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(89, result.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task AnthropicSdk_TranslatedOpenAIToolStream_ReassemblesToolUseAndUsage()
    {
        var stream = Translate(new ChatToAnthropicStreamTranslator(), FixtureFiles.Read("openai-chat-stream-tools.sse"));
        var json = new StringBuilder();
        string? id = null;
        string? name = null;
        long? input = null;
        long? output = null;
        var stops = 0;

        await foreach (var ev in Claude(stream, "text/event-stream").Messages.CreateStreaming(new MessageCreateParams
        {
            Model = "gpt-4.1",
            MaxTokens = 100,
            Messages = [new UserMessageParam("Weather?")],
        }))
        {
            if (ev.TryPickContentBlockStart(out var start) && start.ContentBlock.TryPickToolUse(out var toolUse))
            {
                id = toolUse.ID;
                name = toolUse.Name;
            }
            else if (ev.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickInputJson(out var partial))
            {
                json.Append(partial.PartialJson);
            }
            else if (ev.TryPickDelta(out var messageDelta))
            {
                input = messageDelta.Usage.InputTokens;
                output = messageDelta.Usage.OutputTokens;
                Assert.Equal(StopReason.ToolUse, messageDelta.Delta.StopReason?.Value());
            }
            else if (ev.TryPickStop(out _))
            {
                stops++;
            }
        }

        Assert.Equal("call_DdmO9pD3xa9XTPNJ32zg2hcA", id);
        Assert.Equal("get_weather", name);
        Assert.Equal("Paris, France", (string)JsonNode.Parse(json.ToString())!["location"]!);
        Assert.Equal(81, input);
        Assert.Equal(16, output);
        Assert.Equal(1, stops);
    }

    [Fact]
    public async Task AnthropicSdk_TranslatedOpenAITextStream_ReassemblesText()
    {
        var stream = Translate(new ChatToAnthropicStreamTranslator(), FixtureFiles.Read("openai-chat-stream.sse"));
        var text = new StringBuilder();

        await foreach (var ev in Claude(stream, "text/event-stream").Messages.CreateStreaming(new MessageCreateParams
        {
            Model = "gpt-4o",
            MaxTokens = 100,
            Messages = [new UserMessageParam("Hi")],
        }))
        {
            if (ev.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                text.Append(textDelta.Text);
            }
        }

        Assert.Equal("Hello! How can I help you today?", text.ToString());
    }

    [Fact]
    public async Task AnthropicSdk_TranslatedOpenAICompletion_ParsesMessageAndUsage()
    {
        var message = ResponseTranslator.ChatCompletionToMessage(JsonNode.Parse(FixtureFiles.Read("openai-chat.json"))!.AsObject(), out _)!;
        var body = JsonSerializer.SerializeToUtf8Bytes(message);

        var result = await Claude(body, "application/json").Messages.Create(new MessageCreateParams
        {
            Model = "o4-mini",
            MaxTokens = 100,
            Messages = [new UserMessageParam("Capital of France?")],
        });

        Assert.True(result.Content[0].TryPickText(out var text));
        Assert.Equal("The capital of France is Paris.", text.Text);
        Assert.Equal(StopReason.EndTurn, result.StopReason?.Value());
        Assert.Equal(1342 - 1152, result.Usage.InputTokens);
        Assert.Equal(1152, result.Usage.CacheReadInputTokens);
        Assert.Equal(208, result.Usage.OutputTokens);
    }

    [Fact]
    public async Task AnthropicSdk_TranslatedOpenAIToolCompletion_ParsesToolUse()
    {
        var completion = JsonNode.Parse("""
            {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"finish_reason":"tool_calls",
              "message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
             "usage":{"prompt_tokens":50,"completion_tokens":9,"total_tokens":59}}
            """)!.AsObject();
        var body = JsonSerializer.SerializeToUtf8Bytes(ResponseTranslator.ChatCompletionToMessage(completion, out _));

        var result = await Claude(body, "application/json").Messages.Create(new MessageCreateParams
        {
            Model = "gpt-4o",
            MaxTokens = 100,
            Messages = [new UserMessageParam("Weather?")],
        });

        Assert.True(result.Content[0].TryPickToolUse(out var toolUse));
        Assert.Equal("call_a", toolUse.ID);
        Assert.Equal("get_weather", toolUse.Name);
        Assert.Equal("{\"city\":\"Paris\"}", JsonSerializer.Serialize(toolUse.Input));
        Assert.Equal(StopReason.ToolUse, result.StopReason?.Value());
        Assert.Equal(50, result.Usage.InputTokens);
    }

    [Fact]
    public async Task OpenAISdk_TranslatedClaudeThinkingStream_ReassemblesTextAndUsage()
    {
        var stream = Translate(new AnthropicToChatStreamTranslator(includeUsage: true, created: 1), FixtureFiles.Read("anthropic-messages-stream.sse"));
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;

        await foreach (var update in OpenAIChat(stream, "text/event-stream").CompleteChatStreamingAsync([new UserChatMessage("A haiku")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.Equal("Waves fold into foam,\nsalt wind carries gull voices\u2014\nthe tide keeps its time.", text.ToString());
        Assert.Equal(14 + 2051, usage!.InputTokenCount);
        Assert.Equal(58, usage.OutputTokenCount);
    }

    /// <summary>Answers every request with one canned body.</summary>
    private sealed class CannedHandler(byte[] body, string contentType) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }
}
