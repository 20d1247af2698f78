using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class RateLimitSnapshotTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Parse_OpenAIHeaders_ReadsRemainingAndDurations()
    {
        var headers = new Dictionary<string, string>
        {
            ["x-ratelimit-remaining-requests"] = "59",
            ["x-ratelimit-remaining-tokens"] = "149984",
            ["x-ratelimit-reset-requests"] = "1m2.5s",
            ["x-ratelimit-reset-tokens"] = "20ms",
        };

        var snapshot = RateLimitSnapshot.Parse(headers, Lookup, Now);

        Assert.Equal(59, snapshot.RemainingRequests);
        Assert.Equal(149_984, snapshot.RemainingTokens);
        Assert.Equal(Now + TimeSpan.FromSeconds(62.5), snapshot.RequestsResetAt);
        Assert.Equal(Now + TimeSpan.FromMilliseconds(20), snapshot.TokensResetAt);
    }

    [Fact]
    public void Parse_AnthropicHeaders_ReadsRemainingAndRfc3339Resets()
    {
        var headers = new Dictionary<string, string>
        {
            ["anthropic-ratelimit-requests-remaining"] = "0",
            ["anthropic-ratelimit-tokens-remaining"] = "1200",
            ["anthropic-ratelimit-requests-reset"] = "2026-12-03T08:00:42Z",
            ["anthropic-ratelimit-tokens-reset"] = "2026-12-03T08:00:10Z",
        };

        var snapshot = RateLimitSnapshot.Parse(headers, Lookup, Now);

        Assert.Equal(0, snapshot.RemainingRequests);
        Assert.Equal(1200, snapshot.RemainingTokens);
        Assert.Equal(Now.AddSeconds(42), snapshot.ExhaustedUntil());
        Assert.Equal(Now.AddSeconds(42), snapshot.LatestReset());
    }

    [Fact]
    public void Parse_NoOrGarbageHeaders_IsEmpty()
    {
        var headers = new Dictionary<string, string> { ["x-ratelimit-remaining-requests"] = "-3", ["x-ratelimit-reset-requests"] = "soon" };

        var snapshot = RateLimitSnapshot.Parse(headers, Lookup, Now);

        Assert.True(snapshot.IsEmpty);
        Assert.Null(snapshot.ExhaustedUntil());
    }

    [Theory]
    [InlineData("6m0s", 360_000)]
    [InlineData("1h2m3s", 3_723_000)]
    [InlineData("0.5s", 500)]
    [InlineData("12ms", 12)]
    public void TryParseDuration_OpenAIForms(string text, double expectedMs)
    {
        Assert.True(RateLimitSnapshot.TryParseDuration(text, out var duration));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5x")]
    [InlineData("s")]
    public void TryParseDuration_Invalid_ReturnsFalse(string text)
    {
        Assert.False(RateLimitSnapshot.TryParseDuration(text, out _));
    }

    private static string? Lookup(Dictionary<string, string> headers, string name) => headers.GetValueOrDefault(name);
}
