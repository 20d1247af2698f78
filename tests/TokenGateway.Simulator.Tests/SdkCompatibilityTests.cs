using System.ClientModel;
using System.Text;
using Anthropic;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;

namespace TokenGateway.Simulator.Tests;

/// <summary>Drives the simulator with the official OpenAI and Anthropic .NET SDKs to prove wire compatibility.</summary>
public sealed class SdkCompatibilityTests : IAsyncLifetime
{
    private const string Key = "sk-sim-test";
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync(o => o.RequiredApiKey = Key);

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private OpenAIClientOptions OpenAIOptions() => new() { Endpoint = new Uri(_sim.BaseAddress, "v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) };

    private ChatClient OpenAIChat(string model = "gpt-4o-mini") => new(model, new ApiKeyCredential(Key), OpenAIOptions());

    private AnthropicClient Claude() => new()
    {
        ApiKey = Key,
        BaseUrl = _sim.BaseAddress.AbsoluteUri.TrimEnd('/'),
        MaxRetries = 0,
        ResponseValidation = true,
    };

    [Fact]
    public async Task OpenAISdk_CompleteChat_ParsesCompletionAndUsage()
    {
        ChatCompletion completion = await OpenAIChat().CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Hello")]);

        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        var text = completion.Content[0].Text;
        Assert.Equal(24, completion.Usage.OutputTokenCount);
        Assert.Equal(Tokens.O200k(text), completion.Usage.OutputTokenCount);
        Assert.Equal(completion.Usage.InputTokenCount + 24, completion.Usage.TotalTokenCount);
        Assert.Equal(0, completion.Usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task OpenAISdk_CompleteChatStreaming_ReassemblesTextAndUsage()
    {
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10 };
        await foreach (var update in OpenAIChat("o4-mini").CompleteChatStreamingAsync([new UserChatMessage("Hello")], options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        // The SDK asks for stream_options.include_usage itself; o4-mini spends 64 reasoning tokens, capped by max 10.
        Assert.NotNull(usage);
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(10, usage.OutputTokenCount);
        Assert.Equal(10, usage.OutputTokenDetails.ReasoningTokenCount);
        Assert.Equal(string.Empty, text.ToString());
    }

    [Fact]
    public async Task OpenAISdk_StreamingText_CountsMatch()
    {
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (var update in OpenAIChat().CompleteChatStreamingAsync([new UserChatMessage("Tell me something")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.NotNull(usage);
        Assert.Equal(Tokens.O200k(text.ToString()), usage.OutputTokenCount);
        Assert.Equal(24, usage.OutputTokenCount);
    }

    [Fact]
    public async Task OpenAISdk_ForcedToolStreaming_AssemblesArguments()
    {
        var schema = SchemaAssert.Complex();
        var options = new ChatCompletionOptions
        {
            Tools = { ChatTool.CreateFunctionTool("save_person", "Save a person", BinaryData.FromString(schema.ToJsonString())) },
            ToolChoice = ChatToolChoice.CreateFunctionChoice("save_person"),
        };
        var args = new StringBuilder();
        string? name = null;
        await foreach (var update in OpenAIChat().CompleteChatStreamingAsync([new UserChatMessage("Save Ann")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                name ??= call.FunctionName;
                args.Append(call.FunctionArgumentsUpdate?.ToString());
            }
        }

        Assert.Equal("save_person", name);
        SchemaAssert.Valid(schema, args.ToString());
    }

    [Fact]
    public async Task OpenAISdk_StructuredOutput_ReturnsSchemaInstance()
    {
        var schema = SchemaAssert.Complex();
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(schema.ToJsonString()), jsonSchemaIsStrict: true),
        };

        ChatCompletion completion = await OpenAIChat().CompleteChatAsync([new UserChatMessage("Make a person")], options);

        SchemaAssert.Valid(schema, completion.Content[0].Text);
    }

    [Fact]
    public async Task OpenAISdk_Embeddings_ParsesVectors()
    {
        var client = new EmbeddingClient("text-embedding-3-small", new ApiKeyCredential(Key), OpenAIOptions());

        OpenAIEmbedding embedding = await client.GenerateEmbeddingAsync("hello", new EmbeddingGenerationOptions { Dimensions = 64 });

        Assert.Equal(64, embedding.ToFloats().Length);
    }

    [Fact]
    public async Task OpenAISdk_Status429_RaisesClientResultException()
    {
        var options = OpenAIOptions();
        options.AddPolicy(new FaultHeaderPolicy("status=429"), System.ClientModel.Primitives.PipelinePosition.PerCall);
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(Key), options);

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("x")]));

        Assert.Equal(429, ex.Status);
    }

    [Fact]
    public async Task AnthropicSdk_Create_ParsesMessageAndUsage()
    {
        var message = await Claude().Messages.Create(new MessageCreateParams
        {
            Model = "claude-sonnet-4-5",
            MaxTokens = 1024,
            Messages = [new UserMessageParam("Hello, Claude")],
        });

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal(24, message.Usage.OutputTokens);
        Assert.Equal(Tokens.O200k(text.Text), message.Usage.OutputTokens);
        Assert.True(message.Usage.InputTokens > 0);
        Assert.Equal(StopReason.EndTurn, message.StopReason?.Value());
    }

    [Fact]
    public async Task AnthropicSdk_CreateStreaming_ReassemblesTextAndUsage()
    {
        var text = new StringBuilder();
        long? input = null;
        long? output = null;
        await foreach (var ev in Claude().Messages.CreateStreaming(new MessageCreateParams
        {
            Model = "claude-haiku-4-5",
            MaxTokens = 1024,
            Messages = [new UserMessageParam("Stream please")],
        }))
        {
            if (ev.TryPickStart(out var start))
            {
                input = start.Message.Usage.InputTokens;
            }
            else if (ev.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                text.Append(textDelta.Text);
            }
            else if (ev.TryPickDelta(out var messageDelta))
            {
                output = messageDelta.Usage.OutputTokens;
            }
        }

        Assert.True(input > 0);
        Assert.Equal(24, output);
        Assert.Equal(Tokens.O200k(text.ToString()), output);
    }

    [Fact]
    public async Task AnthropicSdk_CountTokens_ReturnsInputTokens()
    {
        var count = await Claude().Messages.CountTokens(new MessageCountTokensParams
        {
            Model = "claude-sonnet-4-5",
            Messages = [new UserMessageParam("Hello, Claude")],
        });

        var body = new System.Text.Json.Nodes.JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["messages"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["role"] = "user", ["content"] = "Hello, Claude" }),
        };
        Assert.Equal(Tokens.Prompt(TokenGateway.Core.Dialects.LlmDialect.AnthropicCountTokens, body, "claude"), count.InputTokens);
    }

    private sealed class FaultHeaderPolicy(string fault) : System.ClientModel.Primitives.PipelinePolicy
    {
        public override void Process(System.ClientModel.Primitives.PipelineMessage message, IReadOnlyList<System.ClientModel.Primitives.PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-simulator-fault", fault);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(System.ClientModel.Primitives.PipelineMessage message, IReadOnlyList<System.ClientModel.Primitives.PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-simulator-fault", fault);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
