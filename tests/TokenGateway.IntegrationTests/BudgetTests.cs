using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Budgets, rate limits and model policies enforced over real HTTP (issue 4; reliability matrix E1, F2-F4).</summary>
[Collection(nameof(SerialCollection))]
public sealed class BudgetTests
{
    private const string Body = "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"budget probe\"}]}";

    [Fact]
    public async Task ParallelRequests_AgainstBudgetForK_ExactlyKSucceedAndSpendStaysWithinBudget()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Budgets:LowerMaxTokens"] = "false" });
        var inputTokens = await ProbeInputTokensAsync(server);
        var reservation = (inputTokens * 2.5m + 100 * 10m) / 1_000_000m; // gpt-4o: $2.50 in, $10 out per million

        foreach (var k in new[] { 5, 17, 40 })
        {
            var (teamId, key) = await server.CreateTeamWithKeyAsync($"budget-{k}");
            var budget = k * reservation + reservation / 2; // fits k, not k + 1
            (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = budget, period = "day", hard = true } })).EnsureSuccessStatusCode();
            using var http = server.CreateClient(key);
            // An async gate, not a Barrier: 64 blocked pool threads would starve the 2-core thread pool.
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var pending = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
            {
                await start.Task;
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
                request.Headers.Add("x-simulator-fault", "latency=700ms,output-tokens=100");
                using var response = await http.SendAsync(request);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
                    Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
                    Assert.NotNull(response.Headers.RetryAfter);
                }

                return response.StatusCode;
            })).ToArray();
            start.SetResult();
            var statuses = await Task.WhenAll(pending);

            Assert.Equal(k, statuses.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(64 - k, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
            var snapshot = await WaitForSettledBudgetAsync(server, teamId);
            Assert.True(snapshot.GetProperty("spentUsd").GetDecimal() <= budget);
            Assert.Equal(0m, snapshot.GetProperty("reservedUsd").GetDecimal());

            // The budget view agrees with the ledger.
            var ledger = await WaitForRequestsAsync(server, teamId, 64);
            // Budget counters hold whole micro-dollars, rounded up per request (never under-counting spend).
            var ledgerCost = ledger.GetProperty("costUsd").GetDecimal();
            var spent = snapshot.GetProperty("spentUsd").GetDecimal();
            Assert.InRange(spent - ledgerCost, 0m, k * 0.000001m);
        }
    }

    [Fact]
    public async Task ParallelRequestsWithN3_AgainstBudgetForK_ReservesEveryChoiceAndSpendStaysWithinBudget()
    {
        // n = 3 answers with 100 tokens each: 300 output tokens are billed per request, so the reservation must cover
        // 3 × max_tokens. Reserving one completion would admit about three times too many and overshoot the budget.
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Budgets:LowerMaxTokens"] = "false" });
        const string nBody = "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"budget probe\"}]}";
        var inputTokens = await ProbeInputTokensAsync(server);
        var reservation = (inputTokens * 2.5m + 3 * 100 * 10m) / 1_000_000m;

        const int k = 9;
        var (teamId, key) = await server.CreateTeamWithKeyAsync("budget-n3");
        var budget = k * reservation + reservation / 2; // fits k, not k + 1
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = budget, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(nBody, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-simulator-fault", "latency=700ms,output-tokens=100");
            using var response = await http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var body = await response.Content.ReadFromJsonAsync<JsonElement>();
                Assert.Equal(3, body.GetProperty("choices").GetArrayLength());
                Assert.Equal(300, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            }

            return response.StatusCode;
        })).ToArray();
        start.SetResult();
        var statuses = await Task.WhenAll(pending);

        Assert.Equal(k, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(64 - k, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        var snapshot = await WaitForSettledBudgetAsync(server, teamId);
        var ledger = await WaitForRequestsAsync(server, teamId, 64);
        Assert.Equal(k * 300, ledger.GetProperty("outputTokens").GetInt64());
        Assert.True(snapshot.GetProperty("spentUsd").GetDecimal() <= budget, $"spent {snapshot.GetProperty("spentUsd")} of {budget}");
        Assert.True(ledger.GetProperty("costUsd").GetDecimal() <= budget);
        Assert.Equal(0m, snapshot.GetProperty("reservedUsd").GetDecimal());
    }

    [Fact]
    public async Task NAboveGatewayLimit_Returns400NamingN()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Budgets:MaxChoices"] = "4" });
        using var http = server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("{\"model\":\"gpt-4o\",\"max_tokens\":10,\"n\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("invalid_request", error.GetProperty("code").GetString());
        Assert.Contains("'n'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Budget_WhenRemainderCannotAffordMaxTokens_LowersMaxTokensAndSaysSo()
    {
        await using var server = await GatewayServer.StartAsync();
        var inputTokens = await ProbeInputTokensAsync(server);
        var (teamId, key) = await server.CreateTeamWithKeyAsync("lowering");
        var affordable = (inputTokens * 2.5m + 600 * 10m) / 1_000_000m; // room for 600 of the 1,000 requested output tokens
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = affordable, period = "month", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent(Body.Replace("\"max_tokens\":100", "\"max_tokens\":1000", StringComparison.Ordinal), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.Contains("x-tokengateway-max-tokens-lowered"));
        var upstream = server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", response.Headers.GetValues("x-tokengateway-request-id").Single())!;
        using var sent = JsonDocument.Parse(upstream.Body);
        var sentMax = sent.RootElement.GetProperty("max_tokens").GetInt32();
        Assert.InRange(sentMax, 256, 600); // above the useful minimum (Budgets:MinimumOutputTokens), within what is affordable
    }

    [Fact]
    public async Task ModelDenyAndAllow_ArePolicy()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("models");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { models = new { allow = new[] { "gpt-4o*" }, deny = new[] { "gpt-4o-mini" } } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using var allowed = await http.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json"));
        using var denied = await http.PostAsync("/v1/chat/completions", new StringContent(Body.Replace("gpt-4o", "gpt-4o-mini", StringComparison.Ordinal), Encoding.UTF8, "application/json"));
        using var notAllowed = await http.PostAsync("/v1/chat/completions", new StringContent(Body.Replace("gpt-4o", "gpt-4.1", StringComparison.Ordinal), Encoding.UTF8, "application/json"));
        var models = await http.GetFromJsonAsync<JsonElement>("/v1/models");

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        await ErrorHandlingTests.AssertOpenAIErrorAsync(denied, HttpStatusCode.Forbidden, "model_not_allowed");
        await ErrorHandlingTests.AssertOpenAIErrorAsync(notAllowed, HttpStatusCode.Forbidden, "model_not_allowed");
        var ids = models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("gpt-4o", ids);
        Assert.DoesNotContain("gpt-4o-mini", ids);
        Assert.DoesNotContain("gpt-4.1", ids);
    }

    [Fact]
    public async Task RequestsPerMinute_RejectsWithRetryAfterAndRateLimitHeaders()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("rpm");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { rateLimits = new { requestsPerMinute = 2 } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        var first = await http.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json"));
        var second = await http.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json"));
        using var third = await http.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.True(first.Headers.Contains("x-ratelimit-remaining-requests"));
        await ErrorHandlingTests.AssertOpenAIErrorAsync(third, HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.NotNull(third.Headers.RetryAfter);
        Assert.Equal("0", third.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        var rejected = await server.WaitForEventAsync(third.Headers.GetValues("x-tokengateway-request-id").Single());
        Assert.Equal("rejected", rejected.GetProperty("status").GetString());
        Assert.Equal(0m, rejected.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task Reservations_AreReleasedOnUpstreamErrorAndClientCancel()
    {
        await using var server = await GatewayServer.StartAsync();
        var (teamId, key) = await server.CreateTeamWithKeyAsync("release");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 1, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);

        using (var failing = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") })
        {
            failing.Headers.Add("x-simulator-fault", "status=500");
            using var r = await http.SendAsync(failing);
            Assert.Equal(HttpStatusCode.InternalServerError, r.StatusCode);
        }

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        using (var slow = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") })
        {
            slow.Headers.Add("x-simulator-fault", "latency=3000ms");
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => http.SendAsync(slow, cts.Token));
        }

        var snapshot = await WaitForSettledBudgetAsync(server, teamId);
        Assert.Equal(0m, snapshot.GetProperty("reservedUsd").GetDecimal());
        Assert.Equal(0m, snapshot.GetProperty("spentUsd").GetDecimal());
    }

    [Fact]
    public async Task Policy_InvalidBody_Returns400WithFieldErrors()
    {
        await using var server = await GatewayServer.StartAsync();

        using var response = await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { budget = new { usd = -5, period = "fortnight" } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("invalid_policy", problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").EnumerateObject().Any());
    }

    [Fact]
    public async Task UnpricedModelUnderCeiling_AdmittedUnderUsdBudget_ReservedAndSettledAtOnePrice()
    {
        // Issue #11: admission priced unpriced models from Budgets:Unpriced* (unset → refused under a USD budget) while
        // settlement charged Pricing:Ceiling*. One setting now prices both.
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Pricing:UnpricedModelPolicy"] = "Ceiling",
            ["Pricing:CeilingInputPerMillion"] = "3",
            ["Pricing:CeilingOutputPerMillion"] = "12",
            ["Models:local-llm:Provider"] = "openai",
            ["Models:local-llm:Tokenizer"] = "o200k_base",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("unpriced");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 1, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(Body.Replace("gpt-4o", "local-llm", StringComparison.Ordinal), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-simulator-fault", "output-tokens=100");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var input = int.Parse(response.Headers.GetValues("x-tokengateway-prompt-tokens-sent").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var expected = (input * 3m + 100 * 12m) / 1_000_000m;
        var ledger = await WaitForRequestsAsync(server, teamId, 1);
        var snapshot = await WaitForSettledBudgetAsync(server, teamId);
        Assert.Equal(expected, ledger.GetProperty("costUsd").GetDecimal());
        Assert.Equal(0m, snapshot.GetProperty("reservedUsd").GetDecimal());
        Assert.InRange(snapshot.GetProperty("spentUsd").GetDecimal() - expected, 0m, 0.000001m);
    }

    private static async Task<int> ProbeInputTokensAsync(GatewayServer server)
    {
        using var http = server.CreateClient();
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        return int.Parse(response.Headers.GetValues("x-tokengateway-prompt-tokens-original").Single(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<JsonElement> WaitForSettledBudgetAsync(GatewayServer server, string teamId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var snapshot = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
            if (snapshot.GetProperty("reservedUsd").GetDecimal() == 0m || DateTime.UtcNow > deadline)
            {
                return snapshot;
            }

            await Task.Delay(100);
        }
    }

    private static async Task<JsonElement> WaitForRequestsAsync(GatewayServer server, string teamId, long count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var totals = (await server.UsageAsync($"teamId={teamId}")).GetProperty("totals");
            if (totals.GetProperty("requests").GetInt64() >= count || DateTime.UtcNow > deadline)
            {
                return totals;
            }

            await Task.Delay(100);
        }
    }
}
