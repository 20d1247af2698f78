using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests.Insights;

/// <summary>
/// <c>GET /admin/teams/{id}/insights</c> after real traffic through the official OpenAI and Anthropic SDKs: a team with
/// compact, dedupe and cache hints off, 20 tools per request of which two are ever called, old pretty-printed tool
/// results, <c>max_tokens</c> 4000 for 40-token answers, and a long Anthropic system prompt repeated without
/// <c>cache_control</c>. Every sampled request is shadow-evaluated (rate 1). Each recommendation's dollar figure is
/// recomputed here from the ledger events (spend per model in the stated window × 30 ÷ window days × the share the
/// change saves), with the saved tokens measured independently through the dry-run endpoint on the bodies the SDKs
/// sent, and compared within 1 % (3 % for the prompt-cache prefix, whose tokens the test derives by subtraction).
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class InsightsTests(ITestOutputHelper output)
{
    private const int ChatRequests = 24;
    private const int ClaudeRequests = 12;
    private const int DeclaredTools = 20;
    private const int MaxTokens = 4000;
    private const string ChatModel = "gpt-4o";
    private const string ClaudeModel = "claude-sonnet-4";

    internal static readonly Dictionary<string, string?> Settings = new()
    {
        ["Insights:ShadowSampleRate"] = "1",
        ["Insights:QueueCapacity"] = "1000",
        ["Insights:MinSamples"] = "10",
    };

    [Fact]
    public async Task Insights_AfterSdkTraffic_EachEstimateMatchesTheLedger()
    {
        await using var server = await GatewayServer.StartAsync(Settings);
        var (teamId, key) = await server.CreateTeamWithKeyAsync("insights");
        var teamPolicy = new JsonObject
        {
            ["optimization"] = new JsonObject { ["compact"] = false, ["dedupe"] = false, ["cacheHints"] = false },
        };
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", teamPolicy)).EnsureSuccessStatusCode();

        var traffic = await SendTrafficAsync(server, key);
        var report = await WaitForSamplesAsync(server, teamId, ChatRequests + ClaudeRequests);
        output.WriteLine(report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        // The window the response states; the ledger events in it.
        var from = DateTimeOffset.Parse(report["window"]!["from"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var to = DateTimeOffset.Parse(report["window"]!["to"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var monthFactor = 30m / (decimal)(to - from).TotalDays;
        var events = await LedgerEventsAsync(server, teamId, from, to);
        Assert.Equal(ChatRequests + ClaudeRequests, events.Count);
        var spend = events.GroupBy(e => e.Model).ToDictionary(g => g.Key, g => g.Sum(e => e.CostUsd));
        var requests = events.GroupBy(e => e.Model).ToDictionary(g => g.Key, g => (long)g.Count());
        Assert.Equal(spend.Values.Sum(), report["volume"]!["spendUsd"]!.GetValue<decimal>());

        // Every request was sampled (rate 1), so the sampled cost per model is the ledger's ok cost per model.
        var sampledCost = events.Where(e => e.Status == "ok").GroupBy(e => e.Model).ToDictionary(g => g.Key, g => g.Sum(e => e.CostUsd));
        decimal Monthly(string model, decimal sampledSaving) => sampledSaving / sampledCost[model] * spend[model] * monthFactor;

        var catalog = server.Services.GetRequiredService<ModelCatalog>();
        var costs = server.Services.GetRequiredService<CostCalculator>();
        var chatPrices = Prices(catalog, costs, ChatModel);
        var claudePrices = Prices(catalog, costs, ClaudeModel);

        // Reference measurements through the dry run, on a second team that sends nothing upstream.
        var (refTeam, refKey) = await server.CreateTeamWithKeyAsync("reference");
        using var dry = server.CreateClient(refKey);
        await SetPolicyAsync(server, refTeam, new { optimization = new { cacheHints = false, curate = new { enabled = true } } });
        var stageTokens = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var body in traffic.ChatBodies)
        {
            foreach (var stage in (await DryRunAsync(dry, body, anthropic: false))["stages"]!.AsArray())
            {
                var name = stage!["name"]!.GetValue<string>();
                stageTokens[name] = stageTokens.GetValueOrDefault(name) + stage["tokensSaved"]!.GetValue<int>();
            }
        }

        await SetPolicyAsync(server, refTeam, new
        {
            optimization = new
            {
                tools = false, compact = false, dedupe = false, curate = false, cacheHints = false,
                trim = new { staleToolResults = new { keepRecent = 4, minTokens = 200 } },
            },
        });
        long staleTokens = 0;
        long toolTokens = 0;
        foreach (var body in traffic.ChatBodies)
        {
            var full = await DryRunAsync(dry, body, anthropic: false);
            staleTokens += full["stages"]!.AsArray().Where(s => s!["name"]!.GetValue<string>() == "trim").Sum(s => s!["tokensSaved"]!.GetValue<int>());
            var bare = JsonNode.Parse(body)!.AsObject();
            bare.Remove("tools");
            bare.Remove("tool_choice");
            toolTokens += full["tokensReceived"]!.GetValue<int>() - (await DryRunAsync(dry, Encoding.UTF8.GetBytes(bare.ToJsonString()), anthropic: false))["tokensReceived"]!.GetValue<int>();
        }

        var recommendations = report["recommendations"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var estimates = recommendations.Select(r => r["estimatedUsdPerMonth"]!.GetValue<decimal>()).ToList();
        Assert.Equal(estimates.OrderByDescending(e => e), estimates); // ranked

        // (a) stages that are off: compact and dedupe (their tokens priced at gpt-4o's input price).
        foreach (var stage in new[] { "compact", "dedupe" })
        {
            Assert.True(stageTokens.GetValueOrDefault(stage) > 0, $"the traffic gives {stage} something to save");
            var item = Find(recommendations, "stage." + stage);
            Assert.Equal(stageTokens[stage], item["evidence"]!["tokensSaved"]!.GetValue<long>());
            AssertClose(Monthly(ChatModel, stageTokens[stage] * chatPrices.Input / 1_000_000m), item, 0.01m);
            Assert.True(item["policy"]!["optimization"]![stage]!["enabled"]!.GetValue<bool>());
        }

        // (c) 20 tools declared, 2 ever called → maxTools 4, saving (20 − 4) / 20 of the tool-definition tokens.
        var tools = Find(recommendations, "tools");
        Assert.Equal(4, tools["policy"]!["optimization"]!["tools"]!["maxTools"]!.GetValue<int>());
        Assert.Equal(2, tools["evidence"]!["distinctToolsCalled"]!.GetValue<int>());
        Assert.Equal(toolTokens, tools["evidence"]!["toolDefinitionTokens"]!.GetValue<long>());
        AssertClose(Monthly(ChatModel, toolTokens * (DeclaredTools - 4m) / DeclaredTools * chatPrices.Input / 1_000_000m), tools, 0.01m);

        // (e) stale tool results: what trim.staleToolResults saved in the dry run.
        Assert.True(staleTokens > 0);
        var stale = Find(recommendations, "staleToolResults");
        Assert.Equal(staleTokens, stale["evidence"]!["tokensSaved"]!.GetValue<long>());
        AssertClose(Monthly(ChatModel, staleTokens * chatPrices.Input / 1_000_000m), stale, 0.01m);
        Assert.Equal(4, stale["policy"]!["optimization"]!["trim"]!["staleToolResults"]!["keepRecent"]!.GetValue<int>());

        // …and the share of spend in tool results, from the ledger events' token anatomy at each model's input price.
        Assert.All(events, e => Assert.NotNull(e.ToolResultTokens));
        var toolResultsUsd = events.Sum(e => e.ToolResultTokens!.Value * (e.Model == ChatModel ? chatPrices.Input : claudePrices.Input) / 1_000_000m);
        Assert.True(toolResultsUsd > 0);
        Assert.Equal((double)(toolResultsUsd / events.Sum(e => e.CostUsd)), stale["evidence"]!["toolResultsShareOfSpend"]!.GetValue<double>(), 5);

        // (d) the Anthropic system prompt: the first request writes the prefix, every later one misses it.
        var claudeEvents = events.Where(e => e.Model == ClaudeModel).ToList();
        Assert.All(claudeEvents, e => Assert.Equal(0, e.CachedInputTokens));
        var claudeBody = traffic.ClaudeBodies[0];
        var withSystem = (await DryRunAsync(dry, claudeBody, anthropic: true))["tokensReceived"]!.GetValue<int>();
        var noSystem = JsonNode.Parse(claudeBody)!.AsObject();
        noSystem.Remove("system");
        var prefixTokens = withSystem - (await DryRunAsync(dry, Encoding.UTF8.GetBytes(noSystem.ToJsonString()), anthropic: true))["tokensReceived"]!.GetValue<int>();
        Assert.True(prefixTokens >= 1024, $"the system prompt must reach the cache minimum ({prefixTokens})");
        var missed = (ClaudeRequests - 1) * prefixTokens * (claudePrices.Input - claudePrices.CachedInput) / 1_000_000m;
        var premium = prefixTokens * (claudePrices.CacheWrite5m - claudePrices.Input) / 1_000_000m;
        var cache = Find(recommendations, "promptCache");
        Assert.Equal(ClaudeRequests - 1, cache["evidence"]!["repeats"]!.GetValue<long>());
        AssertClose(Monthly(ClaudeModel, missed - premium), cache, 0.03m);
        Assert.True(cache["policy"]!["optimization"]!["cacheHints"]!["enabled"]!.GetValue<bool>());

        // (b) max_tokens 4000 for 40-token answers: the adaptive rule gives max(40 × 1.2, 256) = 256 for both models;
        // no answer is above it (spend saved 0), and each request would reserve 3744 fewer output tokens.
        var maxTokens = Find(recommendations, "maxTokens");
        foreach (var (model, prices) in new[] { (ChatModel, chatPrices), (ClaudeModel, claudePrices) })
        {
            var outputs = events.Where(e => e.Model == model).Select(e => e.OutputTokens).Order().ToArray();
            var p99 = outputs[(int)Math.Ceiling(0.99 * outputs.Length) - 1];
            Assert.Equal(p99, maxTokens["evidence"]!["models"]![model]!["p99OutputTokens"]!.GetValue<int>());
            Assert.Equal(Math.Max((int)Math.Ceiling(p99 * 1.2), 256), maxTokens["evidence"]!["models"]![model]!["recommendedCap"]!.GetValue<int>());
        }

        var expectedCut = events.Sum(e => Math.Max(0, e.OutputTokens - 256) * (e.Model == ChatModel ? chatPrices.Output : claudePrices.Output) / 1_000_000m);
        Assert.Equal(0m, expectedCut);
        Assert.Equal(0m, maxTokens["estimatedUsdPerMonth"]!.GetValue<decimal>());
        var expectedReserved = ((MaxTokens - 256) * chatPrices.Output / 1_000_000m * requests[ChatModel] * monthFactor)
            + ((MaxTokens - 256) * claudePrices.Output / 1_000_000m * requests[ClaudeModel] * monthFactor);
        AssertWithin(expectedReserved, maxTokens["reservedUsdPerMonth"]!.GetValue<decimal>(), 0.01m, "maxTokens reserved");
        Assert.True(maxTokens["policy"]!["maxTokens"]!["adaptive"]!["enabled"]!.GetValue<bool>());

        // The shadow cost is measured and reported.
        var sampling = report["sampling"]!;
        Assert.Equal(ChatRequests + ClaudeRequests, sampling["teamSamples"]!.GetValue<long>());
        Assert.Equal(0, sampling["dropped"]!.GetValue<long>());
        Assert.True(sampling["shadowCpuMicrosPerSample"]!.GetValue<double>() > 0);
        Assert.True(sampling["shadowCpuMicrosRecentMedian"]!.GetValue<long>() > 0);
        output.WriteLine($"shadow CPU per sample: mean {sampling["shadowCpuMicrosPerSample"]} µs, median of the last 256 {sampling["shadowCpuMicrosRecentMedian"]} µs ({sampling["cpuClock"]} clock)");

        // The live requests were not changed: compact was off, so the upstream bodies kept the pretty-printed results.
        Assert.Contains("\\n  ", server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", traffic.ChatRequestIds[0])!.BodyText, StringComparison.Ordinal);

        // Every fragment applies as a policy; once applied, its recommendation is gone.
        var merged = teamPolicy.DeepClone().AsObject();
        foreach (var item in recommendations)
        {
            Merge(merged, item["policy"]!.AsObject());
        }

        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", merged)).EnsureSuccessStatusCode();
        var after = await server.Admin.GetFromJsonAsync<JsonObject>($"/admin/teams/{teamId}/insights");
        Assert.Empty(after!["recommendations"]!.AsArray());
    }

    [Fact]
    public async Task Insights_AfterRestart_SampledObservationsAreRestored()
    {
        var data = Path.Combine(Path.GetTempPath(), "tg-it-insights-" + Guid.NewGuid().ToString("N"));
        var settings = new Dictionary<string, string?>(Settings) { ["Storage:DataDirectory"] = data };
        try
        {
            string teamId;
            JsonObject before;
            await using (var first = await GatewayServer.StartAsync(settings))
            {
                (teamId, var key) = await first.CreateTeamWithKeyAsync("insights-restart");
                (await first.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
                    new { optimization = new { compact = false, dedupe = false, cacheHints = false } })).EnsureSuccessStatusCode();
                await SendTrafficAsync(first, key);
                before = await WaitForSamplesAsync(first, teamId, ChatRequests + ClaudeRequests);
                Assert.True(before["sampling"]!["persisted"]!.GetValue<bool>());
            }

            Assert.True(File.Exists(Path.Combine(data, "insights-observations.json")));
            await using var second = await GatewayServer.StartAsync(settings);
            var after = (await second.Admin.GetFromJsonAsync<JsonObject>($"/admin/teams/{teamId}/insights"))!;
            Assert.Equal(ChatRequests + ClaudeRequests, after["sampling"]!["teamSamples"]!.GetValue<long>());
            Assert.Equal(0, after["sampling"]!["evaluated"]!.GetValue<long>()); // nothing sampled by this process yet
            var expected = before["recommendations"]!.AsArray().Select(r => (r!["id"]!.GetValue<string>(), r["estimatedUsdPerMonth"]!.GetValue<decimal>()));
            var restored = after["recommendations"]!.AsArray().Select(r => (r!["id"]!.GetValue<string>(), r["estimatedUsdPerMonth"]!.GetValue<decimal>()));
            Assert.Equal(expected, restored);
        }
        finally
        {
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
                // best effort, as GatewayServer does for its own directory
            }
        }
    }

    [Fact]
    public async Task Insights_UnknownTeam_404Problem()
    {
        await using var server = await GatewayServer.StartAsync(Settings);
        using var response = await server.Admin.GetAsync("/admin/teams/no-such-team/insights");
        Assert.Equal(404, (int)response.StatusCode);
        Assert.Equal("not_found", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());
        using var anonymous = new HttpClient { BaseAddress = new Uri(server.Address) };
        Assert.Equal(401, (int)(await anonymous.GetAsync($"/admin/teams/{server.TeamId}/insights")).StatusCode);
    }

    internal sealed record Traffic(List<byte[]> ChatBodies, List<byte[]> ClaudeBodies, List<string> ChatRequestIds);

    /// <summary>The traffic both tests use: an agent conversation on gpt-4o and a long system prompt on Claude, via the SDKs.</summary>
    internal static async Task<Traffic> SendTrafficAsync(GatewayServer server, string key)
    {
        var recorder = new BodyRecorder("output-tokens=40");
        var chat = new ChatClient(ChatModel, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            NetworkTimeout = TimeSpan.FromSeconds(30),
            Transport = new HttpClientPipelineTransport(new HttpClient(recorder)),
        });
        var options = new ChatCompletionOptions { MaxOutputTokenCount = MaxTokens };
        for (var t = 0; t < DeclaredTools; t++)
        {
            options.Tools.Add(Tool(t));
        }

        for (var i = 0; i < ChatRequests; i++)
        {
            var answer = await chat.CompleteChatAsync(Conversation(i), options);
            Assert.Equal(40, answer.Value.Usage.OutputTokenCount);
        }

        var chatBodies = recorder.Bodies.ToList();
        var chatIds = recorder.RequestIds.ToList();
        recorder.Clear();
        var claude = new AnthropicClient
        {
            ApiKey = key,
            BaseUrl = server.Address.TrimEnd('/'),
            MaxRetries = 0,
            HttpClient = new HttpClient(recorder),
        };
        for (var i = 0; i < ClaudeRequests; i++)
        {
            var message = await claude.Messages.Create(new MessageCreateParams
            {
                Model = ClaudeModel,
                MaxTokens = MaxTokens,
                System = LongSystemPrompt,
                Messages = [new UserMessageParam { Content = $"Question {i}: which runbook covers a failed deploy?" }],
            });
            Assert.Equal(40, message.Usage.OutputTokens);
        }

        foreach (var id in chatIds.Concat(recorder.RequestIds))
        {
            await server.WaitForEventAsync(id);
        }

        return new Traffic(chatBodies, recorder.Bodies.ToList(), chatIds);
    }

    internal static async Task<JsonObject> WaitForSamplesAsync(GatewayServer server, string teamId, int samples)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var report = (await server.Admin.GetFromJsonAsync<JsonObject>($"/admin/teams/{teamId}/insights"))!;
            if (report["sampling"]!["teamSamples"]!.GetValue<long>() >= samples)
            {
                return report;
            }

            Assert.True(DateTime.UtcNow < deadline, $"only {report["sampling"]!["teamSamples"]} of {samples} samples were evaluated");
            await Task.Delay(50);
        }
    }

    private static List<ChatMessage> Conversation(int i)
    {
        List<ChatMessage> messages =
        [
            new SystemChatMessage("You are an operations agent. Use the tools to answer."),
            new UserChatMessage("Background for this session:\n\n" + RepeatedBrief + "\n\nPlan the rollout review."),
        ];
        for (var turn = 0; turn < 6; turn++)
        {
            var id = $"call_{turn}";
            var name = turn % 2 == 0 ? "get_deploy_status" : "search_runbooks";
            messages.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString($$"""{"service":"svc-{{turn}}"}"""))]));
            messages.Add(new ToolChatMessage(id, PrettyResult(turn)));
        }

        messages.Add(new UserChatMessage($"Request {i}: summarise the findings. For reference, again:\n\n" + RepeatedBrief));
        return messages;
    }

    private static ChatTool Tool(int t)
    {
        var name = t switch { 0 => "get_deploy_status", 1 => "search_runbooks", _ => $"tool_{t:00}_operation" };
        return ChatTool.CreateFunctionTool(name,
            $"Operation {t}: reads or changes the state of service resources of kind {t} in the production estate, with audit logging and retries.",
            BinaryData.FromString($$$"""{"type":"object","properties":{"service":{"type":"string","description":"Service name, e.g. svc-{{{t}}}"},"region":{"type":"string","description":"Region code"},"dry_run":{"type":"boolean","description":"Only report what would change"}},"required":["service"]}"""));
    }

    private static string PrettyResult(int turn)
    {
        var rows = Enumerable.Range(0, 12).Select(r => new { host = $"host-{turn}-{r}", status = r % 3 == 0 ? "degraded" : "healthy", latency_ms = 20 + r, version = $"1.{turn}.{r}" });
        return JsonSerializer.Serialize(new { service = $"svc-{turn}", checked_at = "2026-12-01T10:00:00Z", instances = rows }, new JsonSerializerOptions { WriteIndented = true });
    }

    private static readonly string RepeatedBrief = string.Join(" ", Enumerable.Range(0, 8).Select(s =>
        $"Section {s}: the rollout of the payments service proceeds region by region, each stage gated on error budgets, latency objectives and a manual sign-off by the on-call engineer."));

    private static readonly string LongSystemPrompt = "You are the operations assistant of the platform team.\n\n" + string.Join("\n", Enumerable.Range(0, 60).Select(s =>
        $"Runbook {s}: when alert {s} fires, check the dashboards for service group {s}, confirm the blast radius, page the owning team, and record every step in the incident channel."));

    private static (decimal Input, decimal Output, decimal CachedInput, decimal CacheWrite5m) Prices(ModelCatalog catalog, CostCalculator costs, string model)
    {
        Assert.True(catalog.TryResolve(model, out var card));
        Assert.True(costs.TryGetEffectivePrices(card!, out var p));
        return (p.Input, p.Output, p.CachedInput, p.CacheWrite5m);
    }

    private static async Task SetPolicyAsync(GatewayServer server, string teamId, object policy) =>
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", policy)).EnsureSuccessStatusCode();

    private static async Task<JsonObject> DryRunAsync(HttpClient client, byte[] body, bool anthropic)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync("/v1/tokengateway/optimize" + (anthropic ? "?dialect=anthropic" : ""), content);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    internal sealed record LedgerEvent(string Model, string Status, decimal CostUsd, int OutputTokens, int CachedInputTokens, int? ToolResultTokens);

    internal static async Task<List<LedgerEvent>> LedgerEventsAsync(GatewayServer server, string teamId, DateTimeOffset from, DateTimeOffset to)
    {
        var query = $"teamId={teamId}&from={Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(to.ToString("O", CultureInfo.InvariantCulture))}";
        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/admin/usage/recent?limit=1000&" + query);
        return page.GetProperty("data").EnumerateArray().Select(e => new LedgerEvent(
            e.GetProperty("model").GetString()!, e.GetProperty("status").GetString()!, e.GetProperty("costUsd").GetDecimal(),
            e.GetProperty("outputTokens").GetInt32(), e.GetProperty("cachedInputTokens").GetInt32(),
            e.TryGetProperty("anatomy", out var a) && a.ValueKind == JsonValueKind.Object ? a.GetProperty("toolResults").GetInt32() : null)).ToList();
    }

    private static JsonObject Find(List<JsonObject> recommendations, string id) =>
        recommendations.SingleOrDefault(r => r["id"]!.GetValue<string>() == id)
        ?? throw new Xunit.Sdk.XunitException($"no '{id}' recommendation among: {string.Join(", ", recommendations.Select(r => r["id"]))}");

    private static void AssertClose(decimal expected, JsonObject item, decimal tolerance) =>
        AssertWithin(expected, item["estimatedUsdPerMonth"]!.GetValue<decimal>(), tolerance, item["id"]!.GetValue<string>());

    private static void AssertWithin(decimal expected, decimal actual, decimal tolerance, string what)
    {
        Assert.True(expected > 0, $"{what}: the expected figure must be positive ({expected})");
        Assert.True(Math.Abs(actual - expected) <= expected * tolerance, $"{what}: estimate {actual} vs ledger {expected} (tolerance {tolerance:P0})");
    }

    private static void Merge(JsonObject target, JsonObject fragment)
    {
        foreach (var (name, value) in fragment.ToList())
        {
            if (value is JsonObject child && target[name] is JsonObject existing)
            {
                Merge(existing, child);
            }
            else
            {
                target[name] = value?.DeepClone();
            }
        }
    }

    /// <summary>Adds the simulator fault header and records each request body and the gateway's request id.</summary>
    internal sealed class BodyRecorder(string fault) : DelegatingHandler(new SocketsHttpHandler())
    {
        private readonly ConcurrentQueue<byte[]> _bodies = new();
        private readonly ConcurrentQueue<string> _ids = new();

        public IEnumerable<byte[]> Bodies => _bodies;

        public IEnumerable<string> RequestIds => _ids;

        public void Clear()
        {
            _bodies.Clear();
            _ids.Clear();
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("x-simulator-fault", fault);
            if (request.Content is { } content)
            {
                await content.LoadIntoBufferAsync(cancellationToken);
                _bodies.Enqueue(await content.ReadAsByteArrayAsync(cancellationToken));
            }

            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("x-tokengateway-request-id", out var ids))
            {
                _ids.Enqueue(ids.First());
            }

            return response;
        }
    }
}
