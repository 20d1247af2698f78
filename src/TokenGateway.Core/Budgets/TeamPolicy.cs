using System.Text.Json.Nodes;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// A budget/limit/model policy for a team, a key or the gateway default, as stored and as sent to
/// <c>PUT /admin/teams/{id}/policy</c>. Every field is optional: an absent (or null) field inherits the default policy.
/// </summary>
public sealed record TeamPolicy
{
    /// <summary>A policy with no fields set (inherits everything).</summary>
    public static TeamPolicy Empty { get; } = new();

    /// <summary>Spend limits per period.</summary>
    public BudgetPolicy? Budget { get; init; }

    /// <summary>Requests and tokens per minute.</summary>
    public RateLimitPolicy? RateLimits { get; init; }

    /// <summary>Which models may be used.</summary>
    public ModelAccessPolicy? Models { get; init; }

    /// <summary><c>max_tokens</c> default and cap.</summary>
    public MaxTokensPolicy? MaxTokens { get; init; }

    /// <summary>Optimization stage settings; owned by the optimization stages, kept here as raw JSON.</summary>
    public JsonObject? Optimization { get; init; }

    /// <summary>Structured-output settings; owned by the structured-output stage, kept here as raw JSON.</summary>
    public JsonObject? StructuredOutput { get; init; }

    /// <summary>Timeout, retry and stream-continuation overrides for the team's requests (see docs/resilience.md).</summary>
    public ResilienceOverrides? Resilience { get; init; }

    /// <summary>Fallback chains by model (<c>{"gpt-4o-mini": ["gpt-4.1-mini"]}</c>); replaces the catalogue's chain for that model.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Fallbacks { get; init; }

    /// <summary>The team's exact response cache (opt-in; see docs/caching.md).</summary>
    public CachePolicy? Cache { get; init; }
}

/// <summary>The <c>cache</c> section: the per-team exact response cache (issue #15).</summary>
public sealed record CachePolicy
{
    /// <summary>True turns the response cache on for the team (off by default).</summary>
    public bool? Enabled { get; init; }

    /// <summary>How long a stored answer may be served, in seconds (default 3600).</summary>
    public int? TtlSeconds { get; init; }

    /// <summary>Largest answer stored, in bytes of its stored JSON (default 1 MiB); larger answers are not cached.</summary>
    public int? MaxEntryBytes { get; init; }

    /// <summary>True: only requests with <c>temperature: 0</c> or a <c>seed</c> are cached.</summary>
    public bool? RequireDeterministic { get; init; }
}

/// <summary>Spend limits for one budget period.</summary>
public sealed record BudgetPolicy
{
    /// <summary>USD limit per period; null = no USD limit.</summary>
    public decimal? Usd { get; init; }

    /// <summary>Token limit (billed input + output) per period; null = no token limit.</summary>
    public long? Tokens { get; init; }

    /// <summary>The UTC calendar period the limits apply to.</summary>
    public BudgetPeriod? Period { get; init; }

    /// <summary>Percentage of a limit at which a one-off soft alert fires (1-100); null = no alert.</summary>
    public int? SoftAlertPercent { get; init; }

    /// <summary>True: requests are refused once the limit is reached. False: the limit only alerts.</summary>
    public bool? Hard { get; init; }
}

/// <summary>Per-minute limits.</summary>
public sealed record RateLimitPolicy
{
    /// <summary>Requests per minute; null = unlimited.</summary>
    public int? RequestsPerMinute { get; init; }

    /// <summary>Tokens (input + max_tokens, corrected to actual after the call) per minute; null = unlimited.</summary>
    public long? TokensPerMinute { get; init; }
}

/// <summary>Model allow/deny lists; patterns may use <c>*</c> wildcards (<c>gpt-4o*</c>, <c>claude-*</c>, <c>*</c>).</summary>
public sealed record ModelAccessPolicy
{
    /// <summary>A model must match one of these; null = inherit (the built-in default allows everything).</summary>
    public IReadOnlyList<string>? Allow { get; init; }

    /// <summary>A model matching one of these is refused, even if allowed.</summary>
    public IReadOnlyList<string>? Deny { get; init; }
}

/// <summary>Output length rules.</summary>
public sealed record MaxTokensPolicy
{
    /// <summary>Applied when the client sends no <c>max_tokens</c>.</summary>
    public int? Default { get; init; }

    /// <summary>Upper bound on <c>max_tokens</c>; larger requests are lowered to it.</summary>
    public int? Cap { get; init; }
}

/// <summary>UTC calendar budget periods.</summary>
public enum BudgetPeriod
{
    /// <summary>A UTC calendar day.</summary>
    Day,
    /// <summary>An ISO-8601 week, Monday 00:00 UTC to the next Monday.</summary>
    Week,
    /// <summary>A UTC calendar month.</summary>
    Month,
}
