using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Caching;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>The per-team exact response cache (issue #15) through the official SDKs and raw HTTP against the simulator.</summary>
public sealed class ResponseCacheTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    [Fact]
    public async Task Chat_SecondIdenticalRequest_IsHitWithSameContentAndCostsZero()
    {
        var (_, key) = await CachedTeamAsync("hit");
        var client = Chat(key, "gpt-4o-mini");
        var prompt = Unique("What is the capital of France?");

        var first = await client.CompleteChatAsync([new UserChatMessage(prompt)]);
        var second = await client.CompleteChatAsync([new UserChatMessage(prompt)]);

        Assert.Equal("miss", Header(first.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal("hit", Header(second.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal(first.Value.Content[0].Text, second.Value.Content[0].Text);
        Assert.NotEqual(first.Value.Id, second.Value.Id);
        Assert.Equal(1, UpstreamCalls(prompt));

        var missEvent = await Server.WaitForEventAsync(Header(first.GetRawResponse(), "x-tokengateway-request-id")!);
        var hitEvent = await Server.WaitForEventAsync(Header(second.GetRawResponse(), "x-tokengateway-request-id")!);
        Assert.Equal("ok", missEvent.GetProperty("status").GetString());
        Assert.True(missEvent.GetProperty("costUsd").GetDecimal() > 0);
        Assert.Equal("cache_hit", hitEvent.GetProperty("status").GetString());
        Assert.Equal(0m, hitEvent.GetProperty("costUsd").GetDecimal());
        Assert.Equal(0, hitEvent.GetProperty("outputTokens").GetInt32());
        Assert.Equal(0, hitEvent.GetProperty("inputTokensSent").GetInt32());
        var cacheStage = hitEvent.GetProperty("stages").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "cache");
        Assert.Equal(missEvent.GetProperty("inputTokensSent").GetInt32() + missEvent.GetProperty("outputTokens").GetInt32(),
            cacheStage.GetProperty("tokensSaved").GetInt32());
        Assert.Equal("0", Header(second.GetRawResponse(), "x-tokengateway-cost-usd"));
    }

    [Fact]
    public async Task Hits_ReserveNothingAndSpendNothingFromTheBudget()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("cache-budget-" + Guid.NewGuid().ToString("N")[..6]);
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { cache = new { enabled = true }, budget = new { usd = 5, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = Server.CreateClient(key);
        var body = new { model = "gpt-4o-mini", max_tokens = 100, messages = new[] { new { role = "user", content = Unique("Budgeted question") } } };

        async Task<string> SendAsync()
        {
            using var response = await http.PostAsJsonAsync("/v1/chat/completions", body);
            response.EnsureSuccessStatusCode();
            await Server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
            return response.Headers.GetValues("x-tokengateway-cache").Single();
        }

        Assert.Equal("miss", await SendAsync());
        var afterMiss = await Server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("hit", await SendAsync());
        }

        var afterHits = await Server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        Assert.True(afterMiss.GetProperty("spentUsd").GetDecimal() > 0);
        Assert.Equal(afterMiss.GetProperty("spentUsd").GetDecimal(), afterHits.GetProperty("spentUsd").GetDecimal());
        Assert.Equal(afterMiss.GetProperty("spentTokens").GetInt64(), afterHits.GetProperty("spentTokens").GetInt64());
        Assert.Equal(0m, afterHits.GetProperty("reservedUsd").GetDecimal());
    }

    [Fact]
    public async Task SameRequest_FromAnotherTeam_IsMiss()
    {
        var (_, keyA) = await CachedTeamAsync("team-a");
        var (_, keyB) = await CachedTeamAsync("team-b");
        var prompt = Unique("Shared question");

        var a = await Chat(keyA, "gpt-4o-mini").CompleteChatAsync([new UserChatMessage(prompt)]);
        var b = await Chat(keyB, "gpt-4o-mini").CompleteChatAsync([new UserChatMessage(prompt)]);

        Assert.Equal("miss", Header(a.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal("miss", Header(b.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal(2, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task TeamWithoutCache_HasNoCacheHeader_AndForwardsEveryTime()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("no-cache-" + Guid.NewGuid().ToString("N")[..6]);
        var prompt = Unique("Uncached question");
        var client = Chat(key, "gpt-4o-mini");

        var first = await client.CompleteChatAsync([new UserChatMessage(prompt)]);
        await client.CompleteChatAsync([new UserChatMessage(prompt)]);

        Assert.Null(Header(first.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal(2, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task StreamedHit_IsValidSse_ThatTheSdkAccumulatesIntoTheSameAnswer()
    {
        var (_, key) = await CachedTeamAsync("stream");
        var client = Chat(key, "gpt-4o-mini");
        var prompt = Unique("Stream me an answer");

        var streamed = await CollectAsync(client.CompleteChatStreamingAsync([new UserChatMessage(prompt)],
            new ChatCompletionOptions()));
        var replayed = await CollectAsync(client.CompleteChatStreamingAsync([new UserChatMessage(prompt)],
            new ChatCompletionOptions()));
        var plain = await client.CompleteChatAsync([new UserChatMessage(prompt)]); // served from the streamed answer

        Assert.False(string.IsNullOrEmpty(streamed.Text));
        Assert.Equal(streamed.Text, replayed.Text);
        Assert.Equal(ChatFinishReason.Stop, replayed.Finish);
        Assert.Equal(streamed.Text, plain.Value.Content[0].Text);
        Assert.Equal("hit", Header(plain.GetRawResponse(), "x-tokengateway-cache"));
        Assert.Equal(1, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task StreamedMiss_FlowsToTheClientEventByEvent_WhileTheAnswerIsCaptured()
    {
        var (_, key) = await CachedTeamAsync("tee");
        using var http = Server.CreateClient(key);
        var prompt = Unique("Slow stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = prompt } } }),
        };
        request.Headers.Add("x-simulator-fault", "latency=100ms,output-tokens=12"); // 100 ms before the first byte and after every event

        var started = System.Diagnostics.Stopwatch.StartNew();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("miss", response.Headers.GetValues("x-tokengateway-cache").Single());
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var reader = new StreamReader(stream);
        var firstEvent = await reader.ReadLineAsync();
        var firstEventAt = started.Elapsed;
        await reader.ReadToEndAsync();
        var endAt = started.Elapsed;

        Assert.StartsWith("data: ", firstEvent, StringComparison.Ordinal);
        // 12 tokens → more than 12 events 100 ms apart: the first one arrives long before the stream ends (not buffered).
        Assert.True(endAt - firstEventAt > TimeSpan.FromMilliseconds(800), $"first event at {firstEventAt.TotalMilliseconds:0} ms, end at {endAt.TotalMilliseconds:0} ms");
        await Server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
        using var again = await http.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = prompt } } });
        Assert.Equal("hit", again.Headers.GetValues("x-tokengateway-cache").Single());
    }

    [Fact]
    public async Task StreamedHit_WithIncludeUsage_EndsWithUsageChunkAndDone()
    {
        var (_, key) = await CachedTeamAsync("stream-usage");
        using var http = Server.CreateClient(key);
        var prompt = Unique("Usage please");
        var body = new { model = "gpt-4o-mini", stream = true, stream_options = new { include_usage = true }, messages = new[] { new { role = "user", content = prompt } } };

        var miss = await http.PostAsJsonAsync("/v1/chat/completions", body);
        var missText = await miss.Content.ReadAsStringAsync();
        var hit = await http.PostAsJsonAsync("/v1/chat/completions", body);
        var hitText = await hit.Content.ReadAsStringAsync();

        Assert.Equal("hit", hit.Headers.GetValues("x-tokengateway-cache").Single());
        Assert.Equal("text/event-stream", hit.Content.Headers.ContentType?.MediaType);
        var events = hitText.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
        Assert.Equal("data: [DONE]", events[^1]);
        using var usageChunk = JsonDocument.Parse(events[^2]["data: ".Length..]);
        Assert.Equal(0, usageChunk.RootElement.GetProperty("choices").GetArrayLength());
        Assert.Equal(UsageOf(missText).GetProperty("completion_tokens").GetInt32(), usageChunk.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(ChatText(missText), ChatText(hitText));
    }

    [Fact]
    public async Task Anthropic_Messages_HitAndStreamedReplay_MatchTheOriginal()
    {
        var (_, key) = await CachedTeamAsync("anthropic");
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        http.DefaultRequestHeaders.Add("x-api-key", key);
        http.DefaultRequestHeaders.Add("anthropic-version", "2023-06-01");
        var prompt = Unique("Hello Claude");
        object Body(bool stream) => new { model = "claude-sonnet-4-5", max_tokens = 200, stream, messages = new[] { new { role = "user", content = prompt } } };

        var miss = await http.PostAsJsonAsync("/v1/messages", Body(stream: false));
        var missJson = await miss.Content.ReadFromJsonAsync<JsonElement>();
        var hit = await http.PostAsJsonAsync("/v1/messages", Body(stream: false));
        var hitJson = await hit.Content.ReadFromJsonAsync<JsonElement>();
        var streamed = await http.PostAsJsonAsync("/v1/messages", Body(stream: true));
        var sse = await streamed.Content.ReadAsStringAsync();

        Assert.Equal("miss", miss.Headers.GetValues("x-tokengateway-cache").Single());
        Assert.Equal("hit", hit.Headers.GetValues("x-tokengateway-cache").Single());
        Assert.Equal("hit", streamed.Headers.GetValues("x-tokengateway-cache").Single());
        var text = missJson.GetProperty("content")[0].GetProperty("text").GetString();
        Assert.Equal(text, hitJson.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.NotEqual(missJson.GetProperty("id").GetString(), hitJson.GetProperty("id").GetString());

        var names = new List<string>();
        var replayedText = new StringBuilder();
        foreach (var e in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = e.Split('\n');
            names.Add(lines[0]["event: ".Length..]);
            using var data = JsonDocument.Parse(lines[1]["data: ".Length..]);
            if (data.RootElement.TryGetProperty("delta", out var delta) && delta.TryGetProperty("text", out var t))
            {
                replayedText.Append(t.GetString());
            }
        }

        Assert.Equal("message_start", names[0]);
        Assert.Equal("message_stop", names[^1]);
        Assert.Contains("message_delta", names);
        Assert.Equal(text, replayedText.ToString());
        Assert.Equal(1, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task FailedAbortedAndTruncatedAnswers_AreNeverServedFromCache()
    {
        var (_, key) = await CachedTeamAsync("failures");
        using var http = Server.CreateClient(key);
        var prompt = Unique("Fragile question");
        object Body(bool stream, int? maxTokens = null) => maxTokens is { } m
            ? new { model = "gpt-4o-mini", stream, max_tokens = m, messages = new[] { new { role = "user", content = prompt } } }
            : new { model = "gpt-4o-mini", stream, messages = new[] { new { role = "user", content = prompt } } };

        // An upstream error.
        using (var failing = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Body(stream: false)) })
        {
            failing.Headers.Add("x-simulator-fault", "status=500");
            var failed = await http.SendAsync(failing);
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        // A stream cut mid-answer.
        using (var resetting = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Body(stream: true)) })
        {
            resetting.Headers.Add("x-simulator-fault", "reset");
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                using var cut = await http.SendAsync(resetting, HttpCompletionOption.ResponseHeadersRead);
                await cut.Content.ReadAsStringAsync();
            });
        }

        // A client that leaves mid-stream.
        using (var slow = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Body(stream: true)) })
        {
            slow.Headers.Add("x-simulator-fault", "latency=50ms");
            using var leaving = new CancellationTokenSource();
            using var response = await http.SendAsync(slow, HttpCompletionOption.ResponseHeadersRead);
            await using var stream = await response.Content.ReadAsStreamAsync();
            _ = await stream.ReadAtLeastAsync(new byte[16], 16, throwOnEndOfStream: false);
            // Cancelling a pending read tears the connection down (disposing alone would drain the rest to reuse it).
            leaving.CancelAfter(20);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stream.CopyToAsync(Stream.Null, leaving.Token));
        }

        // A truncated answer (finish_reason "length").
        var truncated = await http.PostAsJsonAsync("/v1/chat/completions", Body(stream: false, maxTokens: 3));
        Assert.Equal("length", (await truncated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var truncatedAgain = await http.PostAsJsonAsync("/v1/chat/completions", Body(stream: false, maxTokens: 3));
        Assert.Equal("miss", truncatedAgain.Headers.GetValues("x-tokengateway-cache").Single());

        await Task.Delay(300); // the abandoned stream's request finishes on the server
        var clean = await http.PostAsJsonAsync("/v1/chat/completions", Body(stream: false));
        clean.EnsureSuccessStatusCode();
        Assert.Equal("miss", clean.Headers.GetValues("x-tokengateway-cache").Single());
        var again = await http.PostAsJsonAsync("/v1/chat/completions", Body(stream: false));
        Assert.Equal("hit", again.Headers.GetValues("x-tokengateway-cache").Single());
    }

    [Fact]
    public async Task SixteenConcurrentIdenticalRequests_MakeOneUpstreamCall()
    {
        var (_, key) = await CachedTeamAsync("stampede");
        using var http = Server.CreateClient(key);
        var prompt = Unique("Everyone asks this at once");
        var body = JsonSerializer.Serialize(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = prompt } } });

        async Task<(string Cache, string Text)> SendAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-simulator-fault", "latency=400ms");
            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            var json = await response.Content.ReadFromJsonAsync<JsonElement>();
            return (response.Headers.GetValues("x-tokengateway-cache").Single(), json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
        }

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(SendAsync)));

        Assert.Equal(1, UpstreamCalls(prompt));
        Assert.Single(results, r => r.Cache == "miss");
        Assert.Equal(15, results.Count(r => r.Cache == "hit"));
        Assert.Single(results.Select(r => r.Text).Distinct());
    }

    [Fact]
    public async Task OffBypasses_AndRefreshReplacesTheEntry()
    {
        var (_, key) = await CachedTeamAsync("refresh");
        using var http = Server.CreateClient(key);
        var prompt = Unique("Refresh me");
        var body = new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = prompt } } };

        async Task<string> SendAsync(string? mode)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
            if (mode is not null)
            {
                request.Headers.Add("x-tokengateway-cache", mode);
            }

            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            return response.Headers.GetValues("x-tokengateway-cache").Single();
        }

        Assert.Equal("bypass", await SendAsync("off"));   // forwarded, not stored
        Assert.Equal("miss", await SendAsync(null));      // so the first lookup misses
        Assert.Equal("hit", await SendAsync(null));
        Assert.Equal("bypass", await SendAsync("off"));   // forwarded even though an entry exists
        Assert.Equal("miss", await SendAsync("refresh")); // forwarded, and the entry replaced
        Assert.Equal("hit", await SendAsync(null));
        Assert.Equal(4, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task RequireDeterministic_CachesOnlyTemperatureZeroOrSeeded()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("det-" + Guid.NewGuid().ToString("N")[..6]);
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { cache = new { enabled = true, requireDeterministic = true } })).EnsureSuccessStatusCode();
        using var http = Server.CreateClient(key);
        var prompt = Unique("Deterministic?");

        async Task<string> SendAsync(object body)
        {
            using var response = await http.PostAsJsonAsync("/v1/chat/completions", body);
            response.EnsureSuccessStatusCode();
            return response.Headers.GetValues("x-tokengateway-cache").Single();
        }

        var messages = new[] { new { role = "user", content = prompt } };
        Assert.Equal("bypass", await SendAsync(new { model = "gpt-4o-mini", temperature = 0.7, messages }));
        Assert.Equal("miss", await SendAsync(new { model = "gpt-4o-mini", temperature = 0, messages }));
        Assert.Equal("hit", await SendAsync(new { model = "gpt-4o-mini", temperature = 0, messages }));
        Assert.Equal("miss", await SendAsync(new { model = "gpt-4o-mini", seed = 7, messages }));
    }

    [Fact]
    public async Task Policy_InvalidCacheSection_IsRefusedWithFieldErrors()
    {
        var (teamId, _) = await Server.CreateTeamWithKeyAsync("bad-cache-" + Guid.NewGuid().ToString("N")[..6]);
        var response = await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { cache = new { enabled = true, ttlSeconds = 0 } });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("cache.ttlSeconds", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Entries_ExpireAfterTheTtl()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(services: s =>
        {
            s.RemoveAll<ResponseCacheClock>();
            s.AddSingleton(new ResponseCacheClock(time));
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("ttl");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { cache = new { enabled = true, ttlSeconds = 60 } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        var body = new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = Unique("Expiring") } } };

        async Task<string> SendAsync()
        {
            using var response = await http.PostAsJsonAsync("/v1/chat/completions", body);
            response.EnsureSuccessStatusCode();
            // The entry is stored when the request ends (after the client has the body) and the usage event is recorded
            // after that: wait for it, so the fake clock moves only once the entry's lifetime has started.
            await server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
            return response.Headers.GetValues("x-tokengateway-cache").Single();
        }

        Assert.Equal("miss", await SendAsync());
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("hit", await SendAsync());
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal("miss", await SendAsync());
        Assert.Equal("hit", await SendAsync());
    }

    private async Task<(string TeamId, string Key)> CachedTeamAsync(string name)
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("cache-" + name + "-" + Guid.NewGuid().ToString("N")[..6]);
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { cache = new { enabled = true } })).EnsureSuccessStatusCode();
        return (teamId, key);
    }

    private ChatClient Chat(string key, string model) => new(model, new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = Server.OpenAIEndpoint,
        RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
    });

    private int UpstreamCalls(string prompt) => Server.Simulator.Recorder.Snapshot().Count(r => r.BodyText.Contains(prompt, StringComparison.Ordinal));

    private static string Unique(string text) => text + " #" + Guid.NewGuid().ToString("N");

    private static string? Header(System.ClientModel.Primitives.PipelineResponse response, string name) =>
        response.Headers.TryGetValue(name, out var value) ? value : null;

    private static async Task<(string Text, ChatFinishReason? Finish)> CollectAsync(AsyncCollectionResult<StreamingChatCompletionUpdate> updates)
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in updates)
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
        }

        return (text.ToString(), finish);
    }

    private static string ChatText(string sse)
    {
        var text = new StringBuilder();
        foreach (var e in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var data = e["data: ".Length..];
            if (data == "[DONE]")
            {
                continue;
            }

            using var json = JsonDocument.Parse(data);
            foreach (var choice in json.RootElement.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
                {
                    text.Append(c.GetString());
                }
            }
        }

        return text.ToString();
    }

    private static JsonElement UsageOf(string sse)
    {
        foreach (var e in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var data = e["data: ".Length..];
            if (data != "[DONE]" && JsonDocument.Parse(data).RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                return usage.Clone();
            }
        }

        throw new InvalidOperationException("No usage chunk.");
    }
}
