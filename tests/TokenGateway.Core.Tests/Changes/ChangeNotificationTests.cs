using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Changes;

namespace TokenGateway.Core.Tests.Changes;

/// <summary>
/// Two policy providers over one store stand for two replicas; a <see cref="LinkedNotifier"/> pair delivers each one's
/// announcements to the other, as Redis pub/sub does (issue #14).
/// </summary>
public sealed class ChangeNotificationTests
{
    /// <summary>A notifier whose announcements also reach its peers (a stand-in for the Redis channel).</summary>
    private sealed class LinkedNotifier : LocalChangeNotifier
    {
        public List<LinkedNotifier> Peers { get; } = [];

        public int Published { get; private set; }

        public override ValueTask PublishAsync(GatewayChange change, CancellationToken cancellationToken)
        {
            Published++;
            Dispatch(change);
            foreach (var peer in Peers)
            {
                peer.Receive(change);
            }

            return ValueTask.CompletedTask;
        }

        public void Receive(GatewayChange change) => Dispatch(change);
    }

    private static TeamPolicy Usd(decimal usd) => new() { Budget = new BudgetPolicy { Usd = usd } };

    [Fact]
    public async Task SetAsync_OnOneReplica_OtherReplicaDropsItsCachedPolicyAtOnce()
    {
        var time = new FakeTimeProvider();
        var store = new InMemoryPolicyStore(time);
        var (notifierA, notifierB) = (new LinkedNotifier(), new LinkedNotifier());
        notifierA.Peers.Add(notifierB);
        notifierB.Peers.Add(notifierA);
        var a = new PolicyProvider(store, ConfiguredPolicies.Empty, time, changes: notifierA);
        var b = new PolicyProvider(store, ConfiguredPolicies.Empty, time, changes: notifierB);
        var cachedOnB = await b.GetAsync("t1", null, CancellationToken.None);

        await a.SetAsync(PolicyScope.Team, "t1", Usd(5), CancellationToken.None);
        var afterOnB = await b.GetAsync("t1", null, CancellationToken.None); // no time has passed: only the notification explains it

        Assert.Null(cachedOnB.TeamBudget.UsdMicros);
        Assert.Equal(5_000_000, afterOnB.TeamBudget.UsdMicros);
        Assert.Equal(1, notifierA.Published);
    }

    [Fact]
    public async Task RemoveAsync_OnOneReplica_OtherReplicaFallsBackAtOnce()
    {
        var time = new FakeTimeProvider();
        var store = new InMemoryPolicyStore(time);
        var (notifierA, notifierB) = (new LinkedNotifier(), new LinkedNotifier());
        notifierA.Peers.Add(notifierB);
        var a = new PolicyProvider(store, ConfiguredPolicies.Empty, time, changes: notifierA);
        var b = new PolicyProvider(store, ConfiguredPolicies.Empty, time, changes: notifierB);
        await a.SetAsync(PolicyScope.Team, "t1", Usd(5), CancellationToken.None);
        var cachedOnB = await b.GetAsync("t1", null, CancellationToken.None);

        await a.RemoveAsync(PolicyScope.Team, "t1", CancellationToken.None);
        var afterOnB = await b.GetAsync("t1", null, CancellationToken.None);

        Assert.Equal(5_000_000, cachedOnB.TeamBudget.UsdMicros);
        Assert.Null(afterOnB.TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task WithoutNotifier_OtherReplicaKeepsItsCacheUntilTheRefreshInterval()
    {
        var time = new FakeTimeProvider();
        var store = new InMemoryPolicyStore(time);
        var a = new PolicyProvider(store, ConfiguredPolicies.Empty, time, TimeSpan.FromSeconds(1));
        var b = new PolicyProvider(store, ConfiguredPolicies.Empty, time, TimeSpan.FromSeconds(1));
        await b.GetAsync("t1", null, CancellationToken.None);

        await a.SetAsync(PolicyScope.Team, "t1", Usd(5), CancellationToken.None);
        var stale = await b.GetAsync("t1", null, CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(1.01)); // Changes:PollInterval = 1 s: the polling fallback
        var fresh = await b.GetAsync("t1", null, CancellationToken.None);

        Assert.Null(stale.TeamBudget.UsdMicros);
        Assert.Equal(5_000_000, fresh.TeamBudget.UsdMicros);
    }

    [Fact]
    public async Task ChangeAll_DropsEveryCachedPolicy()
    {
        var time = new FakeTimeProvider();
        var store = new InMemoryPolicyStore(time);
        var notifier = new LinkedNotifier();
        var sut = new PolicyProvider(store, ConfiguredPolicies.Empty, time, changes: notifier);
        await sut.GetAsync("t1", null, CancellationToken.None);
        await store.PutAsync(PolicyScope.Team, "t1", Usd(7), CancellationToken.None); // written behind the provider's back

        var stale = await sut.GetAsync("t1", null, CancellationToken.None);
        notifier.Receive(new GatewayChange(ChangeKind.All, "*")); // what a reconnect to Redis announces
        var fresh = await sut.GetAsync("t1", null, CancellationToken.None);

        Assert.Null(stale.TeamBudget.UsdMicros);
        Assert.Equal(7_000_000, fresh.TeamBudget.UsdMicros);
    }
}
