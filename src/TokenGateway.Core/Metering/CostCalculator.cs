using TokenGateway.Core.Models;

namespace TokenGateway.Core.Metering;

/// <summary>Computes the USD cost of a <see cref="TokenUsage"/> from a model card's prices per million tokens.</summary>
/// <remarks>
/// cost = (uncached input × Input + cache reads × CachedInput + 5-minute writes × CacheWrite5m
/// + 1-hour writes × CacheWrite1h + output × Output) / 1,000,000, in <see cref="decimal"/>. CachedInput defaults to
/// Input; Anthropic cache writes default to 1.25× (5 m) and 2× (1 h) Input, other providers' to Input. A card
/// without an input or output price is refused or charged <see cref="PricingOptions"/>' ceiling — never $0.
/// </remarks>
public sealed class CostCalculator
{
    private const decimal PerMillion = 1_000_000m;
    private const decimal AnthropicWrite5mMultiplier = 1.25m;
    private const decimal AnthropicWrite1hMultiplier = 2m;

    private readonly PricingOptions _options;

    /// <summary>Creates a calculator with the given unpriced-model policy.</summary>
    public CostCalculator(PricingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>True when requests for <paramref name="card"/> may be served (priced, or the policy is Ceiling).</summary>
    public bool CanServe(ModelCard card)
    {
        ArgumentNullException.ThrowIfNull(card);
        return card.Prices.IsPriced || _options.UnpricedModelPolicy == UnpricedModelPolicy.Ceiling;
    }

    /// <summary>The prices actually charged for <paramref name="card"/>, every field resolved; false when refused.</summary>
    public bool TryGetEffectivePrices(ModelCard card, out EffectivePrices prices)
    {
        ArgumentNullException.ThrowIfNull(card);
        prices = default;
        if (!CanServe(card))
        {
            return false;
        }

        var p = card.Prices;
        var input = p.Input ?? _options.CeilingInputPerMillion;
        var output = p.Output ?? _options.CeilingOutputPerMillion;
        var anthropic = string.Equals(card.Provider, "anthropic", StringComparison.OrdinalIgnoreCase);
        prices = new EffectivePrices(
            Input: input,
            Output: output,
            CachedInput: p.CachedInput ?? input,
            CacheWrite5m: p.CacheWrite5m ?? (anthropic ? input * AnthropicWrite5mMultiplier : input),
            CacheWrite1h: p.CacheWrite1h ?? (anthropic ? input * AnthropicWrite1hMultiplier : input),
            IsCeiling: !p.IsPriced);
        return true;
    }

    /// <summary>Cost of <paramref name="usage"/> on <paramref name="card"/>; false when the model is unpriced and refused.</summary>
    public bool TryCalculate(ModelCard card, TokenUsage usage, out decimal costUsd)
    {
        costUsd = 0m;
        if (!TryGetEffectivePrices(card, out var prices))
        {
            return false;
        }

        costUsd = Calculate(prices, usage);
        return true;
    }

    /// <summary>Cost of <paramref name="usage"/> at resolved <paramref name="prices"/>.</summary>
    public static decimal Calculate(EffectivePrices prices, TokenUsage usage)
    {
        var cached = (long)Math.Max(0, usage.CachedInputTokens);
        var writes = (long)Math.Max(0, usage.CacheWriteTokens);
        var writes1h = Math.Min(writes, Math.Max(0, usage.CacheWrite1hTokens));
        var writes5m = writes - writes1h;
        var uncached = Math.Max(0L, usage.InputTokens - cached - writes);
        var output = (long)Math.Max(0, usage.OutputTokens);

        var micro = (uncached * prices.Input)
            + (cached * prices.CachedInput)
            + (writes5m * prices.CacheWrite5m)
            + (writes1h * prices.CacheWrite1h)
            + (output * prices.Output);
        return micro / PerMillion;
    }

    /// <summary>Worst-case cost of a request before it is sent (for budget reservations): all input uncached, full output.</summary>
    public bool TryEstimateMaxCost(ModelCard card, int inputTokens, int maxOutputTokens, out decimal costUsd) =>
        TryCalculate(card, new TokenUsage(Math.Max(0, inputTokens), Math.Max(0, maxOutputTokens)), out costUsd);
}

/// <summary>Prices per million tokens with every default applied.</summary>
public readonly record struct EffectivePrices(
    decimal Input,
    decimal Output,
    decimal CachedInput,
    decimal CacheWrite5m,
    decimal CacheWrite1h,
    bool IsCeiling);
