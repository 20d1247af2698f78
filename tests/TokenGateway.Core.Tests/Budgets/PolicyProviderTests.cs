using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class PolicyProviderTests
{
    private sealed class CountingStore(TimeProvider time) : IPolicyStore
    {
        private readonly InMemoryPolicyStore _inner = new(time);
        private int _reads;

        public int Reads => _reads;

        /// <summary>When set, every read fails like an unreachable database.</summary>
        public bool Down { get; set; }

        public Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _reads);
            if (Down)
            {
                return Task.FromException<StoredPolicy?>(new TimeoutException("the store is unreachable"));
            }

            return _inner.GetAsync(scope, id, cancellationToken);
        }

        public Task<StoredPolicy> PutAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken) => _inner.PutAsync(scope, id, policy, cancellationToken);

        public Task<bool> DeleteAsync(PolicyScope scope, string id, CancellationToken cancellationToken) => _inner.DeleteAsync(scope, id, cancellationToken);

        public Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken) => _inner.ListAsync(scope, cancellationToken);
    }

    private static TeamPolicy Usd(decimal usd) => new() { Budget = new BudgetPolicy { Usd = usd } };

    [Fact]
    public async Task GetAsync_Repeated_HitsStoreOnlyOnFirstCall()
    {
        var time = new FakeTimeProvider();
        var store = new CountingStore(time);
        var sut = new PolicyProvider(store, ConfiguredPolicies.Empty, time);

        for (var i = 0; i < 100; i++)
        {
            await sut.GetAsync("t1", "k1", CancellationToken.None);
        }

        Assert.Equal(3, store.Reads); // default, team, key — once each
    }

    [Fact]
    public async Task SetAsync_TeamPolicy_AppliesWithoutRestart()
    {
        var time = new FakeTimeProvider();
        var sut = new PolicyProvider(new CountingStore(time), ConfiguredPolicies.Empty, time);
        var before = await sut.GetAsync("t1", null, CancellationToken.None);

        var write = await sut.SetAsync(PolicyScope.Team, "t1", Usd(5), CancellationToken.None);
        var after = await sut.GetAsync("t1", null, CancellationToken.None);

        Assert.True(write.Succeeded);
        Assert.Null(before.TeamBudget.UsdMicros);
        Assert.Equal(5_000_000, after.TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task SetAsync_InvalidPolicy_ReturnsErrorsAndStoresNothing()
    {
        var time = new FakeTimeProvider();
        var store = new CountingStore(time);
        var sut = new PolicyProvider(store, ConfiguredPolicies.Empty, time);

        var write = await sut.SetAsync(PolicyScope.Team, "t1", new TeamPolicy { Budget = new BudgetPolicy { Usd = -3 } }, CancellationToken.None);

        Assert.False(write.Succeeded);
        Assert.Equal("budget.usd", Assert.Single(write.Errors).Field);
        Assert.Null(await store.GetAsync(PolicyScope.Team, "t1", CancellationToken.None));
    }

    [Fact]
    public async Task GetAsync_ConfiguredPolicies_StoreOverridesAndRemoveFallsBack()
    {
        var time = new FakeTimeProvider();
        var configured = new ConfiguredPolicies
        {
            Default = new TeamPolicy { Budget = new BudgetPolicy { Period = BudgetPeriod.Week }, RateLimits = new RateLimitPolicy { RequestsPerMinute = 60 } },
            Teams = new Dictionary<string, TeamPolicy> { ["t1"] = Usd(10) },
        };
        var sut = new PolicyProvider(new CountingStore(time), configured, time);

        var fromConfig = await sut.GetAsync("t1", null, CancellationToken.None);
        await sut.SetAsync(PolicyScope.Team, "t1", Usd(20), CancellationToken.None);
        var fromStore = await sut.GetAsync("t1", null, CancellationToken.None);
        await sut.RemoveAsync(PolicyScope.Team, "t1", CancellationToken.None);
        var back = await sut.GetAsync("t1", null, CancellationToken.None);

        Assert.Equal(10_000_000, fromConfig.TeamBudget.UsdMicros);
        Assert.Equal(BudgetPeriod.Week, fromConfig.TeamBudget.Period);
        Assert.Equal(60, fromConfig.TeamRate.RequestsPerMinute);
        Assert.Equal(20_000_000, fromStore.TeamBudget.UsdMicros);
        Assert.Equal(BudgetPeriod.Week, fromStore.TeamBudget.Period);
        Assert.Equal(10_000_000, back.TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task SetAsync_DefaultPolicy_AppliesToEveryTeam()
    {
        var time = new FakeTimeProvider();
        var sut = new PolicyProvider(new CountingStore(time), ConfiguredPolicies.Empty, time);
        await sut.GetAsync("t1", null, CancellationToken.None);

        await sut.SetAsync(PolicyScope.Default, PolicyStoreIds.Default, new TeamPolicy { MaxTokens = new MaxTokensPolicy { Cap = 100 } }, CancellationToken.None);

        Assert.Equal(100, (await sut.GetAsync("t1", null, CancellationToken.None)).MaxTokensCap);
        Assert.Equal(100, (await sut.GetAsync("t2", "k9", CancellationToken.None)).MaxTokensCap);
    }

    [Fact]
    public async Task GetAsync_ChangedByAnotherReplica_SeenAfterRefreshInterval()
    {
        var time = new FakeTimeProvider();
        var store = new CountingStore(time);
        var sut = new PolicyProvider(store, ConfiguredPolicies.Empty, time, TimeSpan.FromSeconds(30));
        await sut.GetAsync("t1", null, CancellationToken.None);

        await store.PutAsync(PolicyScope.Team, "t1", Usd(3), CancellationToken.None); // not through this provider
        var stale = await sut.GetAsync("t1", null, CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(31));
        var fresh = await sut.GetAsync("t1", null, CancellationToken.None);

        Assert.Null(stale.TeamBudget.UsdMicros);
        Assert.Equal(3_000_000, fresh.TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task UpdateConfigured_Reload_AppliesNewConfiguration()
    {
        var time = new FakeTimeProvider();
        var sut = new PolicyProvider(new CountingStore(time), ConfiguredPolicies.Empty, time);
        await sut.GetAsync("t1", null, CancellationToken.None);

        sut.UpdateConfigured(new ConfiguredPolicies { Teams = new Dictionary<string, TeamPolicy> { ["t1"] = Usd(7) } });

        Assert.Equal(7_000_000, (await sut.GetAsync("t1", null, CancellationToken.None)).TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task GetOwnAsync_ReturnsUninheritedPolicy()
    {
        var time = new FakeTimeProvider();
        var sut = new PolicyProvider(new CountingStore(time), new ConfiguredPolicies { Default = Usd(1) }, time);
        await sut.SetAsync(PolicyScope.Key, "k1", new TeamPolicy { RateLimits = new RateLimitPolicy { RequestsPerMinute = 5 } }, CancellationToken.None);

        var own = await sut.GetOwnAsync(PolicyScope.Key, "k1", CancellationToken.None);
        var none = await sut.GetOwnAsync(PolicyScope.Team, "t-unknown", CancellationToken.None);

        Assert.Null(own!.Budget);
        Assert.Equal(5, own.RateLimits!.RequestsPerMinute);
        Assert.Null(none);
    }

    [Fact]
    public async Task GetAsync_StoreDownAfterRefreshInterval_ServesTheLastLoadedPolicy()
    {
        var time = new FakeTimeProvider();
        var store = new CountingStore(time);
        var sut = new PolicyProvider(store, ConfiguredPolicies.Empty, time, TimeSpan.FromSeconds(10));
        await sut.SetAsync(PolicyScope.Team, "t1", Usd(5), CancellationToken.None);
        await sut.GetAsync("t1", null, CancellationToken.None);
        store.Down = true;

        time.Advance(TimeSpan.FromSeconds(11));
        var readsBefore = store.Reads;
        var during = await sut.GetAsync("t1", null, CancellationToken.None);

        Assert.Equal(5_000_000, during.TeamBudget.UsdMicros);
        Assert.True(store.Reads > readsBefore); // it did try the store
        store.Down = false;
        time.Advance(PolicyProvider.StaleRetry);
        Assert.Equal(5_000_000, (await sut.GetAsync("t1", null, CancellationToken.None)).TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task GetAsync_StoreDownAndPolicyNeverLoaded_Throws()
    {
        var time = new FakeTimeProvider();
        var sut = new PolicyProvider(new CountingStore(time) { Down = true }, ConfiguredPolicies.Empty, time);

        await Assert.ThrowsAsync<TimeoutException>(async () => await sut.GetAsync("t1", null, CancellationToken.None));
    }
}
