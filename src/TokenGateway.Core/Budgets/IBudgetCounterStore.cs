namespace TokenGateway.Core.Budgets;

/// <summary>
/// Atomic budget and rate counters: the seam between admission and where counters live (in-process for one node,
/// Redis for many replicas).
/// </summary>
/// <remarks>
/// Every operation is atomic per team: all of a team's counters (its key scopes included) change together or not at
/// all. The Redis implementation (<c>TokenGateway.Redis</c>, <c>RedisBudgetCounterStore</c>) maps each call to one Lua
/// script over keys hash-tagged with the team (<c>tg:{team}:…</c>, one cluster slot):
/// <list type="bullet">
/// <item><see cref="TryReserveAsync"/>: reap the team's expired reservations, refill the token buckets (level/updated,
/// Redis <c>TIME</c>), read the spent/reserved hashes of the team and key windows, compute the granted output tokens,
/// and only if every check passes <c>HINCRBY</c> reserved, debit the buckets and <c>ZADD tg:{team}:res expiry id</c>
/// plus <c>HSET tg:{team}:resd id …</c>; otherwise return the denial without writing. A window without its seeded
/// marker (Redis lost it) yields <see cref="ReserveResult.Unseeded"/>.</item>
/// <item><see cref="SettleAsync"/>: <c>ZREM</c> the id (1 = still active: subtract its reserved amounts), then
/// <c>HINCRBY</c> spent and refund the token-bucket estimate difference; returns spent before/after.</item>
/// <item><see cref="ReleaseAsync"/>: <c>ZREM</c>; if removed, subtract reserved and refund the bucket.</item>
/// <item><see cref="ReapExpiredAsync"/>: <c>ZRANGEBYSCORE res -inf now</c>, then as release (minus the refund).</item>
/// <item><see cref="SeedSpentAsync"/>: <c>spent = max(spent, seed)</c> and the seeded marker in one script, so
/// concurrent seeders agree.</item>
/// <item><see cref="GetSnapshotAsync"/>: reap, then <c>HMGET</c> of the window hash. Window hashes expire an hour
/// after the window ends plus the reservation TTL.</item>
/// </list>
/// </remarks>
public interface IBudgetCounterStore
{
    /// <summary>Checks every limit of the request and, only if all pass, reserves budget and rate quota atomically.</summary>
    ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the reservation with the actual spend (charged to the window the reservation was made in, even after
    /// a rollover or after the reservation expired). Call at most once per reservation.
    /// </summary>
    ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken);

    /// <summary>Gives the reserved budget and token quota back (nothing was spent). Call at most once per reservation.</summary>
    ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken);

    /// <summary>Reads a window's counters for a team (<paramref name="keyId"/> null) or one of its keys.</summary>
    ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken);

    /// <summary>Raises a window's spent counters to at least the given values (initialisation from the ledger).</summary>
    ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken);

    /// <summary>Releases reservations whose TTL has passed (crashed or lost requests); returns how many.</summary>
    ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken);
}

/// <summary>A scope's budget window and limits for one reservation.</summary>
public readonly record struct BudgetLine(BudgetWindow Window, BudgetLimits Limits);

/// <summary>Everything one atomic reservation checks and takes.</summary>
public sealed record ReserveRequest
{
    /// <summary>The team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The key, when key-scoped limits apply or key spend is tracked.</summary>
    public string? KeyId { get; init; }

    /// <summary>Team window and limits.</summary>
    public required BudgetLine TeamBudget { get; init; }

    /// <summary>Key window and limits, when the key has a budget.</summary>
    public BudgetLine? KeyBudget { get; init; }

    /// <summary>Team per-minute limits.</summary>
    public RateLimits TeamRate { get; init; }

    /// <summary>Key per-minute limits.</summary>
    public RateLimits? KeyRate { get; init; }

    /// <summary>Counted input tokens.</summary>
    public required int InputTokens { get; init; }

    /// <summary>Cost of the input tokens in micro-dollars (rounded up).</summary>
    public required long InputCostMicros { get; init; }

    /// <summary>The output tokens wanted (the effective max_tokens before any budget lowering).</summary>
    public required int MaxOutputTokens { get; init; }

    /// <summary>The fewest output tokens worth forwarding; equal to <see cref="MaxOutputTokens"/> to disable lowering.</summary>
    public required int MinOutputTokens { get; init; }

    /// <summary>Output price in micro-dollars per million tokens.</summary>
    public required long OutputMicrosPerMillion { get; init; }

    /// <summary>How long the reservation lives if never settled or released.</summary>
    public required TimeSpan Ttl { get; init; }
}

/// <summary>A granted reservation; the handle for settle and release. Carries everything needed to settle it late.</summary>
public sealed record BudgetReservation
{
    /// <summary>Unique id.</summary>
    public required string Id { get; init; }

    /// <summary>The team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The key, if any.</summary>
    public string? KeyId { get; init; }

    /// <summary>The team window the cost is charged to.</summary>
    public required BudgetWindow TeamWindow { get; init; }

    /// <summary>The key window the cost is charged to, when the key has a budget.</summary>
    public BudgetWindow? KeyWindow { get; init; }

    /// <summary>Reserved micro-dollars (worst case).</summary>
    public required long UsdMicros { get; init; }

    /// <summary>Reserved tokens (input + granted output).</summary>
    public required long Tokens { get; init; }

    /// <summary>Granted output tokens (the max_tokens to forward).</summary>
    public required int OutputTokens { get; init; }

    /// <summary>Tokens taken from tokens-per-minute buckets (corrected at settle).</summary>
    public required long RateTokens { get; init; }

    /// <summary>When the reservation is reaped if still open.</summary>
    public required DateTimeOffset ExpiresAt { get; init; }
}

/// <summary>Which limit refused a reservation.</summary>
public enum DenialReason
{
    /// <summary>The USD or token budget cannot cover even the minimum useful request.</summary>
    Budget,
    /// <summary>The requests-per-minute bucket is empty.</summary>
    RequestsPerMinute,
    /// <summary>The tokens-per-minute bucket cannot cover the request right now.</summary>
    TokensPerMinute,
    /// <summary>The request alone needs more tokens than the tokens-per-minute limit allows.</summary>
    TokensPerMinuteExceedsLimit,
    /// <summary>The shared counter store (Redis) cannot be reached and the team has a hard budget (fail closed).</summary>
    StoreUnavailable,
}

/// <summary>Why a reservation was refused and when to retry.</summary>
public sealed record ReserveDenial(DenialReason Reason, string Scope, TimeSpan RetryAfter, string Message);

/// <summary>A per-minute limit as reported in <c>x-ratelimit-*</c> headers.</summary>
public readonly record struct RateStatus(long Limit, long Remaining, TimeSpan ResetAfter);

/// <summary>The outcome of <see cref="IBudgetCounterStore.TryReserveAsync"/>, with the state needed for response headers.</summary>
public sealed record ReserveResult
{
    /// <summary>The reservation when admitted.</summary>
    public BudgetReservation? Reservation { get; init; }

    /// <summary>The refusal when not admitted.</summary>
    public ReserveDenial? Denial { get; init; }

    /// <summary>Binding request-rate state (after this reservation), when a limit applies.</summary>
    public RateStatus? Requests { get; init; }

    /// <summary>Binding token-rate state (after this reservation), when a limit applies.</summary>
    public RateStatus? Tokens { get; init; }

    /// <summary>USD left in the binding window after this reservation, when a USD limit applies.</summary>
    public long? RemainingUsdMicros { get; init; }

    /// <summary>Tokens left in the binding window after this reservation, when a token limit applies.</summary>
    public long? RemainingTokens { get; init; }

    /// <summary>
    /// True when the store has lost a window's counters (a Redis restart or failover emptied it) and nothing was
    /// reserved: seed the request's windows from the ledger again, then retry.
    /// </summary>
    public bool Unseeded { get; init; }
}

/// <summary>One window's counters.</summary>
public readonly record struct BudgetCounters(long SpentUsdMicros, long ReservedUsdMicros, long SpentTokens, long ReservedTokens, int OpenReservations);

/// <summary>Spent counters of one scope just before and after a settle (to detect soft-alert crossings).</summary>
public readonly record struct SpendChange(long UsdBefore, long UsdAfter, long TokensBefore, long TokensAfter);

/// <summary>The outcome of <see cref="IBudgetCounterStore.SettleAsync"/>.</summary>
public readonly record struct SettleResult(bool WasOpen, SpendChange Team, SpendChange? Key);
