using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Benchmarks.Budgets;

/// <summary>Admission overhead per request on the hot path: policy lookup, reserve and settle.</summary>
[MemoryDiagnoser]
public class AdmissionBenchmarks
{
    private static readonly ModelCard _model = new()
    {
        Name = "gpt-4o-mini",
        Provider = "openai",
        Prices = new ModelPrices { Input = 0.15m, Output = 0.6m },
    };

    private InMemoryBudgetCounterStore _store = null!;
    private AdmissionController _controller = null!;
    private PolicyProvider _policies = null!;
    private AdmissionRequest _request = null!;
    private ReserveRequest _reserve = null!;

    private sealed class NullSink : ISoftAlertSink
    {
        public void Publish(SoftBudgetAlert alert)
        {
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var time = TimeProvider.System;
        _store = new InMemoryBudgetCounterStore(time);
        _controller = new AdmissionController(_store, new BudgetSpentLoader(_store, null, time), new NullSink(), new SoftAlertTracker(), time, new AdmissionOptions());
        var teamPolicy = PolicyJson.Parse("""
            {"budget": {"usd": 1000000000, "period": "month", "softAlertPercent": 80},
             "rateLimits": {"requestsPerMinute": 100000000, "tokensPerMinute": 1000000000000},
             "models": {"allow": ["gpt-4o*", "claude-*"], "deny": ["o1*"]},
             "maxTokens": {"default": 1024, "cap": 4096}}
            """).Policy!;
        var store = new InMemoryPolicyStore(time);
        store.PutAsync(PolicyScope.Team, "team-1", teamPolicy, CancellationToken.None).GetAwaiter().GetResult();
        store.PutAsync(PolicyScope.Key, "key-1", new TeamPolicy { RateLimits = new RateLimitPolicy { RequestsPerMinute = 50_000_000 } }, CancellationToken.None).GetAwaiter().GetResult();
        _policies = new PolicyProvider(store, ConfiguredPolicies.Empty, time);
        var policy = _policies.GetAsync("team-1", "key-1", CancellationToken.None).AsTask().GetAwaiter().GetResult();
        _request = new AdmissionRequest { Policy = policy, Model = _model, InputTokens = 1200, RequestedMaxTokens = 800 };
        _reserve = new ReserveRequest
        {
            TeamId = "team-1",
            TeamBudget = new BudgetLine(BudgetPeriods.Current(BudgetPeriod.Month, time.GetUtcNow()), policy.TeamBudget),
            TeamRate = policy.TeamRate,
            InputTokens = 1200,
            InputCostMicros = 180,
            MaxOutputTokens = 800,
            MinOutputTokens = 256,
            OutputMicrosPerMillion = 600_000,
            Ttl = TimeSpan.FromMinutes(20),
        };
    }

    [GlobalCleanup]
    public void Cleanup() => _store.Dispose();

    /// <summary>Policy lookup (cache hit) + admission (plan, reserve) + settle: the whole per-request overhead.</summary>
    [Benchmark(Baseline = true)]
    public async Task<bool> LookupAdmitSettle()
    {
        var policy = await _policies.GetAsync("team-1", "key-1", CancellationToken.None);
        var decision = await _controller.AdmitAsync(_request with { Policy = policy }, CancellationToken.None);
        return await decision.Lease!.SettleAsync(0.00066m, new TokenUsage(1200, 800));
    }

    /// <summary>Admission (plan, reserve, headers) + settle with an already resolved policy.</summary>
    [Benchmark]
    public async Task<bool> AdmitSettle()
    {
        var decision = await _controller.AdmitAsync(_request, CancellationToken.None);
        return await decision.Lease!.SettleAsync(0.00066m, new TokenUsage(1200, 800));
    }

    /// <summary>The counter store alone: one atomic reserve and one settle.</summary>
    [Benchmark]
    public async Task<bool> StoreReserveSettle()
    {
        var result = await _store.TryReserveAsync(_reserve, CancellationToken.None);
        var settled = await _store.SettleAsync(result.Reservation!, 660, 2000, CancellationToken.None);
        return settled.WasOpen;
    }

    /// <summary>Cached effective-policy lookup.</summary>
    [Benchmark]
    public async Task<int?> PolicyLookup()
    {
        var policy = await _policies.GetAsync("team-1", "key-1", CancellationToken.None);
        return policy.MaxTokensCap;
    }
}
