using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Caching;

/// <summary>
/// What a response-cache hit saved, defined once: the prompt as it would have been sent plus the stored answer's output
/// tokens, at the served model's catalogue input and output prices. Computed when the hit is served (for
/// <c>/metrics</c>) and recovered from the hit's usage event (for the dashboard): both give the same number.
/// </summary>
public static class ResponseCacheSavings
{
    /// <summary>The would-be usage of a hit: <paramref name="promptTokensSent"/> in, <paramref name="outputTokens"/> out.</summary>
    public static TokenUsage WouldBeUsage(int promptTokensSent, int outputTokens) => new(promptTokensSent, outputTokens);

    /// <summary>The would-be usage recorded in a <c>cache_hit</c> event (null for any other event).</summary>
    /// <remarks>
    /// A hit's event carries the optimization stages' savings and the <c>cache</c> stage (= would-be prompt + output), and
    /// <c>inputTokensReceived</c>; the would-be prompt is what the optimization stages left of the received prompt.
    /// </remarks>
    public static TokenUsage? WouldBeUsage(UsageEvent hit)
    {
        ArgumentNullException.ThrowIfNull(hit);
        if (hit.Status != UsageStatus.CacheHit)
        {
            return null;
        }

        var optimized = 0;
        var cache = 0;
        foreach (var stage in hit.Stages)
        {
            if (stage.Name == ResponseCacheKey.StageName)
            {
                cache += stage.TokensSaved;
            }
            else
            {
                optimized += stage.TokensSaved;
            }
        }

        var prompt = Math.Max(0, hit.InputTokensReceived - optimized);
        return WouldBeUsage(prompt, Math.Max(0, cache - prompt));
    }

    /// <summary>The would-be cost of <paramref name="usage"/> on <paramref name="model"/> (0 when the model has no price).</summary>
    public static decimal Cost(CostCalculator costs, ModelCard model, TokenUsage usage)
    {
        ArgumentNullException.ThrowIfNull(costs);
        return costs.TryCalculate(model, usage, out var cost) ? cost : 0m;
    }
}
