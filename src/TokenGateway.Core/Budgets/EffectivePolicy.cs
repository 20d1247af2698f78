using TokenGateway.Core.Optimization;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Budgets;

/// <summary>Resolved limits of one budget scope (team or key); micro-dollars internally.</summary>
public sealed record BudgetLimits(BudgetPeriod Period, long? UsdMicros, long? Tokens, int? SoftAlertPercent, bool Hard)
{
    /// <summary>No limits, monthly period (spend is still tracked for reporting).</summary>
    public static BudgetLimits Unlimited { get; } = new(BudgetPeriod.Month, null, null, null, true);

    /// <summary>True when at least one limit would refuse requests.</summary>
    public bool Enforced => Hard && (UsdMicros is not null || Tokens is not null);
}

/// <summary>Resolved per-minute limits of one scope; null = unlimited.</summary>
public readonly record struct RateLimits(int? RequestsPerMinute, long? TokensPerMinute)
{
    /// <summary>True when neither limit is set.</summary>
    public bool IsUnlimited => RequestsPerMinute is null && TokensPerMinute is null;
}

/// <summary>The model rules of a resolved policy: a model must match every allow set and no deny pattern.</summary>
public sealed class ModelAccess
{
    private const int MaxCachedDecisions = 1024;

    private readonly ModelPatternSet[] _allow;
    private readonly ModelPatternSet _deny;
    // Bounded LRU: requested names come from clients (aliases), so the set of keys is not ours to bound.
    private readonly BitFaster.Caching.Lru.ConcurrentLru<(string, string?), bool> _decisions = new(MaxCachedDecisions);

    /// <summary>Everything allowed, nothing denied.</summary>
    public static ModelAccess AllowAll { get; } = new([], []);

    /// <summary>Builds the rule; each entry of <paramref name="allowSets"/> must match (intersection).</summary>
    public ModelAccess(IEnumerable<IReadOnlyList<string>> allowSets, IEnumerable<string> deny)
    {
        ArgumentNullException.ThrowIfNull(allowSets);
        ArgumentNullException.ThrowIfNull(deny);
        _allow = allowSets.Select(s => new ModelPatternSet(s)).ToArray();
        _deny = new ModelPatternSet(deny);
    }

    /// <summary>The deny patterns (union of all scopes).</summary>
    public IReadOnlyList<string> Deny => _deny.Patterns;

    /// <summary>
    /// True when the canonical <paramref name="model"/> or the <paramref name="requestedName"/> the client used is
    /// allowed and neither is denied.
    /// </summary>
    public bool IsAllowed(string model, string? requestedName = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_decisions.TryGet((model, requestedName), out var known))
        {
            return known;
        }

        var allowed = Evaluate([model, requestedName]);
        _decisions.AddOrUpdate((model, requestedName), allowed);
        return allowed;
    }

    private bool Evaluate(ReadOnlySpan<string?> names)
    {
        foreach (var name in names)
        {
            if (name is not null && _deny.IsMatch(name))
            {
                return false;
            }
        }

        foreach (var set in _allow)
        {
            var matched = false;
            foreach (var name in names)
            {
                if (name is not null && set.IsMatch(name))
                {
                    matched = true;
                    break;
                }
            }

            if (!matched)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// The policy that applies to one request: default ← team (inheritance), then the stricter of that and the key's
/// own policy. Budgets and rate limits keep separate team and key scopes, each with its own counters.
/// </summary>
public sealed record EffectivePolicy
{
    /// <summary>The team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The virtual key, when the request came through one.</summary>
    public string? KeyId { get; init; }

    /// <summary>The team's policy with defaults filled in (what <c>GET</c> on the team policy reports as effective).</summary>
    public required TeamPolicy Team { get; init; }

    /// <summary>Team budget limits (always present; unlimited when unset).</summary>
    public required BudgetLimits TeamBudget { get; init; }

    /// <summary>Key budget limits (never looser than the team's), or null when the key has no budget of its own.</summary>
    public BudgetLimits? KeyBudget { get; init; }

    /// <summary>Team per-minute limits.</summary>
    public RateLimits TeamRate { get; init; }

    /// <summary>Key per-minute limits (never looser than the team's), or null when the key has none of its own.</summary>
    public RateLimits? KeyRate { get; init; }

    /// <summary>Model allow/deny rules.</summary>
    public required ModelAccess Models { get; init; }

    /// <summary><c>max_tokens</c> applied when the client sends none.</summary>
    public int? DefaultMaxTokens { get; init; }

    /// <summary>Upper bound on <c>max_tokens</c>.</summary>
    public int? MaxTokensCap { get; init; }

    /// <summary>The adaptive output cap's settings, or null when it is off (the default).</summary>
    public AdaptiveMaxTokensSettings? AdaptiveMaxTokens { get; init; }

    /// <summary>
    /// Optimization settings (default ← team ← key, merged property by property), parsed once when the policy is
    /// resolved; the request path only calls <see cref="ScopedOptimizationPolicy.Resolve"/>.
    /// </summary>
    public ScopedOptimizationPolicy Optimization { get; init; } = ScopedOptimizationPolicy.Default;

    /// <summary>Structured-output settings (default ← team ← key, merged property by property), parsed once when resolved.</summary>
    public StructuredOutputPolicy StructuredOutput { get; init; } = StructuredOutputPolicy.Default;

    /// <summary>The exact response cache settings (default ← team ← key, field by field).</summary>
    public ResponseCacheSettings Cache { get; init; } = ResponseCacheSettings.Disabled;

    /// <summary>Resolves the effective policy for a request (the policy provider caches the result per team and key).</summary>
    /// <remarks>
    /// Every section ends up typed here, so nothing downstream parses policy JSON. The sections were validated when
    /// written (<see cref="PolicyValidator"/>); merging valid layers yields a valid section.
    /// </remarks>
    /// <param name="teamId">The team.</param>
    /// <param name="keyId">The virtual key, if any.</param>
    /// <param name="defaults">The default policy (null = built-in: no limits, every model allowed).</param>
    /// <param name="team">The team's own policy, if any.</param>
    /// <param name="key">The key's own policy, if any.</param>
    public static EffectivePolicy Resolve(string teamId, string? keyId, TeamPolicy? defaults, TeamPolicy? team, TeamPolicy? key)
    {
        ArgumentException.ThrowIfNullOrEmpty(teamId);
        var merged = PolicyMerge.Inherit(team ?? TeamPolicy.Empty, defaults);
        var teamBudget = ToLimits(merged.Budget);
        var teamRate = new RateLimits(merged.RateLimits?.RequestsPerMinute, merged.RateLimits?.TokensPerMinute);

        var allowSets = new List<IReadOnlyList<string>>();
        var deny = new List<string>();
        if (merged.Models?.Allow is { } teamAllow)
        {
            allowSets.Add(teamAllow);
        }

        deny.AddRange(merged.Models?.Deny ?? []);
        var defaultMax = merged.MaxTokens?.Default;
        var cap = merged.MaxTokens?.Cap;
        BudgetLimits? keyBudget = null;
        RateLimits? keyRate = null;
        var optimization = merged.Optimization;
        var structured = merged.StructuredOutput;
        var cache = merged.Cache;

        if (key is not null)
        {
            if (key.Budget is { } kb && (kb.Usd is not null || kb.Tokens is not null))
            {
                var own = ToLimits(kb with { Period = kb.Period ?? teamBudget.Period, Hard = kb.Hard ?? true });
                var samePeriod = own.Period == teamBudget.Period;
                keyBudget = own with
                {
                    // A key can never spend more than its team in the same period; the team scope enforces that
                    // anyway, the min only makes the key's reported remainder honest.
                    UsdMicros = samePeriod ? PolicyMerge.Min(own.UsdMicros, teamBudget.UsdMicros) : own.UsdMicros,
                    Tokens = samePeriod ? PolicyMerge.Min(own.Tokens, teamBudget.Tokens) : own.Tokens,
                    Hard = own.Hard || teamBudget.Hard,
                };
            }

            if (key.RateLimits is { } kr && (kr.RequestsPerMinute is not null || kr.TokensPerMinute is not null))
            {
                keyRate = new RateLimits(
                    PolicyMerge.Min(kr.RequestsPerMinute, teamRate.RequestsPerMinute),
                    PolicyMerge.Min(kr.TokensPerMinute, teamRate.TokensPerMinute));
            }

            if (key.Models?.Allow is { } keyAllow)
            {
                allowSets.Add(keyAllow);
            }

            deny.AddRange(key.Models?.Deny ?? []);
            defaultMax = PolicyMerge.Min(defaultMax, key.MaxTokens?.Default);
            cap = PolicyMerge.Min(cap, key.MaxTokens?.Cap);
            optimization = PolicyMerge.MergeJson(key.Optimization, optimization);
            structured = PolicyMerge.MergeJson(key.StructuredOutput, structured);
            cache = PolicyMerge.Inherit(key.Cache, cache);
        }

        if (defaultMax is { } d && cap is { } c && d > c)
        {
            defaultMax = c;
        }

        return new EffectivePolicy
        {
            TeamId = teamId,
            KeyId = keyId,
            Team = merged,
            TeamBudget = teamBudget,
            KeyBudget = keyBudget,
            TeamRate = teamRate,
            KeyRate = keyRate,
            Models = allowSets.Count == 0 && deny.Count == 0 ? ModelAccess.AllowAll : new ModelAccess(allowSets, deny),
            DefaultMaxTokens = defaultMax,
            MaxTokensCap = cap,
            AdaptiveMaxTokens = AdaptiveMaxTokensSettings.From(PolicyMerge.Inherit(key?.MaxTokens, merged.MaxTokens)?.Adaptive),
            Optimization = ScopedOptimizationPolicy.Parse(optimization, out _),
            StructuredOutput = StructuredOutputPolicy.FromJson(structured, out _),
            Cache = ResponseCacheSettings.From(cache),
        };
    }

    private static BudgetLimits ToLimits(BudgetPolicy? budget) => budget is null
        ? BudgetLimits.Unlimited
        : new BudgetLimits(
            budget.Period ?? BudgetPeriod.Month,
            budget.Usd is { } usd ? UsdMicros.FromUsdFloor(usd) : null,
            budget.Tokens,
            budget.SoftAlertPercent,
            budget.Hard ?? true);
}
