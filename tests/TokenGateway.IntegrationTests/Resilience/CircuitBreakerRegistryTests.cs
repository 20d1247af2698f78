using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Polly.CircuitBreaker;
using TokenGateway.Core.Resilience;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Providers;
using TokenGateway.Resilience;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.IntegrationTests.Resilience;

public sealed class CircuitBreakerRegistryTests
{
    private static readonly string KeyScope = CircuitScopes.Key("openai", 0);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task ExecuteAsync_FailureRatioReached_OpensAndRefusesWithoutCallingUpstream()
    {
        var sut = CreateSut();
        await FailAsync(sut, 503, times: 2);
        var calls = 0;

        var refused = await sut.ExecuteAsync("openai", "openai-0", KeyScope, (_, _) =>
        {
            calls++;
            return ValueTask.FromResult(AttemptResult.Status(200));
        }, 0, CancellationToken.None);

        Assert.True(refused.Rejected);
        Assert.Equal(0, calls);
        Assert.Equal(TimeSpan.FromSeconds(5), refused.RetryAfter);
        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out var left));
        Assert.Equal(TimeSpan.FromSeconds(5), left);
        Assert.True(sut.IsOpen(KeyScope, out _));
    }

    [Fact]
    public async Task ExecuteAsync_AfterBreakDuration_OneProbeClosesTheCircuit()
    {
        var sut = CreateSut();
        await FailAsync(sut, 502, times: 2);

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
        var probe = await sut.ExecuteAsync("openai", "openai-0", KeyScope, static (_, _) => ValueTask.FromResult(AttemptResult.Status(200)), 0, CancellationToken.None);

        Assert.False(probe.Rejected);
        Assert.Equal(200, probe.Result.StatusCode);
        Assert.Equal(CircuitState.Closed, sut.StateOf(CircuitScopes.Destination("openai-0")));
    }

    [Theory]
    [InlineData(429)]
    [InlineData(400)]
    [InlineData(200)]
    public async Task ExecuteAsync_NonBreakerOutcomes_KeepTheCircuitClosed(int status)
    {
        var sut = CreateSut();

        await FailAsync(sut, status, times: 6);

        Assert.Equal(CircuitState.Closed, sut.StateOf(CircuitScopes.Destination("openai-0")));
        Assert.False(sut.IsOpen(KeyScope, out _));
    }

    [Fact]
    public async Task ExecuteAsync_TransportException_CountsAsFailure()
    {
        var sut = CreateSut();
        for (var i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<HttpRequestException>(async () =>
                await sut.ExecuteAsync<int>("openai", "openai-0", KeyScope, static (_, _) => throw new HttpRequestException("refused"), 0, CancellationToken.None));
        }

        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
    }

    [Fact]
    public async Task KeyBreaker_OpensPerKey_OtherKeysAndDestinationsUnaffected()
    {
        var sut = CreateSut();
        await FailAsync(sut, 503, times: 2, destination: "openai-0");

        Assert.False(sut.IsOpen(CircuitScopes.Destination("openai-1"), out _));
        Assert.False(sut.IsOpen(CircuitScopes.Key("openai", 1), out _));
        var other = await sut.ExecuteAsync("openai", "openai-1", CircuitScopes.Key("openai", 1), static (_, _) => ValueTask.FromResult(AttemptResult.Status(200)), 0, CancellationToken.None);
        Assert.False(other.Rejected);
    }

    [Fact]
    public async Task ExecuteAsync_ConnectFailures_OpenTheDestinationButNotTheKey()
    {
        var sut = CreateSut();
        for (var i = 0; i < 3; i++)
        {
            await sut.ExecuteAsync("openai", "openai-0", KeyScope, static (_, _) => ValueTask.FromResult(new AttemptResult(AttemptOutcomeKind.ConnectFailure)), 0, CancellationToken.None);
        }

        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
        Assert.False(sut.IsOpen(KeyScope, out _)); // the key never reached the provider: a dead deployment says nothing about it
    }

    [Fact]
    public void TryBeginClosed_OutcomesEndedOnce_CountOnTheDestinationAndTheKey()
    {
        var sut = CreateSut();

        for (var i = 0; i < 2; i++)
        {
            Assert.True(sut.TryBeginClosed("openai", "openai-0", KeyScope, out var closed));
            sut.EndClosed(closed, AttemptResult.Status(503));
        }

        // MinimumThroughput 2 at ratio 0.5: two failures, each counted once, open both breakers; a third begin is refused.
        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
        Assert.True(sut.IsOpen(KeyScope, out _));
        Assert.False(sut.TryBeginClosed("openai", "openai-0", KeyScope, out _));
        Assert.False(sut.IsOpen(CircuitScopes.Key("openai", 1), out _));
    }

    [Fact]
    public void TryBeginClosed_SuccessThenFailure_CountsEachOnce()
    {
        var sut = CreateSut();

        Assert.True(sut.TryBeginClosed("openai", "openai-0", KeyScope, out var first));
        sut.EndClosed(first, AttemptResult.Status(200));
        Assert.True(sut.TryBeginClosed("openai", "openai-0", KeyScope, out var second));
        sut.EndClosed(second, AttemptResult.Status(503));

        // One success and one failure at ratio 0.5 over two calls: the breaker opens only if both were recorded once.
        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
        Assert.Equal(CircuitState.Open, sut.StateOf(KeyScope));
    }

    [Fact]
    public void EndClosed_TransportException_CountsAsFailureOnTheDestinationOnly()
    {
        var sut = CreateSut();

        for (var i = 0; i < 2; i++)
        {
            Assert.True(sut.TryBeginClosed("openai", "openai-0", KeyScope, out var closed));
            sut.EndClosed(closed, new HttpRequestException("refused"));
        }

        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
        Assert.False(sut.IsOpen(KeyScope, out _)); // as in the Polly execution: an unreachable destination says nothing about the key
    }

    [Fact]
    public async Task EndClosed_LateSuccessAfterTheBreakerOpened_DoesNotCloseIt()
    {
        var sut = CreateSut();
        Assert.True(sut.TryBeginClosed("openai", "openai-0", KeyScope, out var slow));
        await FailAsync(sut, 503, times: 2);
        _time.Advance(TimeSpan.FromSeconds(5));

        // The slow attempt began while closed and answers after the break: it must not take or decide the half-open probe.
        sut.EndClosed(slow, AttemptResult.Status(200));

        Assert.NotEqual(CircuitState.Closed, sut.StateOf(CircuitScopes.Destination("openai-0")));
        var probe = await sut.ExecuteAsync("openai", "openai-0", KeyScope, static (_, _) => ValueTask.FromResult(AttemptResult.Status(200)), 0, CancellationToken.None);
        Assert.False(probe.Rejected);
        Assert.Equal(CircuitState.Closed, sut.StateOf(CircuitScopes.Destination("openai-0")));
    }

    [Fact]
    public void Report_FailureLearntAfterTheAttempt_IsRecorded()
    {
        var sut = CreateSut();
        var cut = new AttemptResult(AttemptOutcomeKind.BodyReset, 200, ClientReceivedBytes: true);

        sut.Report("openai", "openai-0", KeyScope, cut);
        sut.Report("openai", "openai-0", KeyScope, cut);

        Assert.True(sut.IsOpen(CircuitScopes.Destination("openai-0"), out _));
    }

    [Fact]
    public async Task IsAnythingHealthy_AllDestinationsOpen_FalseWithRetryAfter()
    {
        var sut = CreateSut();
        var provider = Provider(destinations: 2);
        Assert.True(sut.IsAnythingHealthy(provider, out _));

        await FailAsync(sut, 503, times: 2, destination: "openai-0");
        Assert.True(sut.IsAnythingHealthy(provider, out _)); // openai-1 still closed

        _time.Advance(TimeSpan.FromSeconds(2));
        await FailAsync(sut, 503, times: 2, destination: "openai-1", keyScope: CircuitScopes.Key("openai", 1));

        Assert.False(sut.IsAnythingHealthy(provider, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(3), retryAfter); // openai-0 and key #0 half-open first
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(sut.IsAnythingHealthy(provider, out _));
    }

    [Fact]
    public void ToString_NamesScopesOnly()
    {
        var sut = CreateSut();
        sut.Report("openai", "openai-0", KeyScope, AttemptResult.Status(503));

        Assert.Equal("dest:openai-0=Closed; key:openai#0=Closed", sut.ToString());
    }

    [Fact]
    public async Task DestinationBreaker_Opened_MarksTheYarpDestinationUnhealthy()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Resilience:CircuitBreaker:MinimumThroughput"] = "2",
            ["Resilience:CircuitBreaker:BreakDuration"] = "00:01:00",
        });
        var sut = server.Services.GetRequiredService<CircuitBreakerRegistry>();
        var lookup = server.Services.GetRequiredService<IProxyStateLookup>();
        Assert.True(lookup.TryGetCluster("openai", out var cluster));
        var destination = cluster.Destinations["openai-0"];
        Assert.Equal(DestinationHealth.Unknown, destination.Health.Passive);

        for (var i = 0; i < 2; i++)
        {
            await sut.ExecuteAsync("openai", "openai-0", CircuitScopes.Key("openai", 0), static (_, _) => ValueTask.FromResult(AttemptResult.Status(503)), 0, CancellationToken.None);
        }

        Assert.Equal(DestinationHealth.Unhealthy, destination.Health.Passive);
        Assert.Same(sut, server.Services.GetRequiredService<ICircuitStates>());

        // The passive policy clusters will name leaves health to the breakers: a failed proxied request changes nothing.
        var policy = server.Services.GetServices<IPassiveHealthCheckPolicy>().Single(p => p.Name == BreakerPassiveHealthPolicy.PolicyName);
        destination.Health.Passive = DestinationHealth.Healthy;
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Response.StatusCode = 503;
        policy.RequestProxied(context, cluster, destination);
        Assert.Equal(DestinationHealth.Healthy, destination.Health.Passive);
    }

    private CircuitBreakerRegistry CreateSut() => new(
        new CircuitBreakerOptions { FailureRatio = 0.5, MinimumThroughput = 2, SamplingDuration = TimeSpan.FromSeconds(10), BreakDuration = TimeSpan.FromSeconds(5) },
        _time,
        NullLogger.Instance);

    private static async Task FailAsync(CircuitBreakerRegistry sut, int status, int times, string destination = "openai-0", string? keyScope = null)
    {
        for (var i = 0; i < times; i++)
        {
            await sut.ExecuteAsync("openai", destination, keyScope ?? KeyScope, static (s, _) => ValueTask.FromResult(AttemptResult.Status(s)), status, CancellationToken.None);
        }
    }

    private ResolvedProvider Provider(int destinations) => new(
        "openai",
        new ProviderOptions(),
        Enumerable.Range(0, destinations).Select(i => $"http://upstream-{i}/").ToArray(),
        [new ProviderKey("openai#0", "X", "secret"), new ProviderKey("openai#1", "Y", "secret2")],
        new KeySelector("openai", 2, _time));
}
