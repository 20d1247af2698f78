using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Json;
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

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Cross-dialect fallbacks (issues #13 and #16) through the official SDKs against the simulator, which — like the real
/// providers — answers 404 to a model on the other API's route: <c>gpt-4o-mini</c> failing with a persistent 503 falls
/// back to <c>claude-haiku-4-5</c> (catalogue chain) for the OpenAI SDK, and <c>claude-haiku-4-5</c> to
/// <c>gpt-4o-mini</c> (team policy chain) for the Anthropic SDK. The fallback gets the translated body on its
/// provider's route with its credentials, the answer comes back in the caller's shape, each failed attempt is its own
/// ledger event and the answer is billed at the served model's prices.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class CrossDialectFallbackTests : IAsyncLifetime
{
    private const string Fault = "x-simulator-fault";
    private const string Claude = "claude-haiku-4-5";
    private const string Gpt = "gpt-4o-mini";

    private GatewayServer _server = null!;

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(new Dictionary<string, string?>
    {
        ["Resilience:Retry:MaxAttempts"] = "2",
        ["Resilience:Retry:BaseDelay"] = "00:00:00.02",
        ["Resilience:Retry:MaxDelay"] = "00:00:00.05",
        ["Resilience:Retry:RetryAfterCap"] = "00:00:20",
        [$"Models:{Gpt}:Fallbacks:0"] = Claude,
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    // ------------------------------------------------------------------ OpenAI SDK: gpt-4o-mini → Claude

    [Fact]
    public async Task OpenAISdk_Persistent503OnGpt_FallsBackToClaude_ChatCompletionShapeAndLedgerAtClaudePrices()
    {
        var (teamId, key) = await _server.CreateTeamWithKeyAsync("xf-oa-json");
        var capture = new CapturePolicy($"model={Gpt},status=503");

        ClientResult<ChatCompletion> result = await OpenAISdk(key, capture).CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Fall back across APIs.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 40 });

        var completion = result.Value;
        Assert.Equal(200, result.GetRawResponse().Status);
        Assert.Equal(Claude, completion.Model); // the served model, in the caller's chat.completion shape
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        Assert.Equal("3", capture.Attempts); // 2 on gpt-4o-mini, then Claude
        var requestId = capture.RequestId!;

        // The fallback attempt: the translated body on Anthropic's route with Anthropic's credentials.
        var upstream = UpstreamCall(requestId, "/v1/messages")!;
        Assert.Equal(GatewayServer.ProviderKey, upstream.GetHeader("x-api-key"));
        Assert.NotNull(upstream.GetHeader("anthropic-version"));
        Assert.Null(upstream.GetHeader("authorization"));
        var sent = JsonNode.Parse(upstream.BodyText)!;
        Assert.Equal(Claude, (string)sent["model"]!);
        Assert.Equal("You are terse.", (string)sent["system"]!);
        Assert.Equal(40, (int)sent["max_tokens"]!);

        var billed = await _server.WaitForEventAsync(requestId);
        Assert.Equal("ok", billed.GetProperty("status").GetString());
        Assert.Equal("anthropic", billed.GetProperty("provider").GetString());
        Assert.Equal(teamId, billed.GetProperty("teamId").GetString());
        AssertBilled(billed, Claude, completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.InputTokenDetails?.CachedTokenCount ?? 0);
        // Counted again for the fallback: the translated body with Claude's tokenizer, which is what Anthropic billed.
        Assert.Equal(completion.Usage.InputTokenCount, billed.GetProperty("inputTokensSent").GetInt32());
        await AssertFailedAttemptsAsync(requestId, Gpt, "openai", count: 2);
    }

    [Fact]
    public async Task OpenAISdk_Persistent503OnGpt_StreamedFallbackToClaude_ChatChunksWithUsageAndLedgerAgree()
    {
        var (_, key) = await _server.CreateTeamWithKeyAsync("xf-oa-sse");
        var capture = new CapturePolicy($"model={Gpt},status=503");
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        string? model = null;
        ChatFinishReason? finish = null;

        await foreach (var update in OpenAISdk(key, capture).CompleteChatStreamingAsync(
            [new UserChatMessage("Stream across APIs.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 30 })) // the SDK asks for stream usage itself
        {
            model ??= update.Model;
            finish ??= update.FinishReason;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.Equal(Claude, model);
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.NotNull(usage);
        Assert.Equal("3", capture.Attempts);
        var requestId = capture.RequestId!;
        var upstream = UpstreamCall(requestId, "/v1/messages")!;
        Assert.True(JsonNode.Parse(upstream.BodyText)!["stream"]!.GetValue<bool>());

        var billed = await _server.WaitForEventAsync(requestId);
        Assert.True(billed.GetProperty("stream").GetBoolean());
        Assert.False(billed.GetProperty("estimated").GetBoolean());
        Assert.Equal("anthropic", billed.GetProperty("provider").GetString());
        AssertBilled(billed, Claude, usage!.InputTokenCount, usage.OutputTokenCount, usage.InputTokenDetails?.CachedTokenCount ?? 0);
        await AssertFailedAttemptsAsync(requestId, Gpt, "openai", count: 2);
    }

    [Fact]
    public async Task OpenAISdk_StreamedFallbackToClaude_WithoutIncludeUsage_NoUsageChunkReachesTheClient()
    {
        // The gateway asks gpt-4o-mini for usage itself; the client did not, so Claude's translated stream has no usage chunk.
        var (teamId, key) = await _server.CreateTeamWithKeyAsync("xf-oa-sse-nousage");
        using var http = new HttpClient { BaseAddress = new Uri(_server.Address) };
        http.DefaultRequestHeaders.Add("Authorization", "Bearer " + key);
        http.DefaultRequestHeaders.Add(Fault, $"model={Gpt},status=503");
        var body = $$"""{"model":"{{Gpt}}","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"no usage please"}]}""";

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var sse = await response.Content.ReadAsStringAsync();

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("3", response.Headers.GetValues("x-tokengateway-attempts").Single());
        Assert.Contains($"\"model\":\"{Claude}\"", sse, StringComparison.Ordinal);
        Assert.DoesNotContain("\"usage\"", sse, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", sse.TrimEnd(), StringComparison.Ordinal);
        var billed = await _server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
        Assert.Equal(Claude, billed.GetProperty("model").GetString());
        Assert.True(billed.GetProperty("outputTokens").GetInt32() > 0);
        Assert.False(billed.GetProperty("estimated").GetBoolean());
        Assert.Equal(teamId, billed.GetProperty("teamId").GetString());
    }

    [Fact]
    public async Task OpenAISdk_RequestClaudeCannotTake_FallbackSkipped_SdkSeesTheLast503()
    {
        // frequency_penalty has no Anthropic equivalent: the translator refuses it, so Claude is not tried.
        var (_, key) = await _server.CreateTeamWithKeyAsync("xf-oa-refused");
        var capture = new CapturePolicy($"model={Gpt},status=503");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => OpenAISdk(key, capture).CompleteChatAsync(
            [new UserChatMessage("Not translatable.")], new ChatCompletionOptions { FrequencyPenalty = 0.5f }));

        Assert.Equal(503, ex.Status);
        Assert.Equal("2", capture.Attempts);
        Assert.Null(UpstreamCall(capture.RequestId!, "/v1/messages"));
    }

    [Fact]
    public async Task OpenAISdk_GatewayEnforcedSchema_CrossDialectFallbackSkipped()
    {
        // The gateway validates this answer against the schema in the client's API; a translated answer would escape that.
        var (_, key) = await _server.CreateTeamWithKeyAsync("xf-oa-schema");
        var capture = new CapturePolicy($"model={Gpt},status=503");
        var schema = BinaryData.FromString("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => OpenAISdk(key, capture).CompleteChatAsync(
            [new UserChatMessage("Invent a name.")],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", schema, jsonSchemaIsStrict: true) }));

        Assert.Equal(503, ex.Status);
        Assert.Equal("2", capture.Attempts);
        Assert.Null(UpstreamCall(capture.RequestId!, "/v1/messages"));
    }

    [Fact]
    public async Task OpenAISdk_ClaudeFallbackFailsToo_ItsErrorIsTranslatedIntoTheOpenAIEnvelope()
    {
        var (_, key) = await _server.CreateTeamWithKeyAsync("xf-oa-allfail");
        var capture = new CapturePolicy("status=503"); // every model

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => OpenAISdk(key, capture).CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(503, ex.Status);
        Assert.Equal("4", capture.Attempts); // 2 per model
        var error = JsonNode.Parse(ex.GetRawResponse()!.Content.ToString())!["error"]!;
        Assert.NotNull(error["message"]);
        Assert.NotNull(error["type"]); // the OpenAI envelope, not Anthropic's {"type":"error","error":{…}}
        var last = await _server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal(Claude, last.GetProperty("model").GetString());
        Assert.Equal(0m, last.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task TeamNotAllowedClaude_NoCrossDialectFallback()
    {
        var (teamId, key) = await _server.CreateTeamWithKeyAsync("xf-oa-deny");
        (await _server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { models = new { deny = new[] { Claude } } })).EnsureSuccessStatusCode();
        var capture = new CapturePolicy($"model={Gpt},status=503");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => OpenAISdk(key, capture).CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(503, ex.Status);
        Assert.Equal("2", capture.Attempts);
    }

    // ------------------------------------------------------------------ Anthropic SDK: Claude → gpt-4o-mini (team policy)

    [Fact]
    public async Task AnthropicSdk_Persistent503OnClaude_FallsBackToGpt_MessageShapeAndLedgerAtGptPrices()
    {
        var (teamId, key) = await TeamWithPolicyFallbackAsync("xf-an-json");
        var capture = new CaptureHandler($"model={Claude},status=503");

        var message = await AnthropicSdk(key, capture).Messages.Create(new MessageCreateParams
        {
            Model = Claude,
            MaxTokens = 40,
            System = "You are terse.",
            Messages = [new UserMessageParam("Fall back the other way.")],
        });

        Assert.Equal(Gpt, message.Model.Raw());
        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.False(string.IsNullOrWhiteSpace(text.Text));
        Assert.Equal(StopReason.EndTurn, message.StopReason?.Value());
        Assert.Equal("3", capture.Attempts);
        var requestId = capture.RequestId!;
        var upstream = UpstreamCall(requestId, "/v1/chat/completions")!;
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.GetHeader("authorization"));
        Assert.Null(upstream.GetHeader("anthropic-version"));
        Assert.Null(upstream.GetHeader("x-api-key"));
        var sent = JsonNode.Parse(upstream.BodyText)!;
        Assert.Equal(Gpt, (string)sent["model"]!);
        Assert.Equal("system", (string)sent["messages"]![0]!["role"]!);

        var billed = await _server.WaitForEventAsync(requestId);
        Assert.Equal("openai", billed.GetProperty("provider").GetString());
        Assert.Equal(teamId, billed.GetProperty("teamId").GetString());
        var cached = (int)(message.Usage.CacheReadInputTokens ?? 0);
        AssertBilled(billed, Gpt, (int)message.Usage.InputTokens + cached + (int)(message.Usage.CacheCreationInputTokens ?? 0), (int)message.Usage.OutputTokens, cached);
        await AssertFailedAttemptsAsync(requestId, Claude, "anthropic", count: 2);
    }

    [Fact]
    public async Task AnthropicSdk_Persistent503OnClaude_StreamedFallbackToGpt_WellFormedEventsAndLedgerAgree()
    {
        var (_, key) = await TeamWithPolicyFallbackAsync("xf-an-sse");
        var capture = new CaptureHandler($"model={Claude},status=503");
        var text = new StringBuilder();
        long? input = null, output = null, cached = null;
        string? model = null;
        var starts = 0;
        var stops = 0;

        await foreach (var ev in AnthropicSdk(key, capture).Messages.CreateStreaming(new MessageCreateParams
        {
            Model = Claude,
            MaxTokens = 30,
            Messages = [new UserMessageParam("Stream the other way.")],
        }))
        {
            if (ev.TryPickStart(out var start))
            {
                starts++;
                model = start.Message.Model.Raw();
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
        Assert.Equal(Gpt, model);
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.Equal("3", capture.Attempts);
        var requestId = capture.RequestId!;
        var upstream = JsonNode.Parse(UpstreamCall(requestId, "/v1/chat/completions")!.BodyText)!;
        Assert.True(upstream["stream_options"]!["include_usage"]!.GetValue<bool>()); // the translated request asks for usage

        var billed = await _server.WaitForEventAsync(requestId);
        Assert.True(billed.GetProperty("stream").GetBoolean());
        Assert.False(billed.GetProperty("estimated").GetBoolean());
        AssertBilled(billed, Gpt, (int)(input!.Value + (cached ?? 0)), (int)output!.Value, (int)(cached ?? 0));
        await AssertFailedAttemptsAsync(requestId, Claude, "anthropic", count: 2);
    }

    // ------------------------------------------------------------------ helpers

    private async Task<(string TeamId, string Key)> TeamWithPolicyFallbackAsync(string name)
    {
        var (teamId, key) = await _server.CreateTeamWithKeyAsync(name);
        (await _server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { fallbacks = new Dictionary<string, string[]> { [Claude] = [Gpt] } })).EnsureSuccessStatusCode();
        return (teamId, key);
    }

    /// <summary>The simulator's record of the gateway's call for <paramref name="requestId"/> on <paramref name="path"/>, or null.</summary>
    private TokenGateway.Simulator.RecordedRequest? UpstreamCall(string requestId, string path) =>
        _server.Simulator.Recorder.FindAllByHeader("x-tokengateway-request-id", requestId).LastOrDefault(r => r.PathAndQuery == path);

    private async Task AssertFailedAttemptsAsync(string requestId, string model, string provider, int count)
    {
        for (var n = 1; n <= count; n++)
        {
            var attempt = await _server.WaitForEventAsync($"{requestId}_attempt{n}");
            Assert.Equal(requestId, attempt.GetProperty("parentRequestId").GetString());
            Assert.Equal(n == 1 ? "initial" : "retry", attempt.GetProperty("attempt").GetString());
            Assert.Equal(model, attempt.GetProperty("model").GetString());
            Assert.Equal(provider, attempt.GetProperty("provider").GetString());
            Assert.Equal("upstream_503", attempt.GetProperty("errorCode").GetString());
            Assert.Equal(0m, attempt.GetProperty("costUsd").GetDecimal());
        }
    }

    private void AssertBilled(JsonElement e, string model, int input, int output, int cached)
    {
        Assert.Equal(model, e.GetProperty("model").GetString());
        Assert.Equal(input, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(output, e.GetProperty("outputTokens").GetInt32());
        Assert.Equal(cached, e.GetProperty("cachedInputTokens").GetInt32());
        var catalog = _server.Services.GetRequiredService<ModelCatalog>();
        Assert.True(catalog.TryResolve(model, out var card));
        var p = card.Prices;
        var cost = ((input - cached) * p.Input!.Value + cached * (p.CachedInput ?? p.Input.Value) + output * p.Output!.Value) / 1_000_000m;
        Assert.True(cost > 0m);
        Assert.Equal(cost, e.GetProperty("costUsd").GetDecimal());
    }

    private ChatClient OpenAISdk(string key, CapturePolicy capture)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = _server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0), // the gateway retries, not the SDK
            NetworkTimeout = TimeSpan.FromSeconds(60),
        };
        options.AddPolicy(capture, PipelinePosition.PerCall);
        return new ChatClient(Gpt, new ApiKeyCredential(key), options);
    }

    private AnthropicClient AnthropicSdk(string key, CaptureHandler capture) => new()
    {
        ApiKey = key,
        BaseUrl = _server.Address.TrimEnd('/'),
        MaxRetries = 0,
        ResponseValidation = true,
        HttpClient = new HttpClient(capture),
    };

    /// <summary>Adds the fault header to an OpenAI SDK call and keeps the gateway's request id and attempts header.</summary>
    private sealed class CapturePolicy(string fault) : PipelinePolicy
    {
        public string? RequestId { get; private set; }

        public string? Attempts { get; private set; }

        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(Fault, fault);
            ProcessNext(message, pipeline, currentIndex);
            Capture(message);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(Fault, fault);
            await ProcessNextAsync(message, pipeline, currentIndex);
            Capture(message);
        }

        private void Capture(PipelineMessage message)
        {
            if (message.Response is { } response)
            {
                RequestId = response.Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id : null;
                Attempts = response.Headers.TryGetValue("x-tokengateway-attempts", out var n) ? n : null;
            }
        }
    }

    /// <summary>The same for the Anthropic SDK, as its HTTP handler.</summary>
    private sealed class CaptureHandler(string fault) : DelegatingHandler(new SocketsHttpHandler())
    {
        public string? RequestId { get; private set; }

        public string? Attempts { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation(Fault, fault);
            var response = await base.SendAsync(request, cancellationToken);
            RequestId = response.Headers.TryGetValues("x-tokengateway-request-id", out var id) ? id.First() : null;
            Attempts = response.Headers.TryGetValues("x-tokengateway-attempts", out var n) ? n.First() : null;
            return response;
        }
    }
}
