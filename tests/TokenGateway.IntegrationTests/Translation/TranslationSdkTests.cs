using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Models;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Translation;

/// <summary>
/// Any SDK, any model (issue #16): the official OpenAI SDK calls a Claude model and the official Anthropic SDK calls
/// an OpenAI model through the gateway, over real HTTP, against the simulator, which (like the real providers) refuses
/// a model on the other API's route. Each test has its own team, and the ledger must equal the usage the SDK saw.
/// </summary>
public sealed partial class TranslationSdkTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private const string Claude = "claude-haiku-4-5";
    private const string Gpt = "gpt-4o-mini";

    private GatewayServer Server => fixture.Server;

    private static readonly string PersonSchema = """
        {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}
        """;

    private static readonly string WeatherSchema = """
        {"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}
        """;

    // ------------------------------------------------------------------ OpenAI SDK → Claude

    [Fact]
    public async Task OpenAISdk_ClaudeModel_NonStreamed_TranslatedAndLedgerEqualsSdkUsage()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-json");
        var client = OpenAIChat(key, Claude);

        ClientResult<ChatCompletion> result = await client.CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Say hello to the gateway.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 40 });

        var completion = result.Value;
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        Assert.Equal(Claude, completion.Model);
        var requestId = RequestId(result.GetRawResponse());
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId)!;
        Assert.Equal("/v1/messages", upstream.PathAndQuery);
        Assert.Equal(GatewayServer.ProviderKey, upstream.GetHeader("x-api-key"));
        Assert.NotNull(upstream.GetHeader("anthropic-version"));
        Assert.Null(upstream.GetHeader("authorization"));
        var sent = JsonNode.Parse(upstream.BodyText)!.AsObject();
        Assert.Equal("You are terse.", (string)sent["system"]!);
        Assert.Equal(40, (int)sent["max_tokens"]!);

        var e = await Server.WaitForEventAsync(requestId);
        Assert.Equal("ok", e.GetProperty("status").GetString());
        Assert.Equal("anthropic", e.GetProperty("provider").GetString());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        AssertLedger(e, Claude, completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.InputTokenDetails?.CachedTokenCount ?? 0);
        // The pre-flight count of the translated body is what the provider billed (the served model's tokenizer).
        Assert.Equal(completion.Usage.InputTokenCount, e.GetProperty("inputTokensSent").GetInt32());
        Assert.Equal(teamId, e.GetProperty("teamId").GetString());
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_StreamedWithIncludeUsage_TextAndUsageAndLedgerAgree()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-sse");
        var client = OpenAIChat(key, Claude);
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        var updates = 0;

        await foreach (var update in client.CompleteChatStreamingAsync(
            [new UserChatMessage("Stream a short answer.")], new ChatCompletionOptions { MaxOutputTokenCount = 30 }))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.True(updates > 3, $"{updates} updates: the answer must arrive as a stream");
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.NotNull(finish);
        Assert.NotNull(usage); // the OpenAI SDK asks for include_usage; the Anthropic stream's usage becomes the usage chunk
        var recorded = Server.Simulator.Recorder.Snapshot().Last(r => r.PathAndQuery == "/v1/messages" && r.BodyText.Contains("Stream a short answer.", StringComparison.Ordinal));
        Assert.True(JsonNode.Parse(recorded.BodyText)!["stream"]!.GetValue<bool>());

        var e = await SingleEventAsync(teamId);
        Assert.True(e.GetProperty("stream").GetBoolean());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        AssertLedger(e, Claude, usage!.InputTokenCount, usage.OutputTokenCount, usage.InputTokenDetails?.CachedTokenCount ?? 0);
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_StreamedWithoutIncludeUsage_NoUsageChunkButLedgerHasProviderUsage()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-sse-nousage");
        using var http = Server.CreateClient(key);
        var body = $$"""{"model":"{{Claude}}","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"no usage please"}]}""";

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var sse = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("\"usage\"", sse, StringComparison.Ordinal);
        Assert.DoesNotContain("message_start", sse, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", sse, StringComparison.Ordinal);
        var e = await SingleEventAsync(teamId);
        Assert.False(e.GetProperty("estimated").GetBoolean());
        Assert.True(e.GetProperty("outputTokens").GetInt32() > 0);
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_ToolCallAndToolResultRoundTrip_IdsPreservedAndLedgerSumsBothCalls()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-tools");
        var client = OpenAIChat(key, Claude);
        var tool = ChatTool.CreateFunctionTool("get_weather", "Current weather for a city", BinaryData.FromString(WeatherSchema));
        var options = new ChatCompletionOptions { Tools = { tool }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), MaxOutputTokenCount = 200 };
        List<ChatMessage> history = [new UserChatMessage("What is the weather in Paris?")];

        ChatCompletion first = await client.CompleteChatAsync(history, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.NotNull(JsonNode.Parse(call.FunctionArguments.ToString())!["city"]);

        history.Add(new AssistantChatMessage(first));
        history.Add(new ToolChatMessage(call.Id, """{"temperature_c":18,"sky":"clear"}"""));
        ChatCompletion second = await client.CompleteChatAsync(history, new ChatCompletionOptions { Tools = { tool }, MaxOutputTokenCount = 40 });

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.False(string.IsNullOrWhiteSpace(second.Content[0].Text));
        // The provider received the tool_use and its tool_result under the same id, in Anthropic's shape.
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("temperature_c", StringComparison.Ordinal)).BodyText)!;
        var messages = upstream["messages"]!.AsArray();
        Assert.Equal("tool_use", (string)messages[1]!["content"]![0]!["type"]!);
        Assert.Equal(call.Id, (string)messages[1]!["content"]![0]!["id"]!);
        Assert.Equal("tool_result", (string)messages[2]!["content"]![0]!["type"]!);
        Assert.Equal(call.Id, (string)messages[2]!["content"]![0]!["tool_use_id"]!);

        var totals = await TeamTotalsAsync(teamId, requests: 2);
        Assert.Equal(first.Usage.InputTokenCount + second.Usage.InputTokenCount, totals.GetProperty("inputTokensSent").GetInt32());
        Assert.Equal(first.Usage.OutputTokenCount + second.Usage.OutputTokenCount, totals.GetProperty("outputTokens").GetInt32());
        Assert.Equal(Cost(Claude, first.Usage.InputTokenCount, first.Usage.OutputTokenCount, 0) + Cost(Claude, second.Usage.InputTokenCount, second.Usage.OutputTokenCount, 0),
            totals.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_JsonSchemaResponseFormat_SentAsNativeStructuredOutputAndAnswerMatches()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-schema");
        var client = OpenAIChat(key, Claude);
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(PersonSchema), jsonSchemaIsStrict: true),
            MaxOutputTokenCount = 200,
        };

        ClientResult<ChatCompletion> result = await client.CompleteChatAsync([new UserChatMessage("Invent a person.")], options);

        var person = JsonNode.Parse(result.Value.Content[0].Text)!.AsObject();
        Assert.Equal(JsonValueKind.String, person["name"]!.GetValueKind());
        Assert.True(person["age"]!.GetValue<int>() >= 0);
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", RequestId(result.GetRawResponse()))!.BodyText)!;
        Assert.Equal("json_schema", (string)upstream["output_config"]!["format"]!["type"]!);
        Assert.Null(upstream["response_format"]);
        var e = await SingleEventAsync(teamId);
        AssertLedger(e, Claude, result.Value.Usage.InputTokenCount, result.Value.Usage.OutputTokenCount, 0);
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_RefusedParameter_400NamingItInOpenAIEnvelope()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-oa-refused");
        var client = OpenAIChat(key, Claude);
        var before = Server.Simulator.Recorder.Count;

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync(
            [new UserChatMessage("hi")], new ChatCompletionOptions { FrequencyPenalty = 0.5f }));

        Assert.Equal(400, ex.Status);
        var error = JsonNode.Parse(ex.GetRawResponse()!.Content.ToString())!["error"]!;
        Assert.Equal("frequency_penalty", (string)error["param"]!);
        Assert.Equal("invalid_request", (string)error["code"]!);
        Assert.Contains("frequency_penalty", (string)error["message"]!, StringComparison.Ordinal);
        Assert.Equal(before, Server.Simulator.Recorder.Count); // nothing reached the provider
        var e = await SingleEventAsync(teamId);
        Assert.Equal(0m, e.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task ClaudeModelOnChat_GatewaySchemaHeader_RefusedRatherThanSilentlyNotEnforced()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("tr-oa-schema-header");
        using var http = Server.CreateClient(key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{Claude}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-tokengateway-schema", "person");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("x-tokengateway-schema", (string)error["param"]!);
        Assert.Contains("other API", (string)error["message"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAISdk_ClaudeModel_ProviderRateLimit_ArrivesAsOpenAIErrorWithStatusAndRetryAfter()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("tr-oa-429");
        var client = OpenAIChat(key, Claude, fault: "status=429");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(429, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.True(raw.Headers.TryGetValue("Retry-After", out var retryAfter));
        Assert.Equal("1", retryAfter);
        var error = JsonNode.Parse(raw.Content.ToString())!["error"]!.AsObject();
        Assert.Equal("rate_limit_error", (string)error["type"]!);
        Assert.Equal("rate_limit_error", (string)error["code"]!);
        Assert.Contains("Simulated upstream error", (string)error["message"]!, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ Anthropic SDK → OpenAI

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_NonStreamed_TranslatedAndLedgerEqualsSdkUsage()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-json");

        var message = await AnthropicSdk(key).Messages.Create(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 40,
            System = "You are terse.",
            Messages = [new UserMessageParam("Say hello to the gateway.")],
        });

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.False(string.IsNullOrWhiteSpace(text.Text));
        Assert.Equal(StopReason.EndTurn, message.StopReason?.Value());
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("Say hello to the gateway.", StringComparison.Ordinal) && r.BodyText.Contains(Gpt, StringComparison.Ordinal));
        Assert.Equal("/v1/chat/completions", upstream.PathAndQuery);
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.GetHeader("authorization"));
        Assert.Null(upstream.GetHeader("anthropic-version"));
        var sent = JsonNode.Parse(upstream.BodyText)!;
        Assert.Equal("system", (string)sent["messages"]![0]!["role"]!);
        Assert.Equal(40, (int)sent["max_completion_tokens"]!);

        var e = await SingleEventAsync(teamId);
        Assert.Equal("openai", e.GetProperty("provider").GetString());
        var usage = message.Usage;
        var cached = (int)(usage.CacheReadInputTokens ?? 0);
        AssertLedger(e, Gpt, (int)usage.InputTokens + cached + (int)(usage.CacheCreationInputTokens ?? 0), (int)usage.OutputTokens, cached);
    }

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_Streamed_TextAndUsageAndLedgerAgree()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-sse");
        var text = new StringBuilder();
        long? input = null;
        long? output = null;
        long? cached = null;
        var starts = 0;
        var stops = 0;

        await foreach (var ev in AnthropicSdk(key).Messages.CreateStreaming(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 30,
            Messages = [new UserMessageParam("Stream a short answer.")],
        }))
        {
            if (ev.TryPickStart(out _))
            {
                starts++;
            }
            else if (ev.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                text.Append(textDelta.Text);
            }
            else if (ev.TryPickDelta(out var messageDelta))
            {
                input = messageDelta.Usage.InputTokens;
                output = messageDelta.Usage.OutputTokens;
                cached = messageDelta.Usage.CacheReadInputTokens;
            }
            else if (ev.TryPickStop(out _))
            {
                stops++;
            }
        }

        Assert.Equal(1, starts);
        Assert.Equal(1, stops);
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("Stream a short answer.", StringComparison.Ordinal) && r.PathAndQuery == "/v1/chat/completions").BodyText)!;
        Assert.True(upstream["stream_options"]!["include_usage"]!.GetValue<bool>()); // the translated request always asks for usage

        var e = await SingleEventAsync(teamId);
        Assert.True(e.GetProperty("stream").GetBoolean());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        AssertLedger(e, Gpt, (int)(input!.Value + (cached ?? 0)), (int)output!.Value, (int)(cached ?? 0));
    }

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_ToolUseAndToolResultRoundTrip_IdsPreservedAndLedgerSumsBothCalls()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-tools");
        var client = AnthropicSdk(key);
        var schema = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(WeatherSchema)!;
        var tool = new Tool
        {
            Name = "get_weather",
            Description = "Current weather for a city",
            InputSchema = new InputSchema { Properties = schema["properties"].Deserialize<Dictionary<string, JsonElement>>()!, Required = ["city"] },
        };
        var question = new UserMessageParam("What is the weather in Paris?");

        var first = await client.Messages.Create(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 200,
            Tools = [tool],
            ToolChoice = new ToolChoiceAny(),
            Messages = [question],
        });

        Assert.Equal(StopReason.ToolUse, first.StopReason?.Value());
        Assert.True(first.Content.Single(c => c.TryPickToolUse(out _)).TryPickToolUse(out var toolUse));
        Assert.Equal("get_weather", toolUse.Name);
        Assert.True(toolUse.Input.ContainsKey("city"));

        var second = await client.Messages.Create(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 40,
            Tools = [tool],
            Messages =
            [
                question,
                new AssistantMessageParam(new List<ContentBlockParam> { new ToolUseBlockParam { ID = toolUse.ID, Name = toolUse.Name, Input = toolUse.Input } }),
                new UserMessageParam(new List<ContentBlockParam> { new ToolResultBlockParam(toolUse.ID) { Content = """{"temperature_c":18,"sky":"clear"}""" } }),
            ],
        });

        Assert.Equal(StopReason.EndTurn, second.StopReason?.Value());
        Assert.True(second.Content[0].TryPickText(out _));
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("temperature_c", StringComparison.Ordinal)).BodyText)!;
        var messages = upstream["messages"]!.AsArray();
        Assert.Equal(toolUse.ID, (string)messages[1]!["tool_calls"]![0]!["id"]!);
        Assert.Equal("tool", (string)messages[2]!["role"]!);
        Assert.Equal(toolUse.ID, (string)messages[2]!["tool_call_id"]!);

        var totals = await TeamTotalsAsync(teamId, requests: 2);
        Assert.Equal(first.Usage.InputTokens + second.Usage.InputTokens, totals.GetProperty("inputTokensSent").GetInt32());
        Assert.Equal(first.Usage.OutputTokens + second.Usage.OutputTokens, totals.GetProperty("outputTokens").GetInt32());
        Assert.Equal(Cost(Gpt, (int)first.Usage.InputTokens, (int)first.Usage.OutputTokens, 0) + Cost(Gpt, (int)second.Usage.InputTokens, (int)second.Usage.OutputTokens, 0),
            totals.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_JsonOutputFormat_SentAsResponseFormatAndAnswerMatches()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-schema");

        var message = await AnthropicSdk(key).Messages.Create(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 200,
            Messages = [new UserMessageParam("Invent a person for the schema test.")],
            OutputConfig = new OutputConfig { Format = new JsonOutputFormat { Schema = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(PersonSchema)! } },
        });

        Assert.True(message.Content[0].TryPickText(out var text));
        var person = JsonNode.Parse(text.Text)!.AsObject();
        Assert.Equal(JsonValueKind.String, person["name"]!.GetValueKind());
        Assert.True(person["age"]!.GetValue<int>() >= 0);
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("Invent a person for the schema test.", StringComparison.Ordinal)).BodyText)!;
        Assert.Equal("json_schema", (string)upstream["response_format"]!["type"]!);
        var e = await SingleEventAsync(teamId);
        AssertLedger(e, Gpt, (int)message.Usage.InputTokens, (int)message.Usage.OutputTokens, 0);
    }

    [Fact]
    public async Task AnthropicClient_OpenAIModel_RefusedParameter_400NamingItInAnthropicEnvelope()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("tr-an-refused");
        using var http = AnthropicHttp(key);
        var body = $$"""{"model":"{{Gpt}}","max_tokens":20,"top_k":5,"messages":[{"role":"user","content":"hi"}]}""";

        using var response = await http.PostAsync("/v1/messages", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("error", (string)json["type"]!);
        Assert.Equal("invalid_request_error", (string)json["error"]!["type"]!);
        Assert.Contains("'top_k'", (string)json["error"]!["message"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_ProviderOverloaded_ArrivesAsAnthropicErrorWithStatusAndRetryAfter()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("tr-an-503");
        using var http = AnthropicHttp(key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = new StringContent($$"""{"model":"{{Gpt}}","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-simulator-fault", "status=503");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("error", (string)json["type"]!);
        Assert.Equal("overloaded_error", (string)json["error"]!["type"]!);
        Assert.Contains("Simulated upstream error", (string)json["error"]!["message"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnthropicClient_AzureModel_TranslatedToTheDeploymentRouteWithApiKey()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-azure");
        using var http = AnthropicHttp(key);
        var body = """{"model":"azure-gpt-4o","max_tokens":20,"messages":[{"role":"user","content":"hello azure via messages"}]}""";

        using var response = await http.PostAsync("/v1/messages", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("message", (string)message["type"]!);
        var upstream = Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("hello azure via messages", StringComparison.Ordinal));
        Assert.StartsWith("/openai/deployments/azure-gpt-4o/chat/completions?api-version=", upstream.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(GatewayServer.ProviderKey, upstream.GetHeader("api-key"));
        var e = await SingleEventAsync(teamId);
        Assert.Equal((int)message["usage"]!["output_tokens"]!, e.GetProperty("outputTokens").GetInt32());
    }

    [Fact]
    public async Task AnthropicSdk_OpenAIModel_CountTokens_AnsweredByTheGatewayAndEqualsWhatTheProviderBills()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-an-count");
        var client = AnthropicSdk(key);
        const string question = "How many tokens does this question take on gpt-4o-mini?";
        var before = Server.Simulator.Recorder.Count;

        var count = await client.Messages.CountTokens(new MessageCountTokensParams
        {
            Model = Gpt,
            System = "You are terse.",
            Messages = [new UserMessageParam(question)],
        });

        Assert.Equal(before, Server.Simulator.Recorder.Count); // OpenAI has no count endpoint: nothing was forwarded
        var message = await client.Messages.Create(new MessageCreateParams
        {
            Model = Gpt,
            MaxTokens = 10,
            System = "You are terse.",
            Messages = [new UserMessageParam(question)],
        });
        Assert.True(count.InputTokens > 0);
        Assert.Equal(message.Usage.InputTokens, count.InputTokens);
        var totals = await TeamTotalsAsync(teamId, requests: 2);
        Assert.Equal(Cost(Gpt, (int)message.Usage.InputTokens, (int)message.Usage.OutputTokens, 0), totals.GetProperty("costUsd").GetDecimal()); // counting is free
    }

    // ------------------------------------------------------------------ helpers

    private ChatClient OpenAIChat(string key, string model, string? fault = null)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = Server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(30),
        };
        if (fault is not null)
        {
            options.AddPolicy(new FaultHeaderPolicy(fault), PipelinePosition.PerCall);
        }

        return new ChatClient(model, new ApiKeyCredential(key), options);
    }

    private AnthropicClient AnthropicSdk(string key) => new()
    {
        ApiKey = key,
        BaseUrl = Server.Address.TrimEnd('/'),
        MaxRetries = 0,
        ResponseValidation = true,
    };

    private HttpClient AnthropicHttp(string key)
    {
        var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        http.DefaultRequestHeaders.Add("x-api-key", key);
        http.DefaultRequestHeaders.Add("anthropic-version", "2023-06-01");
        return http;
    }

    private static string RequestId(PipelineResponse response) =>
        response.Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id! : throw new InvalidOperationException("No request id header.");

    /// <summary>The team's one usage event (each test has its own team), read back by the request id the CSV export lists.</summary>
    private async Task<JsonElement> SingleEventAsync(string teamId)
    {
        await TeamTotalsAsync(teamId, requests: 1);
        using var csv = await Server.Admin.GetAsync($"/admin/usage/export?teamId={teamId}");
        csv.EnsureSuccessStatusCode();
        var lines = (await csv.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(2, lines.Length); // header + the one event
        var column = Array.IndexOf(lines[0].Split(','), "request_id");
        return await Server.WaitForEventAsync(lines[1].Split(',')[column]);
    }

    private async Task<JsonElement> TeamTotalsAsync(string teamId, int requests)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var totals = (await Server.UsageAsync($"teamId={teamId}")).GetProperty("totals");
            if (totals.GetProperty("requests").GetInt32() >= requests)
            {
                Assert.Equal(requests, totals.GetProperty("requests").GetInt32());
                return totals;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Team {teamId} has {totals.GetProperty("requests").GetInt32()} of {requests} usage events.");
            }

            await Task.Delay(50);
        }
    }

    private void AssertLedger(JsonElement e, string model, int input, int output, int cached)
    {
        Assert.Equal(model, e.GetProperty("model").GetString());
        Assert.Equal(input, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(output, e.GetProperty("outputTokens").GetInt32());
        Assert.Equal(cached, e.GetProperty("cachedInputTokens").GetInt32());
        Assert.Equal(Cost(model, input, output, cached), e.GetProperty("costUsd").GetDecimal());
    }

    private decimal Cost(string model, int input, int output, int cached)
    {
        var catalog = Server.Services.GetRequiredService<ModelCatalog>();
        Assert.True(catalog.TryResolve(model, out var card));
        var p = card.Prices;
        return ((input - cached) * p.Input!.Value + cached * (p.CachedInput ?? p.Input.Value) + output * p.Output!.Value) / 1_000_000m;
    }

    /// <summary>Adds the simulator's fault header to every call of an SDK client (the gateway forwards it by allowlist).</summary>
    private sealed class FaultHeaderPolicy(string fault) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-simulator-fault", fault);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-simulator-fault", fault);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
