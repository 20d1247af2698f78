using System.ClientModel;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Models;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Ledger totals equal the provider's reported usage on every surface, and cost equals the catalogue arithmetic.</summary>
public sealed class MeteringTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    public static TheoryData<string, string> NonStreamingSurfaces => new()
    {
        { "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Explain prompt caching.\"}]}" },
        { "/v1/chat/completions", "{\"model\":\"o4-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Think about primes.\"}]}" },
        { "/v1/responses", "{\"model\":\"gpt-4.1\",\"input\":\"Summarise the ledger design.\"}" },
        { "/v1/embeddings", "{\"model\":\"text-embedding-3-large\",\"input\":[\"alpha beta\",\"gamma delta epsilon\"]}" },
        { "/v1/messages", "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":200,\"messages\":[{\"role\":\"user\",\"content\":\"Hello Claude\"}]}" },
    };

    [Theory]
    [MemberData(nameof(NonStreamingSurfaces))]
    public async Task NonStreaming_LedgerEqualsProviderUsageAndCatalogueCost(string path, string body)
    {
        using var http = Server.CreateClient();
        using var response = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var reported = ProviderUsage.FromJson(path, json);

        var e = await Server.WaitForEventAsync(requestId);

        Assert.Equal("ok", e.GetProperty("status").GetString());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        Assert.Equal(reported.Input, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(reported.Output, e.GetProperty("outputTokens").GetInt32());
        Assert.Equal(reported.Cached, e.GetProperty("cachedInputTokens").GetInt32());
        Assert.Equal(reported.Reasoning, e.GetProperty("reasoningTokens").GetInt32());
        var expectedCost = ExpectedCost(e.GetProperty("model").GetString()!, reported);
        Assert.Equal(expectedCost, e.GetProperty("costUsd").GetDecimal());
        Assert.Equal(expectedCost, decimal.Parse(response.Headers.GetValues("x-tokengateway-cost-usd").Single(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(e.GetProperty("inputTokensReceived").GetInt32() > 0);
    }

    [Fact]
    public async Task ChatStreaming_ThroughSdk_LedgerEqualsStreamUsage()
    {
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(Server.VirtualKey), new OpenAIClientOptions { Endpoint = Server.OpenAIEndpoint });
        ChatTokenUsage? usage = null;
        string? requestId = null;
        var stream = client.CompleteChatStreamingAsync([new UserChatMessage("Count to five, slowly.")]);
        await foreach (var update in stream)
        {
            usage ??= update.Usage;
        }

        requestId = Server.Simulator.Recorder.Snapshot().Last(r => r.PathAndQuery.StartsWith("/v1/chat/completions", StringComparison.Ordinal)
            && r.BodyText.Contains("Count to five", StringComparison.Ordinal)).Headers["x-tokengateway-request-id"];
        var e = await Server.WaitForEventAsync(requestId);

        Assert.NotNull(usage);
        Assert.Equal(usage!.InputTokenCount, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(usage.OutputTokenCount, e.GetProperty("outputTokens").GetInt32());
        Assert.True(e.GetProperty("stream").GetBoolean());
        Assert.False(e.GetProperty("estimated").GetBoolean());
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"stream me\"}]}")]
    [InlineData("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"stream three\"}]}")]
    [InlineData("/v1/responses", "{\"model\":\"gpt-4.1-mini\",\"stream\":true,\"input\":\"stream me\"}")]
    [InlineData("/v1/messages", "{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"max_tokens\":300,\"messages\":[{\"role\":\"user\",\"content\":\"stream me\"}]}")]
    public async Task Streaming_LedgerEqualsUsageInTheStream(string path, string body)
    {
        using var http = Server.CreateClient();
        using var response = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var sse = await response.Content.ReadAsStringAsync();
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var reported = ProviderUsage.FromSse(path, sse);

        var e = await Server.WaitForEventAsync(requestId);

        Assert.Equal("ok", e.GetProperty("status").GetString());
        Assert.Equal(reported.Input, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(reported.Output, e.GetProperty("outputTokens").GetInt32());
        Assert.Equal(ExpectedCost(e.GetProperty("model").GetString()!, reported), e.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task ClientAbortMidStream_BilledExactlyOnceAsEstimated()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("abort-team");
        using var http = Server.CreateClient(key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"long answer\"}]}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-simulator-fault", "latency=20ms,output-tokens=400");
        using var cts = new CancellationTokenSource();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        await using (var stream = await response.Content.ReadAsStreamAsync(cts.Token))
        {
            var buffer = new byte[256];
            var received = 0;
            while (received < 1500)
            {
                received += await stream.ReadAsync(buffer, cts.Token);
            }

            await cts.CancelAsync();
        }

        var e = await Server.WaitForEventAsync(requestId);

        Assert.Equal("client_aborted", e.GetProperty("status").GetString());
        Assert.True(e.GetProperty("estimated").GetBoolean());
        var output = e.GetProperty("outputTokens").GetInt32();
        Assert.InRange(output, 1, 399);
        Assert.True(e.GetProperty("costUsd").GetDecimal() > 0);
        await Task.Delay(500); // anything that would double-bill has had time to land
        var totals = (await Server.UsageAsync($"teamId={teamId}")).GetProperty("totals");
        Assert.Equal(1, totals.GetProperty("requests").GetInt64());
        Assert.Equal(output, totals.GetProperty("outputTokens").GetInt64());
    }

    [Fact]
    public async Task StreamWithoutUsage_BilledFromDeliveredTokens()
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"no usage please\"}]}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-simulator-fault", "no-usage,output-tokens=37");

        using var response = await http.SendAsync(request);
        await response.Content.ReadAsStringAsync();
        var e = await Server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());

        Assert.True(e.GetProperty("estimated").GetBoolean());
        Assert.Equal(37, e.GetProperty("outputTokens").GetInt32());
        Assert.Equal(e.GetProperty("inputTokensSent").GetInt32(), e.GetProperty("inputTokens").GetInt32());
    }

    [Fact]
    public async Task UpstreamResetMidStream_ClientNeverSeesACleanEndAndEventIsUpstreamError()
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = new StringContent("{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":500,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"cut me\"}]}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-simulator-fault", "reset,output-tokens=200");

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var failure = await Record.ExceptionAsync(() => response.Content.ReadAsStringAsync());

        var e = await Server.WaitForEventAsync(requestId);
        Assert.Equal("upstream_error", e.GetProperty("status").GetString());
        if (response.StatusCode == System.Net.HttpStatusCode.OK)
        {
            // Part of the stream went out: the client must see an abnormal end, and what was delivered is billed.
            Assert.NotNull(failure);
            Assert.True(e.GetProperty("estimated").GetBoolean());
            Assert.True(e.GetProperty("outputTokens").GetInt32() > 0);
        }
        else
        {
            // The upstream died before any byte reached the client: a clean 502 in the caller's dialect.
            Assert.Equal(System.Net.HttpStatusCode.BadGateway, response.StatusCode);
            Assert.Null(failure);
        }
    }

    [Fact]
    public async Task Rejections_AreRecordedWithZeroCost()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("reject-team");
        using var http = Server.CreateClient(key);

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent("{\"model\":\"nope-model\",\"messages\":[]}", Encoding.UTF8, "application/json"));

        var e = await Server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
        Assert.Equal("rejected", e.GetProperty("status").GetString());
        Assert.Equal(0m, e.GetProperty("costUsd").GetDecimal());
        Assert.Equal(404, e.GetProperty("httpStatus").GetInt32());
    }

    [Fact]
    public async Task UsageApi_GroupsByModelAndExportsCsv()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("group-team");
        using var http = Server.CreateClient(key);
        var ids = new List<string>();
        foreach (var model in new[] { "gpt-4o", "gpt-4o", "gpt-4o-mini" })
        {
            using var r = await http.PostAsync("/v1/chat/completions", new StringContent($"{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}", Encoding.UTF8, "application/json"));
            r.EnsureSuccessStatusCode();
            ids.Add(r.Headers.GetValues("x-tokengateway-request-id").Single());
        }

        foreach (var id in ids)
        {
            await Server.WaitForEventAsync(id);
        }

        var report = await Server.UsageAsync($"teamId={teamId}&groupBy=model");
        Assert.Equal(3, report.GetProperty("totals").GetProperty("requests").GetInt64());
        var groups = report.GetProperty("groups").EnumerateArray().ToDictionary(g => g.GetProperty("key").GetString()!, g => g.GetProperty("requests").GetInt64());
        Assert.Equal(2, groups["gpt-4o"]);
        Assert.Equal(1, groups["gpt-4o-mini"]);

        var csv = await Server.Admin.GetStringAsync($"/admin/usage/export?teamId={teamId}");
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.All(ids, id => Assert.Contains(id, csv, StringComparison.Ordinal));
    }

    private decimal ExpectedCost(string model, ProviderUsage u)
    {
        var catalog = Server.Services.GetRequiredService<ModelCatalog>();
        Assert.True(catalog.TryResolve(model, out var card));
        var p = card.Prices;
        var uncached = u.Input - u.Cached - u.CacheWrite;
        var cost = (uncached * p.Input!.Value + u.Cached * (p.CachedInput ?? p.Input.Value)
            + u.CacheWrite * (p.CacheWrite5m ?? p.Input.Value * 1.25m) + u.Output * p.Output!.Value) / 1_000_000m;
        return cost;
    }

    private readonly record struct ProviderUsage(int Input, int Output, int Cached, int CacheWrite, int Reasoning)
    {
        public static ProviderUsage FromJson(string path, JsonElement json)
        {
            var usage = json.GetProperty("usage");
            return path switch
            {
                "/v1/messages" => FromAnthropic(usage, usage.GetProperty("output_tokens").GetInt32()),
                "/v1/responses" => new(usage.GetProperty("input_tokens").GetInt32(), usage.GetProperty("output_tokens").GetInt32(),
                    usage.TryGetProperty("input_tokens_details", out var d) ? d.GetProperty("cached_tokens").GetInt32() : 0, 0,
                    usage.TryGetProperty("output_tokens_details", out var o) ? o.GetProperty("reasoning_tokens").GetInt32() : 0),
                "/v1/embeddings" => new(usage.GetProperty("prompt_tokens").GetInt32(), 0, 0, 0, 0),
                _ => new(usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32(),
                    usage.TryGetProperty("prompt_tokens_details", out var pd) ? pd.GetProperty("cached_tokens").GetInt32() : 0, 0,
                    usage.TryGetProperty("completion_tokens_details", out var cd) ? cd.GetProperty("reasoning_tokens").GetInt32() : 0),
            };
        }

        public static ProviderUsage FromSse(string path, string sse)
        {
            ProviderUsage result = default;
            JsonElement? start = null;
            foreach (var line in sse.Split('\n'))
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                {
                    continue;
                }

                var data = JsonDocument.Parse(line[6..]).RootElement;
                switch (path)
                {
                    case "/v1/chat/completions" when data.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object:
                        result = FromJson(path, data);
                        break;
                    case "/v1/responses" when data.GetProperty("type").GetString() == "response.completed":
                        result = FromJson(path, data.GetProperty("response"));
                        break;
                    case "/v1/messages" when data.GetProperty("type").GetString() == "message_start":
                        start = data.GetProperty("message").GetProperty("usage");
                        break;
                    case "/v1/messages" when data.GetProperty("type").GetString() == "message_delta":
                        result = FromAnthropic(start!.Value, data.GetProperty("usage").GetProperty("output_tokens").GetInt32());
                        break;
                }
            }

            return result;
        }

        private static ProviderUsage FromAnthropic(JsonElement usage, int output)
        {
            var read = usage.TryGetProperty("cache_read_input_tokens", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetInt32() : 0;
            var write = usage.TryGetProperty("cache_creation_input_tokens", out var w) && w.ValueKind == JsonValueKind.Number ? w.GetInt32() : 0;
            return new(usage.GetProperty("input_tokens").GetInt32() + read + write, output, read, write, 0);
        }
    }
}
