using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.ScaleOut;

/// <summary>
/// Redis unreachable, stopped and restarted empty (issue #14 failure modes): fail closed for hard budgets, degrade to
/// local counters with a metric, <c>/readyz</c> reporting it, and counters rebuilt from the ledger when Redis is back
/// empty. Uses Redis processes of its own (never the shared server) and a port where nothing listens.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed partial class RedisFailureTests
{
    private static StringContent Chat() =>
        new("{\"model\":\"gpt-4o\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"failure mode probe\"}]}", Encoding.UTF8, "application/json");

    [Fact]
    public async Task RedisUnreachable_FailClosed_HardBudgetTeamGets503BudgetUnavailableAndOthersProxy()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = $"127.0.0.1:{GatewayProcess.FreePort()}", // nothing listens there
            ["Budgets:RedisUnavailable"] = "FailClosed",
        });
        var (hardTeam, hardKey) = await server.CreateTeamWithKeyAsync("hard");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{hardTeam}/policy", new { budget = new { usd = 10, period = "month", hard = true } })).EnsureSuccessStatusCode();
        using var soft = server.CreateClient();
        using var hard = server.CreateClient(hardKey);

        using var softResponse = await soft.PostAsync("/v1/chat/completions", Chat());
        using var hardResponse = await hard.PostAsync("/v1/chat/completions", Chat());
        using var ready = await server.Admin.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, softResponse.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, hardResponse.StatusCode);
        var error = (await hardResponse.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("budget_unavailable", error.GetProperty("code").GetString());
        Assert.NotNull(hardResponse.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode); // teams without a hard budget are still served
        var report = await ready.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("unavailable", report.GetProperty("dependencies").GetProperty("redis").GetString());
        Assert.Equal("ok", report.GetProperty("dependencies").GetProperty("sqlite").GetString());
    }

    [Fact]
    public async Task RedisUnreachable_DegradeToLocal_HardBudgetStillEnforcedLocallyWithDegradedMetric()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = $"127.0.0.1:{GatewayProcess.FreePort()}",
            ["Budgets:RedisUnavailable"] = "DegradeToLocal",
            ["Budgets:LowerMaxTokens"] = "false",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("degraded");
        // Room for one request of this size (≈ $0.0005 reserved each), not two.
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 0.0008m, period = "month", hard = true } })).EnsureSuccessStatusCode();
        using var client = server.CreateClient(key);
        client.DefaultRequestHeaders.Add("x-simulator-fault", "output-tokens=50"); // the answer costs what was reserved

        using var first = await client.PostAsync("/v1/chat/completions", Chat());
        using var second = await client.PostAsync("/v1/chat/completions", Chat());
        var metrics = await server.Admin.GetStringAsync("/metrics");
        var report = await server.Admin.GetFromJsonAsync<JsonElement>("/readyz");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode); // the local counters still hold the budget
        Assert.Matches(DegradedGauge(), metrics);
        Assert.Equal("degraded", report.GetProperty("dependencies").GetProperty("redis").GetString());
    }

    [SkippableFact]
    public async Task OwnRedisStoppedThenRestartedEmpty_FailsClosedThenRebuildsCountersFromTheLedger()
    {
        RedisServers.SkipUnlessInstalled();
        await using var redis = new OwnRedisServer();
        await redis.StartAsync();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = redis.Endpoint,
            ["Redis:RetryInterval"] = "00:00:00.200",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("restart");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 10, period = "month", hard = true } })).EnsureSuccessStatusCode();
        using var client = server.CreateClient(key);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await client.PostAsync("/v1/chat/completions", Chat());
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await redis.StopAsync();
        using (var down = await client.PostAsync("/v1/chat/completions", Chat()))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal("budget_unavailable", (await down.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
        }

        await redis.StartAsync(); // same port, no data
        var watch = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            await Task.Delay(100);
            using var again = await client.PostAsync("/v1/chat/completions", Chat());
            status = again.StatusCode;
        }
        while (status != HttpStatusCode.OK && watch.Elapsed < TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, status);

        // Wait until the ledger has the four successful requests (and the refusals), then compare.
        JsonElement totals;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            await Task.Delay(100);
            totals = (await server.UsageAsync($"teamId={teamId}&status=ok")).GetProperty("totals");
        }
        while (totals.GetProperty("requests").GetInt64() < 4 && DateTime.UtcNow < deadline);

        Assert.Equal(4, totals.GetProperty("requests").GetInt64());
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        var ledgerUsd = totals.GetProperty("costUsd").GetDecimal();
        // The emptied Redis was re-seeded from the ledger (3 requests), then charged the fourth: not just the fourth.
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), ledgerUsd - 0.000004m, ledgerUsd + 0.000004m);
    }

    [SkippableFact]
    public async Task DegradeToLocal_RedisPausedThenBack_LocalSpendReachesRedisThroughTheLedger()
    {
        RedisServers.SkipUnlessInstalled();
        await using var redis = new OwnRedisServer();
        await redis.StartAsync();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Redis"] = redis.Endpoint,
            ["Budgets:RedisUnavailable"] = "DegradeToLocal",
            ["Redis:OperationTimeout"] = "00:00:00.300",
            ["Redis:RetryInterval"] = "00:00:00.200",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("pause");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 10, period = "month", hard = true } })).EnsureSuccessStatusCode();
        using var client = server.CreateClient(key);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await client.PostAsync("/v1/chat/completions", Chat());
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // Redis keeps its data but answers nobody for 3 s: the gateway times out and serves on local counters.
        Assert.Equal("+OK", await redis.CommandAsync("CLIENT PAUSE 3000 ALL"));
        var paused = Stopwatch.StartNew();
        for (var i = 0; i < 2; i++)
        {
            using var local = await client.PostAsync("/v1/chat/completions", Chat());
            Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        }

        Assert.True(paused.Elapsed < TimeSpan.FromSeconds(3), $"the local requests took {paused.Elapsed.TotalMilliseconds:0} ms: they waited for Redis");
        Assert.Matches(DegradedGauge(), await server.Admin.GetStringAsync("/metrics"));
        await Task.Delay(TimeSpan.FromSeconds(3) - paused.Elapsed + TimeSpan.FromMilliseconds(500));

        // Back on Redis: the window is re-seeded from the ledger first, so the two local requests are not forgotten.
        using (var back = await client.PostAsync("/v1/chat/completions", Chat()))
        {
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        }

        JsonElement totals;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            await Task.Delay(100);
            totals = (await server.UsageAsync($"teamId={teamId}&status=ok")).GetProperty("totals");
        }
        while (totals.GetProperty("requests").GetInt64() < 6 && DateTime.UtcNow < deadline);

        Assert.Equal(6, totals.GetProperty("requests").GetInt64());
        var ledgerUsd = totals.GetProperty("costUsd").GetDecimal();
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), ledgerUsd - 0.000006m, ledgerUsd + 0.000006m);
        var report = await server.Admin.GetFromJsonAsync<JsonElement>("/readyz");
        Assert.Equal("ok", report.GetProperty("dependencies").GetProperty("redis").GetString());
    }

    [Fact]
    public async Task NoRedis_PollInterval1s_RevocationOnOneHostRefusedByTheOtherWithinAboutASecond()
    {
        var shared = Path.Combine(Path.GetTempPath(), "tg-poll-" + Guid.NewGuid().ToString("N") + ".db");
        var settings = new Dictionary<string, string?>
        {
            ["Storage:DatabaseFile"] = shared,
            ["Changes:PollInterval"] = "00:00:01",
        };
        await using var a = await GatewayServer.StartAsync(settings);
        await using var b = await GatewayServer.StartAsync(settings);
        var (_, keyId, key) = await CreateKeyAsync(a);
        using var onB = b.CreateClient(key);
        using (var warm = await onB.PostAsync("/v1/chat/completions", Chat()))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        (await a.Admin.DeleteAsync($"/admin/keys/{keyId}")).EnsureSuccessStatusCode();
        var watch = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var response = await onB.PostAsync("/v1/chat/completions", Chat());
            status = response.StatusCode;
            await Task.Delay(25);
        }
        while (status != HttpStatusCode.Unauthorized && watch.Elapsed < TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"refused only after {watch.Elapsed.TotalMilliseconds:0} ms (cache refresh 1 s)");
    }

    private static async Task<(string TeamId, string KeyId, string Key)> CreateKeyAsync(GatewayServer server)
    {
        var team = await server.Admin.PostAsJsonAsync("/admin/teams", new { name = "poll" });
        var teamId = (await team.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var created = await (await server.Admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = "poll-key" })).Content.ReadFromJsonAsync<JsonElement>();
        return (teamId, created.GetProperty("id").GetString()!, created.GetProperty("key").GetString()!);
    }

    [GeneratedRegex(@"(?m)^tokengateway_budget_store_degraded(_ratio)?(\{[^}]*\})? 1(\s|$)")]
    private static partial Regex DegradedGauge();
}
