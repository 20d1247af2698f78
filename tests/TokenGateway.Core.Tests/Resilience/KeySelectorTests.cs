using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class KeySelectorTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void TryAcquire_PrefersTheKeyWithFewestOutstandingRequests()
    {
        var sut = new KeySelector("openai", 3, _time);

        var first = sut.TryAcquire();
        var second = sut.TryAcquire();
        var third = sut.TryAcquire();

        Assert.Equal([0, 1, 2], new[] { first, second, third });
        sut.Release(1, default);
        Assert.Equal(1, sut.TryAcquire());
    }

    [Fact]
    public void TryAcquire_EqualLoad_PrefersTheMostRemainingRequestsThenTokens()
    {
        var sut = new KeySelector("openai", 3, _time);
        foreach (var (i, requests, tokens) in new[] { (0, 10L, 900L), (1, 50L, 100L), (2, 50L, 500L) })
        {
            Assert.Equal(i, sut.TryAcquire((object?)null, (_, k) => k == i));
            sut.Release(i, new RateLimitSnapshot(requests, tokens));
        }

        Assert.Equal(2, sut.TryAcquire());
    }

    [Fact]
    public void Release_RateLimited_MovesOffTheKeyUntilRetryAfter()
    {
        var sut = new KeySelector("anthropic", 2, _time);
        var key = sut.TryAcquire();
        sut.Release(key, default, rateLimited: true, retryAfter: TimeSpan.FromSeconds(30));

        Assert.True(sut.IsCooling(0));
        Assert.Equal(1, sut.TryAcquire());
        Assert.Equal(-1, sut.TryAcquire((object?)null, static (_, k) => k == 0));

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.False(sut.IsCooling(0));
        Assert.Equal(0, sut.TryAcquire());
    }

    [Fact]
    public void Release_RateLimitedWithoutRetryAfter_UsesTheReportedReset()
    {
        var sut = new KeySelector("openai", 1, _time);
        var key = sut.TryAcquire();
        var reset = _time.GetUtcNow().AddSeconds(12);

        sut.Release(key, new RateLimitSnapshot(0, 10, reset, null), rateLimited: true);

        Assert.Equal(-1, sut.TryAcquire());
        Assert.Equal(TimeSpan.FromSeconds(12), sut.NextAvailableIn());
        Assert.Equal(0, sut.TryAcquire((object?)null, null, after: TimeSpan.FromSeconds(12)));
    }

    [Fact]
    public void Release_SpentWindowReported_CoolsTheKeyWithoutA429()
    {
        var sut = new KeySelector("openai", 2, _time);
        var key = sut.TryAcquire();

        sut.Release(key, new RateLimitSnapshot(RemainingRequests: 0, RequestsResetAt: _time.GetUtcNow().AddSeconds(5)));

        Assert.True(sut.IsCooling(key));
        Assert.Equal(1, sut.TryAcquire());
    }

    [Fact]
    public void ToString_DescribesStateByLabelAndHoldsNoKeyMaterial()
    {
        const string secret = "sk-live-0123456789abcdef";
        var sut = new KeySelector("openai", 2, _time);
        var key = sut.TryAcquire();
        sut.Release(key, new RateLimitSnapshot(59, 1000), rateLimited: true, retryAfter: TimeSpan.FromSeconds(3));
        sut.TryAcquire();

        var text = sut.ToString();

        Assert.Contains("openai#0", text, StringComparison.Ordinal);
        Assert.Contains("coolingFor=3s", text, StringComparison.Ordinal);
        Assert.Contains("openai#1 outstanding=1", text, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TryAcquireAndRelease_Concurrently_LeaveNoOutstandingSlots()
    {
        var sut = new KeySelector("openai", 3, _time);

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 2000; i++)
            {
                var key = sut.TryAcquire();
                Assert.InRange(key, 0, 2);
                sut.Release(key, default);
            }
        })));

        Assert.All(Enumerable.Range(0, 3), k => Assert.Equal(0, sut.Outstanding(k)));
    }
}
