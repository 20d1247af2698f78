namespace TokenGateway.Core.Budgets;

/// <summary>What a stored policy applies to.</summary>
public enum PolicyScope
{
    /// <summary>The gateway-wide default (id <see cref="PolicyStoreIds.Default"/>).</summary>
    Default,
    /// <summary>A team (id = team id).</summary>
    Team,
    /// <summary>A virtual key (id = key id).</summary>
    Key,
}

/// <summary>Well-known policy ids.</summary>
public static class PolicyStoreIds
{
    /// <summary>The id under which the default policy is stored.</summary>
    public const string Default = "default";
}

/// <summary>A policy as persisted, with its scope and last update time.</summary>
public sealed record StoredPolicy(PolicyScope Scope, string Id, TeamPolicy Policy, DateTimeOffset UpdatedAt);

/// <summary>Persists team, key and default policies (the admin API writes, the policy provider reads).</summary>
public interface IPolicyStore
{
    /// <summary>Finds one policy.</summary>
    Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken);

    /// <summary>Creates or replaces one policy.</summary>
    Task<StoredPolicy> PutAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken);

    /// <summary>Deletes one policy; false when there was none.</summary>
    Task<bool> DeleteAsync(PolicyScope scope, string id, CancellationToken cancellationToken);

    /// <summary>Lists the policies of a scope ordered by id.</summary>
    Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken);
}

/// <summary>A process-local <see cref="IPolicyStore"/> (tests, and hosts that keep policies only in configuration).</summary>
internal sealed class InMemoryPolicyStore(TimeProvider time) : IPolicyStore
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(PolicyScope, string), StoredPolicy> _policies = new();

    /// <inheritdoc />
    public Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken) =>
        Task.FromResult(_policies.TryGetValue((scope, id), out var stored) ? stored : null);

    /// <inheritdoc />
    public Task<StoredPolicy> PutAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(policy);
        var stored = new StoredPolicy(scope, id, policy, time.GetUtcNow());
        _policies[(scope, id)] = stored;
        return Task.FromResult(stored);
    }

    /// <inheritdoc />
    public Task<bool> DeleteAsync(PolicyScope scope, string id, CancellationToken cancellationToken) =>
        Task.FromResult(_policies.TryRemove((scope, id), out _));

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<StoredPolicy>>(_policies.Values.Where(p => p.Scope == scope).OrderBy(p => p.Id, StringComparer.Ordinal).ToArray());
}
