using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tests.Metering;

public sealed class CostCalculatorTests
{
    [Fact]
    public void TryCalculate_OpenAIWithCachedAndReasoning_ChargesCachedAtCachedPrice()
    {
        var card = Card("openai", new ModelPrices { Input = 1.10m, Output = 4.40m, CachedInput = 0.275m });
        var usage = new TokenUsage(InputTokens: 1342, OutputTokens: 208, CachedInputTokens: 1152, ReasoningTokens: 192);

        Assert.True(CreateSut().TryCalculate(card, usage, out var cost));

        Assert.Equal(((190 * 1.10m) + (1152 * 0.275m) + (208 * 4.40m)) / 1_000_000m, cost);
    }

    [Fact]
    public void TryCalculate_CachedPriceMissing_DefaultsToInput()
    {
        var card = Card("openai", new ModelPrices { Input = 10m, Output = 30m });

        Assert.True(CreateSut().TryCalculate(card, new TokenUsage(1000, 0, CachedInputTokens: 400), out var cost));

        Assert.Equal(1000 * 10m / 1_000_000m, cost);
    }

    [Fact]
    public void TryCalculate_AnthropicWritePricesMissing_Default125And200Percent()
    {
        var card = Card("anthropic", new ModelPrices { Input = 3m, Output = 15m, CachedInput = 0.3m });
        var usage = new TokenUsage(InputTokens: 3_000_000, OutputTokens: 0, CachedInputTokens: 0, CacheWriteTokens: 2_000_000, CacheWrite1hTokens: 500_000);

        Assert.True(CreateSut().TryCalculate(card, usage, out var cost));

        Assert.Equal(3m + (1.5m * 3.75m) + (0.5m * 6m), cost);
    }

    [Fact]
    public void TryCalculate_UnpricedUnderRefuse_ReturnsFalse()
    {
        var card = Card("openai", new ModelPrices { Input = 1m });
        var sut = CreateSut();

        Assert.False(sut.CanServe(card));
        Assert.False(sut.TryCalculate(card, new TokenUsage(10, 10), out _));
    }

    [Fact]
    public void TryCalculate_UnpricedUnderCeiling_ChargesCeilingNeverZero()
    {
        var sut = CreateSut(new PricingOptions { UnpricedModelPolicy = UnpricedModelPolicy.Ceiling, CeilingInputPerMillion = 20m, CeilingOutputPerMillion = 80m });
        var unpriced = Card("openai", new ModelPrices());
        var halfPriced = Card("openai", new ModelPrices { Input = 1m });

        Assert.True(sut.TryCalculate(unpriced, new TokenUsage(1_000_000, 1_000_000), out var full));
        Assert.True(sut.TryCalculate(halfPriced, new TokenUsage(1_000_000, 1_000_000), out var half));
        Assert.True(sut.TryGetEffectivePrices(unpriced, out var prices));

        Assert.Equal(100m, full);
        Assert.Equal(81m, half);
        Assert.True(prices.IsCeiling);
    }

    [Fact]
    public void TryEstimateMaxCost_ChargesAllInputUncachedAndFullOutput()
    {
        var card = Card("openai", new ModelPrices { Input = 2m, Output = 8m, CachedInput = 0.5m });

        Assert.True(CreateSut().TryEstimateMaxCost(card, 1000, 500, out var cost));

        Assert.Equal(((1000 * 2m) + (500 * 8m)) / 1_000_000m, cost);
    }

    [Fact]
    public void TryCalculate_InconsistentCounters_NeverNegative()
    {
        var card = Card("openai", new ModelPrices { Input = 1m, Output = 1m });

        Assert.True(CreateSut().TryCalculate(card, new TokenUsage(InputTokens: 10, OutputTokens: -5, CachedInputTokens: 50), out var cost));

        Assert.Equal(50 * 1m / 1_000_000m, cost);
    }

    private static CostCalculator CreateSut(PricingOptions? options = null) => new(options ?? new PricingOptions());

    private static ModelCard Card(string provider, ModelPrices prices) => new() { Name = "m", Provider = provider, Prices = prices };
}
