using System.Collections.Concurrent;

namespace TokenGateway.Core.Budgets;

/// <summary>The webhook payload (and log/metric facts) for a budget crossing its soft-alert percentage.</summary>
public sealed record SoftBudgetAlert
{
    /// <summary>Event type, stable for webhook consumers.</summary>
    public string Type { get; init; } = "budget.soft_limit_reached";

    /// <summary>The team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The key, when a key budget crossed; null for the team budget.</summary>
    public string? KeyId { get; init; }

    /// <summary><c>day</c>, <c>week</c> or <c>month</c>.</summary>
    public required string Period { get; init; }

    /// <summary>Start of the budget window (UTC).</summary>
    public required DateTimeOffset PeriodStart { get; init; }

    /// <summary>When the window resets (UTC).</summary>
    public required DateTimeOffset ResetsAt { get; init; }

    /// <summary><c>usd</c> or <c>tokens</c>.</summary>
    public required string Metric { get; init; }

    /// <summary>The configured alert percentage.</summary>
    public required int ThresholdPercent { get; init; }

    /// <summary>The budget limit (USD or tokens).</summary>
    public required decimal Limit { get; init; }

    /// <summary>Settled spend after the request that crossed the threshold (USD or tokens).</summary>
    public required decimal Spent { get; init; }

    /// <summary>When the crossing was detected.</summary>
    public required DateTimeOffset At { get; init; }
}

/// <summary>Receives soft-alert crossings; the host logs a warning, emits a metric and POSTs the webhook.</summary>
/// <remarks>Called on the settle path: implementations must not block (queue the webhook POST).</remarks>
public interface ISoftAlertSink
{
    /// <summary>Publishes one alert (already de-duplicated: once per scope, metric and window).</summary>
    void Publish(SoftBudgetAlert alert);
}

/// <summary>Remembers which scope/metric/window already alerted so each alerts once per period.</summary>
public sealed class SoftAlertTracker
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _alerted = new(StringComparer.Ordinal);

    /// <summary>True the first time it is called for this team, key, metric and window; false afterwards.</summary>
    public bool TryMark(string teamId, string? keyId, string metric, BudgetWindow window, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        var marked = _alerted.TryAdd(string.Join('\n', teamId, keyId, metric, window.Key), window.End);
        if (marked && _alerted.Count > 1024)
        {
            foreach (var (key, end) in _alerted)
            {
                if (end < now)
                {
                    _alerted.TryRemove(key, out _);
                }
            }
        }

        return marked;
    }
}
