namespace TokenGateway.Core.Metering;

/// <summary>The write side of the ledger: non-blocking, durable, exactly-once per <see cref="UsageEvent.RequestId"/>.</summary>
public interface IUsageLedger
{
    /// <summary>
    /// Hands an event to the ledger without blocking on I/O. Never drops: if the in-memory queue is full the event
    /// is spooled to disk synchronously.
    /// </summary>
    void Record(UsageEvent usageEvent);

    /// <summary>Writes everything queued so far (used by tests and on shutdown).</summary>
    Task FlushAsync(CancellationToken cancellationToken);

    /// <summary>Events waiting in memory.</summary>
    int QueueDepth { get; }

    /// <summary>Events waiting in the spool file.</summary>
    long SpoolDepth { get; }
}

/// <summary>Filters for usage queries; every field optional.</summary>
public sealed record UsageQuery
{
    /// <summary>Team filter.</summary>
    public string? TeamId { get; init; }
    /// <summary>Key filter.</summary>
    public string? KeyId { get; init; }
    /// <summary>Model filter.</summary>
    public string? Model { get; init; }
    /// <summary>Status filter.</summary>
    public string? Status { get; init; }
    /// <summary>Inclusive lower bound on timestamp.</summary>
    public DateTimeOffset? From { get; init; }
    /// <summary>Exclusive upper bound on timestamp.</summary>
    public DateTimeOffset? To { get; init; }
    /// <summary>Grouping: team, key, model, day, hour, or null for totals only.</summary>
    public string? GroupBy { get; init; }
}

/// <summary>Aggregated token and cost totals.</summary>
public sealed record UsageTotals
{
    /// <summary>Number of requests.</summary>
    public long Requests { get; init; }
    /// <summary>Σ input tokens as received.</summary>
    public long InputTokensReceived { get; init; }
    /// <summary>Σ input tokens as sent.</summary>
    public long InputTokensSent { get; init; }
    /// <summary>Σ billed input tokens (provider usage).</summary>
    public long InputTokens { get; init; }
    /// <summary>Σ output tokens.</summary>
    public long OutputTokens { get; init; }
    /// <summary>Σ cached input tokens.</summary>
    public long CachedInputTokens { get; init; }
    /// <summary>Σ reasoning tokens.</summary>
    public long ReasoningTokens { get; init; }
    /// <summary>Σ cost in USD.</summary>
    public decimal CostUsd { get; init; }
    /// <summary>Σ tokens saved by optimization.</summary>
    public long TokensSaved { get; init; }
}

/// <summary>One group of a grouped usage query.</summary>
public sealed record UsageGroup(string Key, UsageTotals Totals);

/// <summary>Result of a usage query.</summary>
public sealed record UsageReport(UsageTotals Totals, IReadOnlyList<UsageGroup> Groups);

/// <summary>The read side of the ledger.</summary>
public interface IUsageQueryService
{
    /// <summary>Aggregates events matching <paramref name="query"/>.</summary>
    Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken);

    /// <summary>Finds one event by request id.</summary>
    Task<UsageEvent?> GetAsync(string requestId, CancellationToken cancellationToken);

    /// <summary>Streams matching events (for CSV export and recent-requests views), newest first, up to <paramref name="limit"/>.</summary>
    IAsyncEnumerable<UsageEvent> ListAsync(UsageQuery query, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Token anatomy per team and model over [<paramref name="from"/>, <paramref name="to"/>), optionally for one
    /// team; only events that carry an <see cref="UsageEvent.Anatomy"/> count. Ordered by team, then model (ordinal).
    /// </summary>
    Task<IReadOnlyList<TokenAnatomyRollup>> GetTokenAnatomyAsync(string? teamId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken);
}
