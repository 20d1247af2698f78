namespace TokenGateway.Core.Changes;

/// <summary>Configuration section <c>Changes</c>: how fast admin changes reach replicas that cache them.</summary>
public sealed class ChangeOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Changes";

    /// <summary>
    /// How long a replica serves a cached key lookup or policy before reading the store again. Null (default) = 30 s for
    /// keys and 60 s for policies (one replica, or Redis pub/sub invalidation); set to 1 s when several replicas share a
    /// store without Redis, so a revocation or policy change on one reaches the others within a second (polling).
    /// </summary>
    public TimeSpan? PollInterval { get; set; }
}
