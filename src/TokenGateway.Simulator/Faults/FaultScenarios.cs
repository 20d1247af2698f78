using System.Collections.Concurrent;

namespace TokenGateway.Simulator.Faults;

/// <summary>
/// Resolves scoped fault plans: counts the requests of each <c>scenario=ID</c> (so <c>first=N</c> fires the faults on
/// the first N requests only, then the simulator answers normally) and applies <c>model=NAME</c>.
/// </summary>
public sealed class FaultScenarios
{
    private const int MaxScenarios = 100_000;
    private readonly ConcurrentDictionary<string, StrongBox> _counts = new(StringComparer.Ordinal);

    /// <summary>How many requests the simulator has received with this scenario id (0 when never seen).</summary>
    public int Count(string scenario) => _counts.TryGetValue(scenario, out var box) ? Volatile.Read(ref box.Value) : 0;

    /// <summary>Forgets every scenario counter.</summary>
    public void Clear() => _counts.Clear();

    internal FaultPlan Resolve(FaultPlan plan, string? model)
    {
        if (!plan.IsScoped)
        {
            return plan;
        }

        if (plan.Model is not null && !string.Equals(plan.Model, model, StringComparison.OrdinalIgnoreCase))
        {
            return FaultPlan.Inert;
        }

        if (plan.Scenario is null)
        {
            return plan;
        }

        if (_counts.Count >= MaxScenarios && !_counts.ContainsKey(plan.Scenario))
        {
            _counts.Clear(); // bounded: a long-running simulator forgets old scenarios rather than growing without end
        }

        var box = _counts.GetOrAdd(plan.Scenario, static _ => new StrongBox());
        var n = Interlocked.Increment(ref box.Value);
        return plan.First is { } first && n > first ? FaultPlan.Inert : plan;
    }

    private sealed class StrongBox
    {
        public int Value;
    }
}
