using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class RetryAfterParserTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(null, "7", 7000)]
    [InlineData(null, "0", 0)]
    [InlineData(null, " 2.5 ", 2500)]
    [InlineData("1500", null, 1500)]
    [InlineData("250", "7", 250)]
    [InlineData("not-a-number", "3", 3000)]
    [InlineData(null, "Thu, 03 Dec 2026 08:00:30 GMT", 30000)]
    [InlineData(null, "Thu, 03 Dec 2026 07:59:00 GMT", 0)]
    public void TryParse_ValidHints_ReturnsTheDelay(string? ms, string? retryAfter, double expectedMs)
    {
        Assert.True(RetryAfterParser.TryParse(ms, retryAfter, Now, out var delay));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), delay);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", "")]
    [InlineData("-5", "-1")]
    [InlineData("NaN", "soon")]
    public void TryParse_NoValidHint_ReturnsFalse(string? ms, string? retryAfter)
    {
        Assert.False(RetryAfterParser.TryParse(ms, retryAfter, Now, out _));
    }

    [Fact]
    public void TryParse_HugeValue_IsClampedToADay()
    {
        Assert.True(RetryAfterParser.TryParse(null, "99999999999", Now, out var delay));
        Assert.Equal(RetryAfterParser.MaxHint, delay);
    }
}

public sealed class BackoffTests
{
    private static readonly TimeSpan Base = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(1, 500)]
    [InlineData(2, 1000)]
    [InlineData(3, 2000)]
    [InlineData(5, 8000)]
    [InlineData(6, 10000)]
    [InlineData(60, 10000)]
    public void Compute_NoJitter_IsExponentialAndCapped(int retry, double expectedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Backoff.Compute(retry, Base, Max, jitter: 0, random01: 0.9));
    }

    [Theory]
    [InlineData(0.0, 2000)]
    [InlineData(0.5, 1500)]
    [InlineData(0.999, 1001)]
    public void Compute_HalfJitter_StaysWithinTheUpperHalf(double draw, double expectedMs)
    {
        var delay = Backoff.Compute(3, Base, Max, jitter: 0.5, random01: draw);

        Assert.Equal(expectedMs, delay.TotalMilliseconds, precision: 0);
    }

    [Fact]
    public void Compute_SeededRandom_IsDeterministicAndWithinBounds()
    {
        var first = Enumerable.Range(1, 8).Select(i => Backoff.Compute(i, Base, Max, 1, new Random(42 + i).NextDouble())).ToArray();
        var second = Enumerable.Range(1, 8).Select(i => Backoff.Compute(i, Base, Max, 1, new Random(42 + i).NextDouble())).ToArray();

        Assert.Equal(first, second);
        Assert.All(first, d => Assert.InRange(d, TimeSpan.Zero, Max));
    }

    [Fact]
    public void Compute_ZeroBase_IsZero()
    {
        Assert.Equal(TimeSpan.Zero, Backoff.Compute(3, TimeSpan.Zero, Max, 0.5, 0.5));
    }
}
