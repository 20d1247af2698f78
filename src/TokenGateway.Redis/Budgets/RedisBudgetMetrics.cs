using System.Diagnostics.Metrics;

namespace TokenGateway.Redis.Budgets;

/// <summary>
/// Instruments of the shared budget store (meter <c>TokenGateway</c>, exported with the gateway's others):
/// <c>tokengateway.budget.store.degraded</c> (1 while Redis is unreachable and admission runs on the fallback) and
/// <c>tokengateway.budget.store.fallbacks</c> (requests decided without Redis, by outcome <c>local</c>|<c>refused</c>).
/// </summary>
internal sealed class RedisBudgetMetrics
{
    private readonly Counter<long> _fallbacks;
    private Func<bool> _degraded = static () => false;

    public RedisBudgetMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create("TokenGateway");
        meter.CreateObservableGauge("tokengateway.budget.store.degraded", () => _degraded() ? 1 : 0, "1",
            "1 while the shared budget counters (Redis) cannot be reached and admission uses the configured fallback.");
        _fallbacks = meter.CreateCounter<long>("tokengateway.budget.store.fallbacks", "{request}",
            "Requests admitted on local counters or refused because Redis could not be reached, by outcome.");
    }

    /// <summary>Where the gauge reads its value.</summary>
    public void Observe(Func<bool> degraded) => _degraded = degraded;

    public void Fallback(string outcome)
    {
        if (_fallbacks.Enabled)
        {
            _fallbacks.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }
}
