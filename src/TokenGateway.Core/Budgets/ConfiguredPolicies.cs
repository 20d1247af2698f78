namespace TokenGateway.Core.Budgets;

/// <summary>
/// Policies from configuration (<c>Policies:Default</c>, <c>Policies:Teams:{teamId}</c>, <c>Policies:Keys:{keyId}</c>).
/// A policy in the store (set through the admin API) takes precedence over the configured one for the same id.
/// </summary>
public sealed record ConfiguredPolicies
{
    /// <summary>Nothing configured.</summary>
    public static ConfiguredPolicies Empty { get; } = new();

    /// <summary>The default policy every team inherits from.</summary>
    public TeamPolicy? Default { get; init; }

    /// <summary>Team policies by team id.</summary>
    public IReadOnlyDictionary<string, TeamPolicy> Teams { get; init; } = new Dictionary<string, TeamPolicy>();

    /// <summary>Key policies by key id.</summary>
    public IReadOnlyDictionary<string, TeamPolicy> Keys { get; init; } = new Dictionary<string, TeamPolicy>();

    /// <summary>Finds the configured policy for a scope and id.</summary>
    public TeamPolicy? Find(PolicyScope scope, string id) => scope switch
    {
        PolicyScope.Default => Default,
        PolicyScope.Team => Teams.TryGetValue(id, out var team) ? team : null,
        _ => Keys.TryGetValue(id, out var key) ? key : null,
    };
}
