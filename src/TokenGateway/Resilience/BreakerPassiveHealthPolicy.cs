using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Resilience;

/// <summary>
/// A YARP passive health policy that leaves destination health to <see cref="CircuitBreakerRegistry"/>: clusters
/// name it (<c>HealthCheck.Passive.Policy = "TokenGatewayCircuitBreaker"</c>) so YARP filters on the health the
/// breakers set, without its own transport-failure policy second-guessing them.
/// </summary>
internal sealed class BreakerPassiveHealthPolicy : IPassiveHealthCheckPolicy
{
    /// <summary>The policy name clusters refer to.</summary>
    public const string PolicyName = "TokenGatewayCircuitBreaker";

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        // Intentionally empty: the breakers see every attempt's outcome (status, transport failure, stream cut),
        // which YARP's per-request view cannot (it never sees a retry or a fallback).
    }
}
