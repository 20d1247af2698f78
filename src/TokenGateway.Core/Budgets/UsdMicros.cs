namespace TokenGateway.Core.Budgets;

/// <summary>Money as integer micro-dollars (1 USD = 1,000,000): exact sums and atomic counters; decimals only at the edges.</summary>
public static class UsdMicros
{
    /// <summary>Micro-dollars per dollar.</summary>
    public const long PerUsd = 1_000_000;

    /// <summary>Converts USD to micro-dollars, rounding half away from zero.</summary>
    public static long FromUsd(decimal usd) => (long)decimal.Round(usd * PerUsd, 0, MidpointRounding.AwayFromZero);

    /// <summary>Converts a budget limit to micro-dollars, rounding down so a limit is never exceeded by rounding.</summary>
    public static long FromUsdFloor(decimal usd) => (long)decimal.Floor(usd * PerUsd);

    /// <summary>Converts micro-dollars to USD.</summary>
    public static decimal ToUsd(long micros) => micros / (decimal)PerUsd;

    /// <summary>Price per million tokens (USD) as micro-dollars per million tokens, rounded up.</summary>
    public static long PricePerMillion(decimal usdPerMillion) => (long)decimal.Ceiling(usdPerMillion * PerUsd);

    /// <summary>Worst-case cost of <paramref name="tokens"/> at <paramref name="microsPerMillion"/>, rounded up.</summary>
    public static long CostOf(long tokens, long microsPerMillion)
    {
        if (tokens <= 0 || microsPerMillion <= 0)
        {
            return 0;
        }

        var product = (Int128)tokens * microsPerMillion;
        var cost = (product + 999_999) / 1_000_000;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>How many tokens <paramref name="micros"/> buys at <paramref name="microsPerMillion"/> (rounded down).</summary>
    public static long TokensAffordable(long micros, long microsPerMillion)
    {
        if (micros <= 0)
        {
            return 0;
        }

        if (microsPerMillion <= 0)
        {
            return long.MaxValue;
        }

        var tokens = (Int128)micros * 1_000_000 / microsPerMillion;
        return tokens > long.MaxValue ? long.MaxValue : (long)tokens;
    }
}
