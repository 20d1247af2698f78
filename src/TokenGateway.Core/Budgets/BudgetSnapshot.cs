namespace TokenGateway.Core.Budgets;

/// <summary>The body of <c>GET /admin/teams/{id}/budget</c>: the current window's spend, reservations and remainder.</summary>
public sealed record BudgetSnapshot
{
    /// <summary><c>day</c>, <c>week</c> or <c>month</c>.</summary>
    public required string Period { get; init; }

    /// <summary>Settled spend in the window (USD).</summary>
    public required decimal SpentUsd { get; init; }

    /// <summary>Worst-case cost of requests in flight (USD).</summary>
    public required decimal ReservedUsd { get; init; }

    /// <summary>USD budget minus spent and reserved (never negative); null when there is no USD budget.</summary>
    public decimal? RemainingUsd { get; init; }

    /// <summary>Settled tokens (billed input + output) in the window.</summary>
    public required long SpentTokens { get; init; }

    /// <summary>When the window ends and the counters restart (UTC).</summary>
    public required DateTimeOffset ResetsAt { get; init; }

    /// <summary>Start of the window (UTC).</summary>
    public required DateTimeOffset PeriodStart { get; init; }

    /// <summary>The USD budget, if any.</summary>
    public decimal? BudgetUsd { get; init; }

    /// <summary>The token budget, if any.</summary>
    public long? BudgetTokens { get; init; }

    /// <summary>Tokens held by requests in flight.</summary>
    public long ReservedTokens { get; init; }

    /// <summary>Token budget minus spent and reserved; null when there is no token budget.</summary>
    public long? RemainingTokens { get; init; }

    /// <summary>Requests in flight holding a reservation.</summary>
    public int OpenReservations { get; init; }

    /// <summary>True when the budget refuses requests; false when it only alerts.</summary>
    public bool Hard { get; init; }
}
