using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Auth;
using TokenGateway.Core.Changes;
using TokenGateway.Core.Teams;

namespace TokenGateway.IntegrationTests.Auth;

/// <summary>The key cache in front of the team store (issue #11: no whole-cache wipe, no Count per miss).</summary>
public sealed class VirtualKeyAuthenticatorTests
{
    private const string KeyA = "tg-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string KeyB = "tg-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// <summary>A team store the authenticator can only look keys up in; everything else is out of these tests' scope.</summary>
    private abstract class LookupOnlyStore : ITeamStore
    {
        public abstract Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken);

        public Task<Team> CreateTeamAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<Team?> GetTeamAsync(string teamId, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<Page<Team>> ListTeamsAsync(int limit, string? afterId, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<VirtualKey> CreateKeyAsync(string teamId, string name, string keyHash, string prefix, DateTimeOffset? expiresAt, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<Page<VirtualKey>> ListKeysAsync(string teamId, int limit, string? afterId, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<VirtualKey?> GetKeyAsync(string keyId, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<bool> RevokeKeyAsync(string keyId, DateTimeOffset at, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<string?> GetSettingAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task SetSettingAsync(string name, string value, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private sealed class CountingStore : LookupOnlyStore
    {
        private readonly Dictionary<string, VirtualKey> _byHash = new(StringComparer.Ordinal)
        {
            [ApiKeys.Hash(KeyA)] = new("key_a", "team_1", "a", "tg-aaaa", DateTimeOffset.UnixEpoch, null, null),
            [ApiKeys.Hash(KeyB)] = new("key_b", "team_1", "b", "tg-bbbb", DateTimeOffset.UnixEpoch, null, null),
        };

        public ConcurrentDictionary<string, int> Lookups { get; } = new(StringComparer.Ordinal);

        /// <summary>When set, every lookup fails like an unreachable database.</summary>
        public bool Down { get; set; }

        public override Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken)
        {
            Lookups.AddOrUpdate(keyHash, 1, static (_, n) => n + 1);
            if (Down)
            {
                return Task.FromException<VirtualKey?>(new TimeoutException("the store is unreachable"));
            }

            return Task.FromResult(_byHash.GetValueOrDefault(keyHash));
        }

        public int LookupsOf(string key) => Lookups.GetValueOrDefault(ApiKeys.Hash(key));
    }

    [Fact]
    public async Task Invalidate_OneKey_EvictsOnlyThatKey()
    {
        var store = new CountingStore();
        var sut = new VirtualKeyAuthenticator(store, new FakeTimeProvider());
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        await sut.AuthenticateAsync(KeyB, CancellationToken.None);

        sut.Invalidate("key_a");
        var a = await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        var b = await sut.AuthenticateAsync(KeyB, CancellationToken.None);

        Assert.Equal(new CallerIdentity("team_1", "key_a"), a);
        Assert.Equal(new CallerIdentity("team_1", "key_b"), b);
        Assert.Equal(2, store.LookupsOf(KeyA)); // looked up again after its revocation
        Assert.Equal(1, store.LookupsOf(KeyB)); // still served from the cache
    }

    [Fact]
    public async Task AuthenticateAsync_FloodOfUnknownKeys_StaysBoundedAndKeepsTheKeyInUse()
    {
        // Before: past 100,000 entries the whole cache was cleared, so every caller's key went back to the store.
        var store = new CountingStore();
        var sut = new VirtualKeyAuthenticator(store, new FakeTimeProvider());
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        for (var i = 0; i < VirtualKeyAuthenticator.Capacity * 3 / 2; i++)
        {
            Assert.Null(await sut.AuthenticateAsync($"tg-unknown-{i:D12}", CancellationToken.None));
            if (i % 500 == 0)
            {
                Assert.NotNull(await sut.AuthenticateAsync(KeyA, CancellationToken.None));
            }
        }

        Assert.Equal(1, store.LookupsOf(KeyA));
        Assert.InRange(sut.Count, 1, VirtualKeyAuthenticator.Capacity);
    }

    [Fact]
    public async Task AuthenticateAsync_AfterTtl_LooksUpAgain()
    {
        var store = new CountingStore();
        var time = new FakeTimeProvider();
        var sut = new VirtualKeyAuthenticator(store, time);
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        time.Advance(TimeSpan.FromSeconds(31));
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        Assert.Equal(2, store.LookupsOf(KeyA));
    }

    [Fact]
    public async Task AuthenticateAsync_StoreDownAfterTtl_ServesTheLastKnownKeyAndRetriesAfterAPause()
    {
        var store = new CountingStore();
        var time = new FakeTimeProvider();
        var sut = new VirtualKeyAuthenticator(store, time);
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        store.Down = true;

        time.Advance(TimeSpan.FromSeconds(31));
        var during = await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        var again = await sut.AuthenticateAsync(KeyA, CancellationToken.None); // within the pause: no second failing lookup
        time.Advance(VirtualKeyAuthenticator.StaleRetry);
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        Assert.Equal(new CallerIdentity("team_1", "key_a"), during);
        Assert.Equal(during, again);
        Assert.Equal(3, store.LookupsOf(KeyA)); // the first, the failed refresh, one retry after the pause
    }

    [Fact]
    public async Task AuthenticateAsync_StoreDownAndKeyNeverSeen_Throws()
    {
        var store = new CountingStore { Down = true };
        var sut = new VirtualKeyAuthenticator(store, new FakeTimeProvider());

        await Assert.ThrowsAsync<TimeoutException>(async () => await sut.AuthenticateAsync(KeyA, CancellationToken.None));
    }

    [Fact]
    public async Task KeyChangeFromAnotherReplica_EvictsThatKeyAndAllEvictsEverything()
    {
        var store = new CountingStore();
        var changes = new LocalChangeNotifier();
        var sut = new VirtualKeyAuthenticator(store, new FakeTimeProvider(), changes);
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        await sut.AuthenticateAsync(KeyB, CancellationToken.None);

        await changes.PublishAsync(new GatewayChange(ChangeKind.Key, "key_a"), CancellationToken.None);
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);
        await sut.AuthenticateAsync(KeyB, CancellationToken.None);
        await changes.PublishAsync(new GatewayChange(ChangeKind.All, "*"), CancellationToken.None);
        await sut.AuthenticateAsync(KeyB, CancellationToken.None);

        Assert.Equal(2, store.LookupsOf(KeyA));
        Assert.Equal(2, store.LookupsOf(KeyB)); // kept on the key change, dropped on "all"
    }

    [Fact]
    public async Task AuthenticateAsync_PollInterval1s_LooksUpAgainAfterOneSecond()
    {
        var store = new CountingStore();
        var time = new FakeTimeProvider();
        var sut = new VirtualKeyAuthenticator(store, time, ttl: TimeSpan.FromSeconds(1));
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        time.Advance(TimeSpan.FromSeconds(1.01));
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        Assert.Equal(2, store.LookupsOf(KeyA));
    }

    private sealed class GatedStore : LookupOnlyStore
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Lookups;

        public override async Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Lookups);
            await Gate.Task;
            return new VirtualKey("key_a", "team_1", "a", "tg-aaaa", DateTimeOffset.UnixEpoch, null, null); // read before the revocation committed
        }
    }

    [Fact]
    public async Task Invalidate_WhileALookupIsInFlight_TheOlderAnswerIsNotCached()
    {
        var store = new GatedStore();
        var sut = new VirtualKeyAuthenticator(store, new FakeTimeProvider());
        var inFlight = sut.AuthenticateAsync(KeyA, CancellationToken.None).AsTask();

        sut.Invalidate("key_a"); // the revocation lands while the store is being read
        store.Gate.SetResult();
        await inFlight;
        await sut.AuthenticateAsync(KeyA, CancellationToken.None);

        Assert.Equal(2, store.Lookups); // the next request reads the store again instead of trusting the stale answer
    }
}
