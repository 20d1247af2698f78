using System.Text.Json.Nodes;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Budgets;

/// <summary>Combines partial policies: inheritance (absent fields come from the parent) and the stricter-wins rule.</summary>
public static class PolicyMerge
{
    /// <summary>
    /// Returns <paramref name="child"/> with every absent field taken from <paramref name="parent"/>. Lists
    /// (models.allow, models.deny) are replaced, not concatenated; raw JSON sections are merged property by property.
    /// </summary>
    public static TeamPolicy Inherit(TeamPolicy child, TeamPolicy? parent)
    {
        ArgumentNullException.ThrowIfNull(child);
        if (parent is null)
        {
            return child;
        }

        return new TeamPolicy
        {
            Budget = Inherit(child.Budget, parent.Budget),
            RateLimits = Inherit(child.RateLimits, parent.RateLimits),
            Models = Inherit(child.Models, parent.Models),
            MaxTokens = Inherit(child.MaxTokens, parent.MaxTokens),
            Optimization = MergeJson(child.Optimization, parent.Optimization),
            StructuredOutput = MergeJson(child.StructuredOutput, parent.StructuredOutput),
            Resilience = Inherit(child.Resilience, parent.Resilience),
            Fallbacks = child.Fallbacks ?? parent.Fallbacks,
            Cache = Inherit(child.Cache, parent.Cache),
        };
    }

    /// <summary>Deep-merges two JSON objects; values in <paramref name="child"/> win, nested objects merge recursively.</summary>
    public static JsonObject? MergeJson(JsonObject? child, JsonObject? parent)
    {
        if (child is null)
        {
            return parent?.DeepClone().AsObject();
        }

        if (parent is null)
        {
            return child.DeepClone().AsObject();
        }

        var result = parent.DeepClone().AsObject();
        foreach (var (name, value) in child)
        {
            if (value is JsonObject childObject && result[name] is JsonObject parentObject)
            {
                result[name] = MergeJson(childObject, parentObject);
            }
            else
            {
                result[name] = value?.DeepClone();
            }
        }

        return result;
    }

    /// <summary>Field by field: the child's set fields win (also used for a key's own <c>cache</c> section).</summary>
    public static CachePolicy? Inherit(CachePolicy? child, CachePolicy? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new CachePolicy
        {
            Enabled = child.Enabled ?? parent.Enabled,
            TtlSeconds = child.TtlSeconds ?? parent.TtlSeconds,
            MaxEntryBytes = child.MaxEntryBytes ?? parent.MaxEntryBytes,
            RequireDeterministic = child.RequireDeterministic ?? parent.RequireDeterministic,
        },
    };

    private static BudgetPolicy? Inherit(BudgetPolicy? child, BudgetPolicy? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new BudgetPolicy
        {
            Usd = child.Usd ?? parent.Usd,
            Tokens = child.Tokens ?? parent.Tokens,
            Period = child.Period ?? parent.Period,
            SoftAlertPercent = child.SoftAlertPercent ?? parent.SoftAlertPercent,
            Hard = child.Hard ?? parent.Hard,
        },
    };

    private static RateLimitPolicy? Inherit(RateLimitPolicy? child, RateLimitPolicy? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new RateLimitPolicy
        {
            RequestsPerMinute = child.RequestsPerMinute ?? parent.RequestsPerMinute,
            TokensPerMinute = child.TokensPerMinute ?? parent.TokensPerMinute,
        },
    };

    private static ModelAccessPolicy? Inherit(ModelAccessPolicy? child, ModelAccessPolicy? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new ModelAccessPolicy
        {
            Allow = child.Allow ?? parent.Allow,
            Deny = child.Deny ?? parent.Deny,
        },
    };

    internal static MaxTokensPolicy? Inherit(MaxTokensPolicy? child, MaxTokensPolicy? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new MaxTokensPolicy
        {
            Default = child.Default ?? parent.Default,
            Cap = child.Cap ?? parent.Cap,
            Adaptive = child.Adaptive is null || parent.Adaptive is null ? child.Adaptive ?? parent.Adaptive : new AdaptiveMaxTokensPolicy
            {
                Enabled = child.Adaptive.Enabled ?? parent.Adaptive.Enabled,
                Floor = child.Adaptive.Floor ?? parent.Adaptive.Floor,
                MarginPercent = child.Adaptive.MarginPercent ?? parent.Adaptive.MarginPercent,
                MinSamples = child.Adaptive.MinSamples ?? parent.Adaptive.MinSamples,
            },
        },
    };

    private static ResilienceOverrides? Inherit(ResilienceOverrides? child, ResilienceOverrides? parent) => (child, parent) switch
    {
        (null, _) => parent,
        (_, null) => child,
        _ => new ResilienceOverrides
        {
            Timeouts = (child.Timeouts, parent.Timeouts) switch
            {
                (null, var p) => p,
                (var c, null) => c,
                var (c, p) => new TimeoutOverrides
                {
                    Connect = c.Connect ?? p.Connect,
                    ResponseHeaders = c.ResponseHeaders ?? p.ResponseHeaders,
                    Idle = c.Idle ?? p.Idle,
                    Total = c.Total ?? p.Total,
                },
            },
            Retry = (child.Retry, parent.Retry) switch
            {
                (null, var p) => p,
                (var c, null) => c,
                var (c, p) => new RetryOverrides
                {
                    MaxAttempts = c.MaxAttempts ?? p.MaxAttempts,
                    BaseDelay = c.BaseDelay ?? p.BaseDelay,
                    MaxDelay = c.MaxDelay ?? p.MaxDelay,
                    Jitter = c.Jitter ?? p.Jitter,
                    RetryAfterCap = c.RetryAfterCap ?? p.RetryAfterCap,
                },
            },
            ContinueStreams = child.ContinueStreams ?? parent.ContinueStreams,
        },
    };

    internal static T? Min<T>(T? a, T? b)
        where T : struct, IComparable<T>
        => (a, b) switch
        {
            (null, _) => b,
            (_, null) => a,
            _ => a.Value.CompareTo(b.Value) <= 0 ? a : b,
        };
}
