using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.ScaleOut;

/// <summary>Starts the two replicas once for the class; every test works on teams and keys of its own.</summary>
public sealed class TwoReplicaFixture : IAsyncLifetime
{
    private ReplicaPair? _pair;

    public ReplicaPair Pair => _pair ?? throw new InvalidOperationException("Not started.");

    public async Task InitializeAsync() =>
        _pair = await ReplicaPair.StartAsync(RedisServers.SharedEndpoint, new Dictionary<string, string> { ["Budgets__LowerMaxTokens"] = "false" });

    public async Task DisposeAsync()
    {
        if (_pair is not null)
        {
            await _pair.DisposeAsync();
        }
    }
}

/// <summary>
/// Two gateway processes sharing Redis (counters, notifications) and one store — PostgreSQL when the test server
/// answers, else one SQLite file (issue #14): budgets and rate limits hold across replicas, the budget endpoint of
/// either replica equals the ledger, and revocations and policy changes reach the other replica within a second.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class TwoReplicaTests(TwoReplicaFixture fixture) : IClassFixture<TwoReplicaFixture>
{
    private const string Body = "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"budget probe\"}]}";

    private ReplicaPair Pair => fixture.Pair;

    [SkippableFact]
    public async Task HardBudget_64ConcurrentRequestsSpreadOverBothReplicas_ExactlyKAdmittedZeroOvershoot()
    {
        RedisServers.SkipUnlessShared();
        var (probeTeam, _, probeKey) = await Pair.CreateTeamWithKeyAsync("pair-probe");
        int inputTokens;
        using (var probe = Pair.A.CreateClient(probeKey))
        using (var response = await probe.PostAsync("/v1/chat/completions", new StringContent(Body, Encoding.UTF8, "application/json")))
        {
            response.EnsureSuccessStatusCode();
            inputTokens = int.Parse(response.Headers.GetValues("x-tokengateway-prompt-tokens-original").Single(), CultureInfo.InvariantCulture);
        }

        var reservation = (inputTokens * 2.5m + 100 * 10m) / 1_000_000m; // gpt-4o: $2.50 in, $10 out per million
        const int k = 13;
        var budget = k * reservation + reservation / 2; // fits k, not k + 1
        var (teamId, _, key) = await Pair.CreateTeamWithKeyAsync("pair-budget");
        (await Pair.A.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = budget, period = "day", hard = true } })).EnsureSuccessStatusCode();

        using var onA = Pair.A.CreateClient(key);
        using var onB = Pair.B.CreateClient(key);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            await start.Task;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-simulator-fault", "latency=700ms,output-tokens=100");
            using var response = await (i % 2 == 0 ? onA : onB).SendAsync(request);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
                Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
            }

            return (Replica: i % 2, response.StatusCode);
        })).ToArray();
        start.SetResult();
        var results = await Task.WhenAll(pending);

        Assert.Equal(k, results.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(64 - k, results.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));
        // Which replica wins the race varies; per-replica counters would admit up to k on each (2k in total).
        Assert.All(results, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"replica {r.Replica}: {(int)r.StatusCode}"));

        var ledger = await WaitForRequestsAsync(Pair.A, teamId, 64);
        var ledgerCost = ledger.GetProperty("costUsd").GetDecimal();
        Assert.True(ledgerCost <= budget, $"ledger {ledgerCost} > budget {budget}");
        foreach (var replica in new[] { Pair.A, Pair.B })
        {
            var snapshot = await WaitForSettledBudgetAsync(replica, teamId);
            var spent = snapshot.GetProperty("spentUsd").GetDecimal();
            Assert.True(spent <= budget, $"spent {spent} > budget {budget}");
            Assert.Equal(0m, snapshot.GetProperty("reservedUsd").GetDecimal());
            Assert.InRange(spent - ledgerCost, 0m, k * 0.000001m); // whole micro-dollars, rounded up per request
        }

        // The budget endpoint of either replica equals the ledger read through either replica's usage API: the sum of
        // the team's event costs, each in whole micro-dollars as settlement counts them, and the same totals on both.
        var events = await PairLedger.EventsAsync(Pair.A, teamId);
        Assert.Equal(64, events.Count);
        Assert.Equal(64, events.Select(e => e.RequestId).Distinct().Count());
        Assert.Equal(ledgerCost, events.Sum(e => e.CostUsd));
        Assert.Equal(
            events.OrderBy(e => e.RequestId, StringComparer.Ordinal),
            (await PairLedger.EventsAsync(Pair.B, teamId)).OrderBy(e => e.RequestId, StringComparer.Ordinal));
        Assert.Equal(ledger.GetRawText(), (await PairLedger.TotalsAsync(Pair.B, teamId, 64, TimeSpan.FromSeconds(20))).GetRawText());
        var counted = PairLedger.CounterSpend(events);
        foreach (var replica in new[] { Pair.A, Pair.B })
        {
            var snapshot = await PairLedger.SettledBudgetAsync(replica, teamId, TimeSpan.FromSeconds(15));
            Assert.Equal(counted, snapshot.GetProperty("spentUsd").GetDecimal());
        }

        Assert.NotEqual(probeTeam, teamId);
    }

    [SkippableFact]
    public async Task RequestsPerMinute_AlternatingReplicas_LimitHoldsOnceNotPerReplica()
    {
        RedisServers.SkipUnlessShared();
        var (teamId, _, key) = await Pair.CreateTeamWithKeyAsync("pair-rpm");
        (await Pair.A.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { rateLimits = new { requestsPerMinute = 6 } })).EnsureSuccessStatusCode();
        using var onA = Pair.A.CreateClient(key);
        using var onB = Pair.B.CreateClient(key);

        // Neither replica has seen the team before the policy was set. 6/min refills one permit per 10 s.
        var watch = Stopwatch.StartNew();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 16; i++)
        {
            using var response = await (i % 2 == 0 ? onA : onB).PostAsync("/v1/chat/completions", Small());
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
                Assert.Equal("rate_limited", error.GetProperty("code").GetString());
            }

            statuses.Add(response.StatusCode);
        }

        var refills = (int)(watch.Elapsed.TotalSeconds / 10);
        var ok = statuses.Count(s => s == HttpStatusCode.OK);
        Assert.InRange(ok, 6, 6 + refills); // one limit for the team, not one per replica (that would admit 12)
        Assert.Equal(16 - ok, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }

    [SkippableFact]
    public async Task KeyRevokedOnA_RefusedOnBWithinOneSecond()
    {
        RedisServers.SkipUnlessShared();
        var (_, keyId, key) = await Pair.CreateTeamWithKeyAsync("pair-revoke");
        using var onB = Pair.B.CreateClient(key);
        using (var warm = await onB.PostAsync("/v1/chat/completions", Small()))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode); // B has the key cached now (30 s without notifications)
        }

        using (var revoke = await Pair.A.Admin.DeleteAsync($"/admin/keys/{keyId}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        var watch = Stopwatch.StartNew();
        var refused = await PollUntilAsync(onB, HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(5));

        Assert.True(refused, "replica B still accepts the revoked key after 5 s");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"replica B refused the key only after {watch.Elapsed.TotalMilliseconds:0} ms");
    }

    [SkippableFact]
    public async Task PolicyChangedOnA_AppliesOnBWithinOneSecond()
    {
        RedisServers.SkipUnlessShared();
        var (teamId, _, key) = await Pair.CreateTeamWithKeyAsync("pair-policy");
        using var onB = Pair.B.CreateClient(key);
        using (var warm = await onB.PostAsync("/v1/chat/completions", Small()))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode); // B has the team's policy cached now (60 s without notifications)
        }

        (await Pair.A.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { models = new { deny = new[] { "gpt-4o" } } })).EnsureSuccessStatusCode();

        var watch = Stopwatch.StartNew();
        var denied = await PollUntilAsync(onB, HttpStatusCode.Forbidden, TimeSpan.FromSeconds(5));

        Assert.True(denied, "replica B still allows the denied model after 5 s");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"replica B applied the policy only after {watch.Elapsed.TotalMilliseconds:0} ms");
    }

    private static StringContent Small() =>
        new("{\"model\":\"gpt-4o\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", Encoding.UTF8, "application/json");

    private static async Task<bool> PollUntilAsync(HttpClient client, HttpStatusCode expected, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await client.PostAsync("/v1/chat/completions", Small());
            if (response.StatusCode == expected)
            {
                return true;
            }

            await Task.Delay(25);
        }

        return false;
    }

    private static async Task<JsonElement> WaitForSettledBudgetAsync(GatewayProcess replica, string teamId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var snapshot = await replica.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
            if (snapshot.GetProperty("reservedUsd").GetDecimal() == 0m || DateTime.UtcNow > deadline)
            {
                return snapshot;
            }

            await Task.Delay(100);
        }
    }

    private static async Task<JsonElement> WaitForRequestsAsync(GatewayProcess replica, string teamId, long count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var totals = (await replica.Admin.GetFromJsonAsync<JsonElement>($"/admin/usage?teamId={teamId}")).GetProperty("totals");
            if (totals.GetProperty("requests").GetInt64() >= count || DateTime.UtcNow > deadline)
            {
                return totals;
            }

            await Task.Delay(100);
        }
    }
}
