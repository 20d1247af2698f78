using TokenGateway.Core.Resilience;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// Checks a <see cref="TeamPolicy"/> field by field and reports every problem at once, the <c>optimization</c> and
/// <c>structuredOutput</c> sections included (through their typed parsers): the one validation path for the admin
/// API, configured policies and <see cref="IPolicyProvider.SetAsync"/>.
/// </summary>
public static class PolicyValidator
{
    /// <summary>Largest USD budget accepted (keeps micro-dollar arithmetic far from overflow).</summary>
    public const decimal MaxUsd = 1_000_000_000m;

    /// <summary>Largest token count accepted for budgets, limits and max_tokens.</summary>
    public const long MaxTokenCount = 1_000_000_000_000L;

    /// <summary>Longest model pattern accepted.</summary>
    public const int MaxPatternLength = 200;

    /// <summary>Most patterns accepted in one allow or deny list.</summary>
    public const int MaxPatterns = 500;

    /// <summary>Returns every validation error in <paramref name="policy"/>; empty when valid.</summary>
    public static IReadOnlyList<PolicyError> Validate(TeamPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var errors = new List<PolicyError>();
        if (policy.Budget is { } budget)
        {
            if (budget.Usd is { } usd && (usd < 0 || usd > MaxUsd))
            {
                errors.Add(new("budget.usd", $"Must be between 0 and {MaxUsd:0} USD (got {usd})."));
            }

            if (budget.Tokens is { } tokens && (tokens < 0 || tokens > MaxTokenCount))
            {
                errors.Add(new("budget.tokens", $"Must be between 0 and {MaxTokenCount} (got {tokens})."));
            }

            if (budget.Period is { } period && !Enum.IsDefined(period))
            {
                errors.Add(new("budget.period", "Must be \"day\", \"week\" or \"month\"."));
            }

            if (budget.SoftAlertPercent is { } percent && (percent < 1 || percent > 100))
            {
                errors.Add(new("budget.softAlertPercent", $"Must be between 1 and 100 (got {percent})."));
            }
        }

        if (policy.RateLimits is { } rate)
        {
            if (rate.RequestsPerMinute is { } rpm && rpm < 1)
            {
                errors.Add(new("rateLimits.requestsPerMinute", $"Must be at least 1 (got {rpm}); omit it for no limit, or deny all models to block a team."));
            }

            if (rate.TokensPerMinute is { } tpm && (tpm < 1 || tpm > MaxTokenCount))
            {
                errors.Add(new("rateLimits.tokensPerMinute", $"Must be between 1 and {MaxTokenCount} (got {tpm}); omit it for no limit."));
            }
        }

        if (policy.Models is { } models)
        {
            ValidatePatterns(models.Allow, "models.allow", errors);
            ValidatePatterns(models.Deny, "models.deny", errors);
        }

        if (policy.MaxTokens is { } maxTokens)
        {
            if (maxTokens.Default is { } def && def < 1)
            {
                errors.Add(new("maxTokens.default", $"Must be at least 1 (got {def})."));
            }

            if (maxTokens.Cap is { } cap && cap < 1)
            {
                errors.Add(new("maxTokens.cap", $"Must be at least 1 (got {cap})."));
            }

            if (maxTokens is { Default: { } d, Cap: { } c } && d > c)
            {
                errors.Add(new("maxTokens.default", $"Must not exceed maxTokens.cap ({d} > {c})."));
            }

            if (maxTokens.Adaptive is { } adaptive)
            {
                if (adaptive.Floor is { } floor && floor < 1)
                {
                    errors.Add(new("maxTokens.adaptive.floor", $"Must be at least 1 (got {floor})."));
                }

                if (adaptive is { Floor: { } f } && maxTokens.Cap is { } capValue && f > capValue)
                {
                    errors.Add(new("maxTokens.adaptive.floor", $"Must not exceed maxTokens.cap ({f} > {capValue})."));
                }

                if (adaptive.MarginPercent is { } margin && (margin < 0 || margin > AdaptiveOutputCaps.MaxMarginPercent))
                {
                    errors.Add(new("maxTokens.adaptive.marginPercent", $"Must be between 0 and {AdaptiveOutputCaps.MaxMarginPercent} (got {margin})."));
                }

                if (adaptive.MinSamples is { } samples && (samples < 1 || samples > AdaptiveOutputCaps.Window))
                {
                    errors.Add(new("maxTokens.adaptive.minSamples", $"Must be between 1 and {AdaptiveOutputCaps.Window}, the number of answers remembered per team and model (got {samples})."));
                }
            }
        }

        ValidateResilience(policy, errors);
        if (policy.Cache is { } cache)
        {
            if (cache.TtlSeconds is { } ttl && (ttl < ResponseCacheSettings.MinTtlSeconds || ttl > ResponseCacheSettings.MaxTtlSeconds))
            {
                errors.Add(new("cache.ttlSeconds", $"Must be between {ResponseCacheSettings.MinTtlSeconds} and {ResponseCacheSettings.MaxTtlSeconds} seconds (got {ttl})."));
            }

            if (cache.MaxEntryBytes is { } max && (max < ResponseCacheSettings.MinEntryBytes || max > ResponseCacheSettings.MaxEntryBytesLimit))
            {
                errors.Add(new("cache.maxEntryBytes", $"Must be between {ResponseCacheSettings.MinEntryBytes} and {ResponseCacheSettings.MaxEntryBytesLimit} bytes (got {max})."));
            }
        }

        if (policy.Optimization is { } optimization)
        {
            ScopedOptimizationPolicy.Parse(optimization, out var optimizationErrors);
            errors.AddRange(optimizationErrors.Select(e => new PolicyError("optimization", e)));
        }

        if (policy.StructuredOutput is { } structured)
        {
            StructuredOutputPolicy.FromJson(structured, out var structuredErrors);
            errors.AddRange(structuredErrors.Select(e => new PolicyError("structuredOutput", e)));
        }

        return errors;
    }

    private static void ValidateResilience(TeamPolicy policy, List<PolicyError> errors)
    {
        // Structure only: catalogue membership and dialects are checked where the catalogue is known.
        var found = new List<SettingError>();
        if (policy.Resilience is { } resilience)
        {
            ResilienceValidation.Validate(resilience, "resilience", SettingPathStyle.Json, found);
        }

        if (policy.Fallbacks is { } fallbacks)
        {
            if (fallbacks.Count > FallbackChains.MaxPolicyEntries)
            {
                found.Add(new("fallbacks", $"At most {FallbackChains.MaxPolicyEntries} models may have a chain (got {fallbacks.Count})."));
            }
            else
            {
                FallbackChains.Validate(fallbacks, catalog: null, ResilienceLimits.MaxFallbacks, static m => $"fallbacks.{m}", found);
            }
        }

        errors.AddRange(found.Select(static e => new PolicyError(e.Field, e.Message)));
    }

    private static void ValidatePatterns(IReadOnlyList<string>? patterns, string field, List<PolicyError> errors)
    {
        if (patterns is null)
        {
            return;
        }

        if (patterns.Count > MaxPatterns)
        {
            errors.Add(new(field, $"At most {MaxPatterns} patterns are allowed (got {patterns.Count})."));
            return;
        }

        for (var i = 0; i < patterns.Count; i++)
        {
            var pattern = patterns[i];
            if (string.IsNullOrWhiteSpace(pattern))
            {
                errors.Add(new($"{field}[{i}]", "Must be a non-empty model name or pattern such as \"gpt-4o*\"."));
            }
            else if (pattern.Length > MaxPatternLength)
            {
                errors.Add(new($"{field}[{i}]", $"Must be at most {MaxPatternLength} characters."));
            }
            else if (pattern.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch)))
            {
                errors.Add(new($"{field}[{i}]", "Must not contain whitespace or control characters."));
            }
        }
    }
}
