using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
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

    /// <summary>
    /// Opt-in adaptive output cap per team and model, learned from observed answer lengths; <c>true</c>/<c>false</c> is
    /// shorthand for <c>{"enabled": …}</c>.
    /// </summary>
    [JsonConverter(typeof(AdaptiveMaxTokensPolicyConverter))]
    public AdaptiveMaxTokensPolicy? Adaptive { get; init; }
}

/// <summary>
/// <c>maxTokens.adaptive</c>: lower <c>max_tokens</c> to the observed p99 answer length plus a margin, never below
/// <see cref="Floor"/> and never above the policy cap (or the model's maximum). Absent fields take the defaults of
/// <see cref="AdaptiveOutputCaps"/>.
/// </summary>
public sealed record AdaptiveMaxTokensPolicy
{
    /// <summary>Turns the adaptive cap on.</summary>
    public bool? Enabled { get; init; }

    /// <summary>The learned cap never goes below this many tokens.</summary>
    public int? Floor { get; init; }

    /// <summary>Added to the p99 answer length, in percent of it.</summary>
    public int? MarginPercent { get; init; }

    /// <summary>Answers observed for a team and model before the cap acts (warm-up).</summary>
    public int? MinSamples { get; init; }
}

/// <summary>Reads <c>maxTokens.adaptive</c> as a boolean shorthand or an object.</summary>
internal sealed class AdaptiveMaxTokensPolicyConverter : JsonConverter<AdaptiveMaxTokensPolicy>
{
    public override AdaptiveMaxTokensPolicy? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => new AdaptiveMaxTokensPolicy { Enabled = true },
        JsonTokenType.False => new AdaptiveMaxTokensPolicy { Enabled = false },
        JsonTokenType.StartObject => JsonSerializer.Deserialize<AdaptiveMaxTokensPolicy>(ref reader, options),
        _ => throw new JsonException(), // reported as "could not be converted" at maxTokens.adaptive
    };

    public override void Write(Utf8JsonWriter writer, AdaptiveMaxTokensPolicy value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, options);
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
