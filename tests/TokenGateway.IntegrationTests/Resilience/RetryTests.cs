using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13 through the official OpenAI SDK (its own retries off): retries of the same model before any byte reached
/// the client, <c>x-tokengateway-attempts</c>, one ledger event per attempt linked by <c>parentRequestId</c>, the
/// last provider error after the last attempt, <c>Retry-After</c> up to the cap, circuit-breaker fail fast and hard
/// budgets across retries.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class RetryTests(ITestOutputHelper output)
{
    private const string Fault = ResilienceTestSettings.Fault;

    private static Dictionary<string, string?> Retries(int maxAttempts = 3, string cap = "00:00:20")
    {
        var settings = ResilienceTestSettings.Retries(maxAttempts);
        settings["Resilience:Retry:RetryAfterCap"] = cap;
        return settings;
    }

    private static ChatClient Sdk(GatewayServer server, string? fault, string? key = null, string model = "gpt-4o-mini")
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0), // the gateway retries, not the SDK
            NetworkTimeout = TimeSpan.FromSeconds(60),
        };
        if (fault is not null)
        {
            options.AddPolicy(new HeaderPolicy(Fault, fault), PipelinePosition.PerCall);
        }

        return new ChatClient(model, new ApiKeyCredential(key ?? server.VirtualKey), options);
    }

    private static string Header(PipelineResponse response, string name) =>
        response.Headers.TryGetValue(name, out var value) ? value! : throw new InvalidOperationException($"No {name} header.");

    private static string Scenario() => ResilienceTestSettings.Scenario();

    [Fact]
    public async Task Transient503Twice_SdkGets200WithThreeAttemptsAndOneBilledAnswer()
    {
        await using var server = await GatewayServer.StartAsync(Retries());
        var watch = Stopwatch.StartNew();

        var result = await Sdk(server, $"scenario={Scenario()},first=2,status=503").CompleteChatAsync([new UserChatMessage("hello")]);

        watch.Stop();
        var raw = result.GetRawResponse();
        Assert.Equal(200, raw.Status);
        Assert.Equal("3", Header(raw, "x-tokengateway-attempts"));
        Assert.False(string.IsNullOrEmpty(result.Value.Content[0].Text));
        // The simulator's 503 carries Retry-After: 1, within the cap: waited exactly, twice.
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.9), $"took {watch.Elapsed}");

        var requestId = Header(raw, "x-tokengateway-request-id");
        var billed = await server.WaitForEventAsync(requestId);
        Assert.Equal("ok", billed.GetProperty("status").GetString());
        Assert.True(billed.GetProperty("costUsd").GetDecimal() > 0m);
        for (var n = 1; n <= 2; n++)
        {
            var attempt = await server.WaitForEventAsync($"{requestId}_attempt{n}");
            Assert.Equal(requestId, attempt.GetProperty("parentRequestId").GetString());
            Assert.Equal(n == 1 ? "initial" : "retry", attempt.GetProperty("attempt").GetString());
            Assert.Equal("upstream_503", attempt.GetProperty("errorCode").GetString());
            Assert.Equal(503, attempt.GetProperty("httpStatus").GetInt32());
            Assert.Equal(0m, attempt.GetProperty("costUsd").GetDecimal());
        }

        using var none = await server.Admin.GetAsync($"/admin/usage/{requestId}_attempt3");
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode); // the third attempt is the request's own event

        // One answer billed: the team spent exactly the request's cost.
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/budget");
        var cost = billed.GetProperty("costUsd").GetDecimal();
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), cost, cost + 0.000001m); // counters keep whole micro-dollars
    }

    [Fact]
    public async Task Persistent503_SdkSees503AfterTheConfiguredAttempts()
    {
        await using var server = await GatewayServer.StartAsync(Retries(maxAttempts: 2));

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, "status=503").CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(503, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.Equal("2", Header(raw, "x-tokengateway-attempts"));
        Assert.Equal("1", Header(raw, "Retry-After")); // the last provider error, with its Retry-After
        var requestId = Header(raw, "x-tokengateway-request-id");
        var final = await server.WaitForEventAsync(requestId);
        Assert.Equal("upstream_error", final.GetProperty("status").GetString());
        Assert.Equal(0m, final.GetProperty("costUsd").GetDecimal());
        var first = await server.WaitForEventAsync(requestId + "_attempt1");
        Assert.Equal("upstream_503", first.GetProperty("errorCode").GetString());
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/budget");
        Assert.Equal(0m, budget.GetProperty("spentUsd").GetDecimal());
    }

    [Fact]
    public async Task RateLimited429_RetryAfterWithinTheCapIsWaitedThenSucceeds()
    {
        await using var server = await GatewayServer.StartAsync(Retries());
        var watch = Stopwatch.StartNew();

        var result = await Sdk(server, $"scenario={Scenario()},first=1,status=429").CompleteChatAsync([new UserChatMessage("hello")]);

        watch.Stop();
        Assert.Equal("2", Header(result.GetRawResponse(), "x-tokengateway-attempts"));
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.95), $"took {watch.Elapsed}: Retry-After 1 s not honoured");
    }

    [Fact]
    public async Task RateLimited429_RetryAfterBeyondTheCapIsNotWaited()
    {
        await using var server = await GatewayServer.StartAsync(Retries(cap: "00:00:00.3"));
        await Sdk(server, fault: null).CompleteChatAsync([new UserChatMessage("warm-up")]); // the timing below excludes the first request's start-up
        var watch = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<ClientResultException>(() =>
            Sdk(server, $"scenario={Scenario()},first=1,status=429").CompleteChatAsync([new UserChatMessage("hello")]));

        watch.Stop();
        Assert.Equal(429, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.Equal("1", Header(raw, "Retry-After"));
        Assert.Equal("1", Header(raw, "x-tokengateway-attempts"));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(0.9), $"took {watch.Elapsed}: a Retry-After above the cap was waited out");

        // The key now cools down for 1 s, yet another caller's request still goes to the provider (no gateway 429).
        var next = await Sdk(server, fault: null).CompleteChatAsync([new UserChatMessage("another caller")]);
        Assert.Equal(200, next.GetRawResponse().Status);
    }

    [Fact]
    public async Task AnthropicOverloaded529_IsRetriedOnTheMessagesRoute()
    {
        await using var server = await GatewayServer.StartAsync(Retries());
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = ProxySurfaceTests.Json(new { model = "claude-sonnet-4-5", max_tokens = 20, messages = new[] { new { role = "user", content = "hi" } } }),
        };
        request.Headers.Add("x-api-key", server.VirtualKey);
        request.Headers.Add(Fault, $"scenario={Scenario()},first=1,status=529");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("x-tokengateway-attempts").Single());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("message", body.GetProperty("type").GetString());
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var first = await server.WaitForEventAsync(requestId + "_attempt1");
        Assert.Equal("upstream_529", first.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task ConnectFailure_IsRetriedOnAnotherDestination()
    {
        var settings = Retries();
        settings["Providers:openai:Destinations:1"] = "http://127.0.0.1:9"; // nothing listens: connection refused
        await using var server = await GatewayServer.StartAsync(settings);
        var client = Sdk(server, fault: null);

        var retried = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var result = await client.CompleteChatAsync([new UserChatMessage($"hello {i}")]);
            var raw = result.GetRawResponse();
            Assert.Equal(200, raw.Status);
            if (Header(raw, "x-tokengateway-attempts") == "2")
            {
                retried.Add(Header(raw, "x-tokengateway-request-id"));
            }
        }

        Assert.NotEmpty(retried); // the planner rotates destinations, so the dead one was tried
        var attempt = await server.WaitForEventAsync(retried[0] + "_attempt1");
        Assert.Equal("connect_failure", attempt.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task PersistentConnectFailure_502AfterTheConfiguredAttemptsWithTheAttemptsHeader()
    {
        var settings = Retries();
        settings["Providers:openai:Destinations:0"] = "http://127.0.0.1:9"; // nothing listens: connection refused
        await using var server = await GatewayServer.StartAsync(settings);

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, fault: null).CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(502, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.Equal("3", Header(raw, "x-tokengateway-attempts"));
        var requestId = Header(raw, "x-tokengateway-request-id");
        Assert.Equal("upstream_unavailable", (await server.WaitForEventAsync(requestId)).GetProperty("errorCode").GetString());
        for (var n = 1; n <= 2; n++)
        {
            Assert.Equal("connect_failure", (await server.WaitForEventAsync($"{requestId}_attempt{n}")).GetProperty("errorCode").GetString());
        }
    }

    [Fact]
    public async Task OpenBreaker_FailsFastWith503UpstreamUnavailableAndRetryAfter()
    {
        var settings = Retries(maxAttempts: 1);
        settings["Resilience:CircuitBreaker:MinimumThroughput"] = "2";
        settings["Resilience:CircuitBreaker:FailureRatio"] = "0.5";
        settings["Resilience:CircuitBreaker:BreakDuration"] = "00:00:30";
        await using var server = await GatewayServer.StartAsync(settings);
        for (var i = 0; i < 2; i++)
        {
            var failed = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, "status=503").CompleteChatAsync([new UserChatMessage("x")]));
            Assert.Equal(503, failed.Status);
        }

        var healthy = Sdk(server, fault: null);
        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => healthy.CompleteChatAsync([new UserChatMessage("hello")]));
        watch.Stop();

        Assert.Equal(503, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.Equal("upstream_unavailable", JsonDocument.Parse(raw.Content.ToString()).RootElement.GetProperty("error").GetProperty("code").GetString());
        var retryAfter = int.Parse(Header(raw, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 30);
        Assert.Equal("0", Header(raw, "x-tokengateway-attempts"));
        output.WriteLine($"fail-fast latency (client-observed): {watch.Elapsed.TotalMilliseconds:F1} ms");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"fail fast took {watch.Elapsed}");
        var e = await server.WaitForEventAsync(Header(raw, "x-tokengateway-request-id"));
        Assert.Equal("upstream_unavailable", e.GetProperty("errorCode").GetString());
        Assert.Equal(0m, e.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task StreamsCutAfterTheirFirstEvent_FeedTheBreaker_NotRetried()
    {
        var settings = Retries();
        settings["Resilience:CircuitBreaker:MinimumThroughput"] = "2";
        settings["Resilience:CircuitBreaker:FailureRatio"] = "0.5";
        settings["Resilience:CircuitBreaker:BreakDuration"] = "00:00:30";
        await using var server = await GatewayServer.StartAsync(settings);
        for (var i = 0; i < 3; i++)
        {
            var stream = Sdk(server, "reset-after=1").CompleteChatStreamingAsync([new UserChatMessage($"cut {i}")]);
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await foreach (var _ in stream)
                {
                }
            }); // never a clean end, and no retry after the first byte
        }

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, fault: null).CompleteChatAsync([new UserChatMessage("hello")]));
        Assert.Equal(503, ex.Status);
        Assert.Contains("upstream_unavailable", ex.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HardBudget_HoldsAcrossRetries()
    {
        await using var server = await GatewayServer.StartAsync(Retries());
        var (teamId, key) = await server.CreateTeamWithKeyAsync("retry-budget");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 40 };

        var probe = await Sdk(server, null, key).CompleteChatAsync([new UserChatMessage("budget probe")], options);
        var probeId = Header(probe.GetRawResponse(), "x-tokengateway-request-id");
        var probeCost = (await server.WaitForEventAsync(probeId)).GetProperty("costUsd").GetDecimal();
        var worstCase = (probe.Value.Usage.InputTokenCount * 0.15m + 40 * 0.6m) / 1_000_000m; // gpt-4o-mini list prices
        var limit = probeCost + (worstCase * 3.5m);
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { budget = new { usd = limit, period = "day", hard = true } })).EnsureSuccessStatusCode();

        // 16 concurrent requests, each failing once with 503 before it succeeds.
        var tasks = Enumerable.Range(0, 16).Select(async i =>
        {
            try
            {
                var r = await Sdk(server, $"scenario={Scenario()},first=1,status=503", key).CompleteChatAsync([new UserChatMessage($"spend {i}")], options);
                return r.GetRawResponse().Status;
            }
            catch (ClientResultException ex)
            {
                return ex.Status;
            }
        }).ToArray();
        var statuses = await Task.WhenAll(tasks);

        Assert.Contains(200, statuses);
        Assert.Contains(429, statuses); // the budget refused the rest at admission
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        var spent = budget.GetProperty("spentUsd").GetDecimal();
        Assert.True(spent <= limit, $"spent {spent} of {limit}");
    }

    [Fact]
    public async Task FailingModel_FallsBackToItsCatalogueChain_AndTheLedgerCarriesTheServedModel()
    {
        var settings = Retries(maxAttempts: 2);
        settings["Models:gpt-4o-mini:Fallbacks:0"] = "gpt-4.1-mini";
        await using var server = await GatewayServer.StartAsync(settings);

        var result = await Sdk(server, "model=gpt-4o-mini,status=503").CompleteChatAsync([new UserChatMessage("hello")]);

        var raw = result.GetRawResponse();
        Assert.Equal(200, raw.Status);
        Assert.Equal("gpt-4.1-mini", result.Value.Model); // the served model, in the body as usual
        Assert.Equal("3", Header(raw, "x-tokengateway-attempts")); // 2 on gpt-4o-mini, then the fallback
        var requestId = Header(raw, "x-tokengateway-request-id");
        var billed = await server.WaitForEventAsync(requestId);
        Assert.Equal("gpt-4.1-mini", billed.GetProperty("model").GetString());
        Assert.Equal("ok", billed.GetProperty("status").GetString());
        Assert.True(billed.GetProperty("costUsd").GetDecimal() > 0m);
        var second = await server.WaitForEventAsync(requestId + "_attempt2");
        Assert.Equal("gpt-4o-mini", second.GetProperty("model").GetString());
        Assert.Equal("retry", second.GetProperty("attempt").GetString());
        Assert.Equal(requestId, second.GetProperty("parentRequestId").GetString());
    }

    [Fact]
    public async Task TeamPolicyFallbacks_AreUsed_AndADearerFallbackIsDroppedUnderAHardBudget()
    {
        await using var server = await GatewayServer.StartAsync(Retries(maxAttempts: 1));
        var (teamId, key) = await server.CreateTeamWithKeyAsync("fallback-team");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { fallbacks = new Dictionary<string, string[]> { ["gpt-4o-mini"] = ["gpt-4.1-mini"] } })).EnsureSuccessStatusCode();

        var result = await Sdk(server, "model=gpt-4o-mini,status=503", key).CompleteChatAsync([new UserChatMessage("hello")]);
        Assert.Equal("gpt-4.1-mini", result.Value.Model);
        Assert.Equal("2", Header(result.GetRawResponse(), "x-tokengateway-attempts"));

        // gpt-4.1-mini is priced above gpt-4o-mini: with a hard budget the reservation could not cover it.
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { budget = new { usd = 10m, period = "day", hard = true }, fallbacks = new Dictionary<string, string[]> { ["gpt-4o-mini"] = ["gpt-4.1-mini"] } })).EnsureSuccessStatusCode();
        var ex = await Assert.ThrowsAsync<ClientResultException>(() =>
            Sdk(server, "model=gpt-4o-mini,status=503", key).CompleteChatAsync([new UserChatMessage("hello")]));
        Assert.Equal(503, ex.Status);
        Assert.Equal("1", Header(ex.GetRawResponse()!, "x-tokengateway-attempts"));
    }

    [Fact]
    public async Task ResilienceDisabled_ForwardsOnce_NoRetryNoBreakerNoAttemptsHeader()
    {
        var settings = Retries();
        settings["Resilience:Enabled"] = "false";
        settings["Resilience:CircuitBreaker:MinimumThroughput"] = "2";
        settings["Resilience:CircuitBreaker:FailureRatio"] = "0.5";
        await using var server = await GatewayServer.StartAsync(settings);
        var scenario = Scenario();

        var ex = await Assert.ThrowsAsync<ClientResultException>(() =>
            Sdk(server, $"scenario={scenario},first=1,status=503").CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(503, ex.Status); // not retried: the provider's answer as it is
        Assert.False(ex.GetRawResponse()!.Headers.TryGetValue("x-tokengateway-attempts", out _));
        Assert.Single(server.Simulator.Recorder.FindAllByHeader(Fault, $"scenario={scenario},first=1,status=503"));

        // No breaker either: persistent failures never turn into a gateway fail fast.
        for (var i = 0; i < 3; i++)
        {
            var failed = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, "status=503").CompleteChatAsync([new UserChatMessage("x")]));
            Assert.Equal(503, failed.Status);
        }

        var ok = await Sdk(server, fault: null).CompleteChatAsync([new UserChatMessage("still forwarded")]);
        Assert.Equal(200, ok.GetRawResponse().Status);
    }

    private sealed class HeaderPolicy(string name, string value) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
