using System.Net;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Auth;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>The back-off table itself: grouping of addresses, forgetting, the cap on delay and on memory.</summary>
public sealed class AdminLoginThrottleTests
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);

    [Fact]
    public void Ipv6_SameSlash64SharesOneBackOff_OtherPrefixesDoNot()
    {
        var throttle = Create();
        for (var i = 1; i <= 5; i++)
        {
            throttle.RecordFailure(IPAddress.Parse($"2001:db8:1:2::{i:x}")); // five hosts, one /64
        }

        Assert.True(throttle.IsBlocked(IPAddress.Parse("2001:db8:1:2:ffff::1"), out var wait));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);
        Assert.False(throttle.IsBlocked(IPAddress.Parse("2001:db8:1:3::1"), out _));
        Assert.False(throttle.IsBlocked(IPAddress.Parse("::ffff:192.0.2.1"), out _));
    }

    [Fact]
    public void Ipv4MappedIpv6_CountsAsTheIpv4Address()
    {
        var throttle = Create();
        for (var i = 0; i < 5; i++)
        {
            throttle.RecordFailure(IPAddress.Parse("::ffff:192.0.2.7"));
        }

        Assert.True(throttle.IsBlocked(IPAddress.Parse("192.0.2.7"), out _));
    }

    [Fact]
    public void Delay_DoublesPerFailure_UpToMaxDelay()
    {
        var throttle = Create();
        var address = IPAddress.Parse("192.0.2.10");
        var delays = new List<TimeSpan>();
        for (var i = 0; i < 20; i++)
        {
            delays.Add(throttle.RecordFailure(address));
            _clock.Advance(delays[^1]);
        }

        Assert.Equal([TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero], delays[..4]);
        Assert.Equal(TimeSpan.FromSeconds(1), delays[4]);
        Assert.Equal(TimeSpan.FromSeconds(2), delays[5]);
        Assert.Equal(TimeSpan.FromSeconds(512), delays[13]);
        Assert.Equal(TimeSpan.FromMinutes(15), delays[^1]);
        Assert.All(delays, d => Assert.True(d <= TimeSpan.FromMinutes(15)));
    }

    [Fact]
    public void Failures_AreForgottenAfterAQuietPeriod()
    {
        var throttle = Create();
        var address = IPAddress.Parse("192.0.2.11");
        for (var i = 0; i < 4; i++)
        {
            throttle.RecordFailure(address);
        }

        _clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));

        Assert.Equal(TimeSpan.Zero, throttle.RecordFailure(address)); // counted from one again, still free
    }

    [Fact]
    public void ManyAddresses_TableStaysBounded_AndNewcomersShareOneBucket()
    {
        var throttle = Create(maxTracked: 100);
        for (var i = 0; i < 5_000; i++)
        {
            throttle.RecordFailure(new IPAddress(0x0A000000u + (uint)i)); // 10.0.x.y, one failure each
        }

        Assert.True(throttle.TrackedCount <= 101, $"{throttle.TrackedCount} addresses tracked");
        // The overflow bucket has seen thousands of failures: a fresh address is blocked through it before it can guess.
        Assert.True(throttle.IsBlocked(IPAddress.Parse("10.200.0.1"), out var wait));
        Assert.True(wait > TimeSpan.Zero);
        Assert.False(throttle.IsBlocked(new IPAddress(0x0A000000u), out _)); // a tracked address keeps its own state
    }

    private AdminLoginThrottle Create(int maxTracked = 10_000) =>
        new(_clock, Options.Create(new AdminThrottleOptions { MaxTrackedAddresses = maxTracked }));
}
