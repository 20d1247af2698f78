using System.Collections.Concurrent;
using BitFaster.Caching.Lru;
using TokenGateway.Core.Changes;

namespace TokenGateway.Core.Budgets;

/// <summary>Serves effective policies on the hot path and applies admin changes without a restart.</summary>
public interface IPolicyProvider
{
    /// <summary>The effective policy for a team and (optionally) key; cached, no store access on a hit.</summary>
    ValueTask<EffectivePolicy> GetAsync(string teamId, string? keyId, CancellationToken cancellationToken);

    /// <summary>The policy set for exactly this scope and id (store, else configuration), without inheritance.</summary>
    ValueTask<TeamPolicy?> GetOwnAsync(PolicyScope scope, string id, CancellationToken cancellationToken);

    /// <summary>Validates, stores and applies a policy immediately; returns the validation errors instead when invalid.</summary>
    Task<PolicyWriteResult> SetAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken);

    /// <summary>Deletes a stored policy (the configured one, if any, applies again); false when none was stored.</summary>
    Task<bool> RemoveAsync(PolicyScope scope, string id, CancellationToken cancellationToken);

    /// <summary>Replaces the configured policies (configuration reload) and drops every cached entry.</summary>
    void UpdateConfigured(ConfiguredPolicies configured);
}

/// <summary>The outcome of <see cref="IPolicyProvider.SetAsync"/>.</summary>
public sealed record PolicyWriteResult(StoredPolicy? Stored, IReadOnlyList<PolicyError> Errors)
{
    /// <summary>True when stored.</summary>
    public bool Succeeded => Stored is not null;
}

/// <summary>
/// Caching <see cref="IPolicyProvider"/>: own policies and effective policies are cached in process and invalidated on
/// every write through this provider; entries also expire after <c>refreshInterval</c> so changes made by other
/// replicas are picked up. When reloading an expired policy fails (the store is unreachable), the last loaded policy
/// is served and the store asked again after <see cref="StaleRetry"/>; a policy never loaded still needs the store.
/// With an <see cref="IChangeNotifier"/>, writes are announced to the other replicas and their
/// announcements drop the affected entries here (Redis pub/sub: within a second, not a refresh interval).
/// </summary>
internal sealed class PolicyProvider : IPolicyProvider
{
    /// <summary>Most (team, key) effective policies kept; the least recently used beyond it are resolved again.</summary>
    public const int MaxEffectiveEntries = 50_000;

    /// <summary>How long a policy is served stale after a failed reload before the store is asked again.</summary>
    public static readonly TimeSpan StaleRetry = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<(PolicyScope Scope, string Id), CachedOwn> _own = new();
    private readonly ConcurrentLru<(string TeamId, string? KeyId), CachedEffective> _effective = new(MaxEffectiveEntries);
    private readonly IPolicyStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _refreshInterval;
    private readonly IChangeNotifier? _changes;
    private ConfiguredPolicies _configured;
    private long _generation;

    /// <summary>Creates the provider.</summary>
    /// <param name="store">Where admin-set policies live.</param>
    /// <param name="configured">Policies from configuration (fallback per id, and the default).</param>
    /// <param name="time">Clock for cache expiry.</param>
    /// <param name="refreshInterval">How long cached entries live (default 1 minute); writes here apply at once.</param>
    /// <param name="changes">Announces writes to other replicas and applies theirs; null = this process only.</param>
    public PolicyProvider(IPolicyStore store, ConfiguredPolicies configured, TimeProvider time, TimeSpan? refreshInterval = null, IChangeNotifier? changes = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(configured);
        ArgumentNullException.ThrowIfNull(time);
        _store = store;
        _configured = configured;
        _time = time;
        _refreshInterval = refreshInterval ?? TimeSpan.FromMinutes(1);
        _changes = changes;
        changes?.Subscribe(OnChange);
    }

    /// <inheritdoc />
    public ValueTask<EffectivePolicy> GetAsync(string teamId, string? keyId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(teamId);
        var generation = Volatile.Read(ref _generation);
        if (_effective.TryGet((teamId, keyId), out var cached) && cached.Generation == generation && cached.ExpiresAt > _time.GetUtcNow())
        {
            return ValueTask.FromResult(cached.Policy);
        }

        return new ValueTask<EffectivePolicy>(ResolveAsync(teamId, keyId, generation, cancellationToken));
    }

    /// <inheritdoc />
    public async ValueTask<TeamPolicy?> GetOwnAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return await LoadOwnAsync(scope, id, cancellationToken) ?? _configured.Find(scope, id);
    }

    /// <inheritdoc />
    public async Task<PolicyWriteResult> SetAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(policy);
        var errors = PolicyValidator.Validate(policy);
        if (errors.Count > 0)
        {
            return new PolicyWriteResult(null, errors);
        }

        var stored = await _store.PutAsync(scope, id, policy, cancellationToken);
        await AnnounceAsync(scope, id);
        _own[(scope, id)] = new CachedOwn(Task.FromResult<TeamPolicy?>(policy), _time.GetUtcNow() + _refreshInterval);
        Invalidate();
        return new PolicyWriteResult(stored, []);
    }

    /// <inheritdoc />
    public async Task<bool> RemoveAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var removed = await _store.DeleteAsync(scope, id, cancellationToken);
        await AnnounceAsync(scope, id);
        _own[(scope, id)] = new CachedOwn(Task.FromResult<TeamPolicy?>(null), _time.GetUtcNow() + _refreshInterval);
        Invalidate();
        return removed;
    }

    /// <inheritdoc />
    public void UpdateConfigured(ConfiguredPolicies configured)
    {
        ArgumentNullException.ThrowIfNull(configured);
        _configured = configured;
        Invalidate();
    }

    private async ValueTask AnnounceAsync(PolicyScope scope, string id)
    {
        if (_changes is not null)
        {
            // Not cancelled by the caller: the write is stored, so the other replicas must hear of it.
            await _changes.PublishAsync(GatewayChange.Policy(scope, id), CancellationToken.None);
        }
    }

    private void OnChange(GatewayChange change)
    {
        switch (change.Kind)
        {
            case ChangeKind.Policy:
                var separator = change.Id.IndexOf(':', StringComparison.Ordinal);
                if (separator > 0 && Enum.TryParse<PolicyScope>(change.Id.AsSpan(0, separator), ignoreCase: true, out var scope))
                {
                    _own.TryRemove((scope, change.Id[(separator + 1)..]), out _);
                }
                else
                {
                    _own.Clear();
                }

                Invalidate();
                break;
            case ChangeKind.All:
                _own.Clear();
                Invalidate();
                break;
        }
    }

    private void Invalidate()
    {
        // Entries are re-validated by generation: a stale one is replaced on its next use or evicted by the LRU bound,
        // so a write never wipes the other teams' cached policies.
        Interlocked.Increment(ref _generation);
    }

    private async Task<EffectivePolicy> ResolveAsync(string teamId, string? keyId, long generation, CancellationToken cancellationToken)
    {
        var configured = _configured;
        var defaults = await LoadOwnAsync(PolicyScope.Default, PolicyStoreIds.Default, cancellationToken) ?? configured.Default;
        var team = await LoadOwnAsync(PolicyScope.Team, teamId, cancellationToken) ?? configured.Find(PolicyScope.Team, teamId);
        var key = keyId is null ? null : await LoadOwnAsync(PolicyScope.Key, keyId, cancellationToken) ?? configured.Find(PolicyScope.Key, keyId);
        var effective = EffectivePolicy.Resolve(teamId, keyId, defaults, team, key);

        // A write that raced with this resolution bumped the generation, so this entry is never served after it.
        _effective.AddOrUpdate((teamId, keyId), new CachedEffective(effective, generation, _time.GetUtcNow() + _refreshInterval));
        return effective;
    }

    private async Task<TeamPolicy?> LoadOwnAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var key = (scope, id);
        CachedOwn? stale = null;
        if (!_own.TryGetValue(key, out var cached) || cached.ExpiresAt <= now || cached.Policy.IsFaulted || cached.Policy.IsCanceled)
        {
            stale = cached is { Policy.IsCompletedSuccessfully: true } ? cached : null;
            var fresh = new CachedOwn(LoadFromStoreAsync(scope, id), now + _refreshInterval);
            cached = cached is null ? _own.GetOrAdd(key, fresh) : _own.TryUpdate(key, fresh, cached) ? fresh : _own.GetValueOrDefault(key, fresh);
        }

        try
        {
            return await cached.Policy.WaitAsync(cancellationToken);
        }
        catch (Exception) when (cached.Policy.IsFaulted)
        {
            if (stale is not null)
            {
                // The store is unreachable (a shared PostgreSQL outage): keep the last policy this process loaded and
                // ask the store again after a short pause, instead of failing every request of the team.
                _own.TryUpdate(key, stale with { ExpiresAt = now + StaleRetry }, cached);
                return stale.Policy.Result;
            }

            _own.TryRemove(new KeyValuePair<(PolicyScope, string), CachedOwn>(key, cached));
            throw;
        }
    }

    private async Task<TeamPolicy?> LoadFromStoreAsync(PolicyScope scope, string id)
    {
        // Shared by concurrent callers: not cancelled by any one of them.
        var stored = await _store.GetAsync(scope, id, CancellationToken.None);
        return stored?.Policy;
    }

    private sealed record CachedOwn(Task<TeamPolicy?> Policy, DateTimeOffset ExpiresAt);

    private sealed record CachedEffective(EffectivePolicy Policy, long Generation, DateTimeOffset ExpiresAt);
}
