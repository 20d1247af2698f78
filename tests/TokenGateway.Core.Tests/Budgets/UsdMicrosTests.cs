using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class UsdMicrosTests
{
    [Theory]
    [InlineData(1000, 2.5, 2500)]      // $2.50/M × 1000 tokens = $0.0025
    [InlineData(1, 0.15, 1)]           // 0.15 µ$ rounds up to 1 µ$
    [InlineData(3, 0.15, 1)]           // 0.45 µ$ rounds up
    [InlineData(7, 0.15, 2)]           // 1.05 µ$ rounds up
    [InlineData(0, 15, 0)]
    [InlineData(1_000_000, 15, 15_000_000)]
    public void CostOf_Tokens_RoundsUpToMicros(long tokens, decimal usdPerMillion, long expected)
    {
        Assert.Equal(expected, UsdMicros.CostOf(tokens, UsdMicros.PricePerMillion(usdPerMillion)));
    }

    [Fact]
    public void TokensAffordable_IsInverseOfCostRoundedDown()
    {
        var price = UsdMicros.PricePerMillion(10m); // 10 µ$ per token

        Assert.Equal(99, UsdMicros.TokensAffordable(999, price));
        Assert.True(UsdMicros.CostOf(UsdMicros.TokensAffordable(999, price), price) <= 999);
        Assert.Equal(long.MaxValue, UsdMicros.TokensAffordable(5, 0));
        Assert.Equal(0, UsdMicros.TokensAffordable(-5, price));
    }

    [Fact]
    public void FromUsdFloor_BudgetNeverRoundsUp()
    {
        Assert.Equal(1, UsdMicros.FromUsdFloor(0.0000019m));
        Assert.Equal(50_000_000, UsdMicros.FromUsdFloor(50m));
        Assert.Equal(0.000002m, UsdMicros.ToUsd(UsdMicros.FromUsd(0.0000019m)));
    }
}
