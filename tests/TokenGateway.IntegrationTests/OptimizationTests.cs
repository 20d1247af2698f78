using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>The optimization pipeline through the gateway: the upstream gets fewer tokens and the ledger shows the savings.</summary>
public sealed class OptimizationTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    private static string DataRequest()
    {
        var records = Enumerable.Range(1, 40).Select(i => new { id = i, name = $"repo-{i}", stars = i * 37, language = i % 2 == 0 ? "C#" : "Go", archived = false }).ToArray();
        var pretty = JsonSerializer.Serialize(records, new JsonSerializerOptions { WriteIndented = true });
        return JsonSerializer.Serialize(new
        {
            model = "gpt-4o",
            messages = new[] { new { role = "user", content = "Which repos have more than 500 stars?\n\n" + pretty } },
        });
    }

    [Fact]
    public async Task JsonHeavyRequest_UpstreamReceivesFewerTokensAndLedgerRecordsSavings()
    {
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(DataRequest(), Encoding.UTF8, "application/json"));

        response.EnsureSuccessStatusCode();
        var original = int.Parse(response.Headers.GetValues("x-tokengateway-prompt-tokens-original").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var sent = int.Parse(response.Headers.GetValues("x-tokengateway-prompt-tokens-sent").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(sent < original * 0.7, $"sent {sent} of {original}");
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId)!;
        Assert.Equal(upstream.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), upstream.Headers["Content-Length"]);
        Assert.DoesNotContain("\n    \"stars\"", upstream.BodyText, StringComparison.Ordinal);
        var usage = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("usage");
        Assert.Equal(sent, usage.GetProperty("prompt_tokens").GetInt32());

        var e = await Server.WaitForEventAsync(requestId);
        Assert.Equal(original, e.GetProperty("inputTokensReceived").GetInt32());
        Assert.Equal(sent, e.GetProperty("inputTokensSent").GetInt32());
        Assert.True(e.GetProperty("tokensSaved").GetInt32() > 0);
        Assert.Contains(e.GetProperty("stages").EnumerateArray(), s => s.GetProperty("name").GetString() == "compact" && s.GetProperty("tokensSaved").GetInt32() > 0);
    }

    [Fact]
    public async Task OptimizeOffHeader_ForwardsByteIdentical()
    {
        var body = DataRequest();
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("x-tokengateway-optimize", "off");

        using var response = await http.SendAsync(request);

        response.EnsureSuccessStatusCode();
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", response.Headers.GetValues("x-tokengateway-request-id").Single())!;
        Assert.Equal(body, upstream.BodyText);
        Assert.Equal(response.Headers.GetValues("x-tokengateway-prompt-tokens-original").Single(), response.Headers.GetValues("x-tokengateway-prompt-tokens-sent").Single());
    }

    [Fact]
    public async Task PolicyModelOverride_EnablesCompactionForOneModelOnly()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("override-team");
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { optimization = new Dictionary<string, object> { ["compact"] = false, ["models"] = new Dictionary<string, object> { ["gpt-4o-mini"] = new { compact = true } } } }))
            .EnsureSuccessStatusCode();
        using var http = Server.CreateClient(key);
        var forGpt4o = DataRequest();
        var forMini = forGpt4o.Replace("\"gpt-4o\"", "\"gpt-4o-mini\"", StringComparison.Ordinal);

        using var plain = await http.PostAsync("/v1/chat/completions", new StringContent(forGpt4o, Encoding.UTF8, "application/json"));
        using var compacted = await http.PostAsync("/v1/chat/completions", new StringContent(forMini, Encoding.UTF8, "application/json"));

        var plainUpstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", plain.Headers.GetValues("x-tokengateway-request-id").Single())!;
        var compactedUpstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", compacted.Headers.GetValues("x-tokengateway-request-id").Single())!;
        // Issue #15: a prompt OpenAI can cache gets the team's prompt_cache_key spliced in front; every other byte is the client's.
        Assert.Equal(forGpt4o, WithoutSplicedPromptCacheKey(plainUpstream.BodyText));
        Assert.True(compactedUpstream.Body.Length < forMini.Length * 0.7);
    }

    [Fact]
    public async Task DryRun_ReturnsRewrittenBodyAndStagesWithoutForwarding()
    {
        using var http = Server.CreateClient();
        var before = Server.Simulator.Recorder.Count;

        using var response = await http.PostAsync("/v1/tokengateway/optimize", new StringContent(DataRequest(), Encoding.UTF8, "application/json"));

        response.EnsureSuccessStatusCode();
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(result.GetProperty("tokensSent").GetInt32() < result.GetProperty("tokensReceived").GetInt32());
        Assert.Equal("gpt-4o", result.GetProperty("body").GetProperty("model").GetString());
        Assert.Contains(result.GetProperty("stages").EnumerateArray(), s => s.GetProperty("tokensSaved").GetInt32() > 0);
        Assert.Equal(before, Server.Simulator.Recorder.Count);
    }

    [Fact]
    public async Task DryRun_SecondTurnOfAChat_ReportsDollarsAtCataloguePricesWithThePromptCache()
    {
        using var http = Server.CreateClient();
        var system = string.Join(' ', Enumerable.Repeat("You answer questions about the quarterly report in detail.", 150));
        var body = JsonSerializer.Serialize(new
        {
            model = "gpt-4o",
            messages = new object[]
            {
                new { role = "system", content = system },
                new { role = "user", content = "What was revenue?" },
                new { role = "assistant", content = "Revenue was $4.2M." },
                new { role = "user", content = "And profit?" },
            },
        });

        using var response = await http.PostAsync("/v1/tokengateway/optimize", new StringContent(body, Encoding.UTF8, "application/json"));

        response.EnsureSuccessStatusCode();
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        var received = result.GetProperty("tokensReceived").GetInt32();
        var sent = result.GetProperty("tokensSent").GetInt32();
        var cost = result.GetProperty("cost");
        var cache = result.GetProperty("cache");
        Assert.True(cost.GetProperty("priced").GetBoolean());
        // gpt-4o in catalog.json: $2.50 per million input tokens, $1.25 cached.
        Assert.Equal(received * 2.5m / 1_000_000m, cost.GetProperty("beforeUsd").GetDecimal());
        Assert.Equal(sent * 2.5m / 1_000_000m, cost.GetProperty("afterUsd").GetDecimal());
        Assert.True(cache.GetProperty("previousTurn").GetBoolean());
        var read = cache.GetProperty("before").GetProperty("readTokens").GetInt32();
        Assert.True(read >= 1024 && read % 128 == 0, $"read {read}");
        Assert.Equal(((received - read) * 2.5m + read * 1.25m) / 1_000_000m, cost.GetProperty("beforeCachedUsd").GetDecimal());
        Assert.Equal(JsonValueKind.Null, cache.GetProperty("prefixBrokenAt").ValueKind);
    }

    /// <summary>The forwarded body without the <c>"prompt_cache_key":"tg-…",</c> the gateway splices after the opening brace.</summary>
    private static string WithoutSplicedPromptCacheKey(string forwarded)
    {
        var match = System.Text.RegularExpressions.Regex.Match(forwarded, "^\\{\"prompt_cache_key\":\"tg-[0-9a-f]{16}\",");
        Assert.True(match.Success, "the team's prompt_cache_key is spliced in front of the client's first field");
        return "{" + forwarded[match.Length..];
    }
}
