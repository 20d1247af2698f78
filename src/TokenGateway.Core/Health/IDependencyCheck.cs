namespace TokenGateway.Core.Health;

/// <summary>How one external dependency is doing, as <c>/readyz</c> reports it.</summary>
/// <param name="Status"><c>ok</c>, <c>not_configured</c> (an optional dependency that is not used: degrades nothing),
/// <c>degraded</c> (serving with a fallback) or <c>unavailable</c>.</param>
/// <param name="Ready">False when the replica should leave the load balancer because of it.</param>
/// <param name="Detail">A short reason, never a secret or connection string.</param>
public readonly record struct DependencyHealth(string Status, bool Ready, string? Detail = null)
{
    /// <summary>The state of a dependency that is not used (degrades nothing).</summary>
    public const string NotConfigured = "not_configured";

    /// <summary>The state of a dependency that answers.</summary>
    public const string Ok = "ok";

    /// <summary>True when the dependency is in use and not fully healthy (<c>/readyz</c> then says <c>degraded</c>).</summary>
    public bool IsDegraded => Status is not (Ok or NotConfigured);
}

/// <summary>An external dependency that <c>/readyz</c> reports (Redis, PostgreSQL, …).</summary>
public interface IDependencyCheck
{
    /// <summary>The name in the report (<c>redis</c>).</summary>
    string Name { get; }

    /// <summary>Checks the dependency quickly (a ping with a short timeout).</summary>
    Task<DependencyHealth> CheckAsync(CancellationToken cancellationToken);
}
