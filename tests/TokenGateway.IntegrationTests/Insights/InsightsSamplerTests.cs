using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Insights;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Proxy;

namespace TokenGateway.IntegrationTests.Insights;

/// <summary>
/// The sampler's contract with the request path: a bounded queue that drops (and counts) when full instead of
/// waiting, a rate of 0 that samples nothing, and requests that opted out of optimization are not sampled.
/// </summary>
public sealed class InsightsSamplerTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task Offer_QueueFull_DropsAndCountsWithoutWaiting_WorkerThenEvaluatesTheRest()
    {
        var store = new InsightsStore();
        using var meters = new TestMeterFactory();
        var sampler = Sampler(store, meters, rate: 1, capacity: 2); // not started: nothing drains the queue yet

        for (var i = 0; i < 5; i++)
        {
            sampler.Offer(new DefaultHttpContext(), Exchange(), Event());
        }

        Assert.Equal(2, sampler.Stats.Queued);
        Assert.Equal(3, sampler.Stats.Dropped);

        await sampler.StartAsync(CancellationToken.None);
        await sampler.DrainAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        await sampler.StopAsync(CancellationToken.None);
        Assert.Equal(2, sampler.Stats.Evaluated);
        Assert.Equal(2, store.Snapshot("team-s")!.Samples);
        Assert.True(sampler.Stats.CpuMicros > 0);
    }

    [Fact]
    public void Offer_RateZeroOrOptOutOrNotOk_NothingSampled()
    {
        using var meters = new TestMeterFactory();
        var off = Sampler(new InsightsStore(), meters, rate: 0, capacity: 10);
        off.Offer(new DefaultHttpContext(), Exchange(), Event());
        Assert.Equal(0, off.Stats.Queued);

        var on = Sampler(new InsightsStore(), meters, rate: 1, capacity: 10);
        var optOut = new DefaultHttpContext();
        optOut.Request.Headers[OptimizationMiddleware.OptOutHeader] = "off";
        on.Offer(optOut, Exchange(), Event());
        on.Offer(new DefaultHttpContext(), Exchange(), Event() with { Status = UsageStatus.UpstreamError });
        Assert.Equal(0, on.Stats.Queued);
        Assert.Equal(0, on.Stats.Dropped);
    }

    private InsightsSampler Sampler(InsightsStore store, IMeterFactory meters, double rate, int capacity) => new(
        fixture.Server.Services.GetRequiredService<ShadowEvaluator>(), store,
        new FixedOptions(new InsightsOptions { ShadowSampleRate = rate, QueueCapacity = capacity }), TimeProvider.System, meters,
        NullLogger<InsightsSampler>.Instance);

    private LlmExchange Exchange()
    {
        Assert.True(fixture.Server.Services.GetRequiredService<ModelCatalog>().TryResolve("gpt-4o", out var card));
        var body = """{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}],"max_tokens":4000}""";
        Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out var request, out _));
        var exchange = new LlmExchange(Guid.NewGuid().ToString("N"), LlmDialect.OpenAIChat, "/v1/chat/completions", DateTimeOffset.UtcNow);
        exchange.SetCaller("team-s", "key-s");
        exchange.SetRequest(request!);
        exchange.SetModel(card!);
        exchange.SetPolicy(EffectivePolicy.Resolve("team-s", null, null, null, null));
        return exchange;
    }

    private static UsageEvent Event() => new()
    {
        RequestId = Guid.NewGuid().ToString("N"), Timestamp = DateTimeOffset.UtcNow, TeamId = "team-s", Route = "/v1/chat/completions",
        Model = "gpt-4o", Status = UsageStatus.Ok, Usage = new TokenUsage(10, 5), CostUsd = 0.0001m,
    };

    private sealed class FixedOptions(InsightsOptions value) : IOptionsMonitor<InsightsOptions>
    {
        public InsightsOptions CurrentValue => value;

        public InsightsOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<InsightsOptions, string?> listener) => null;
    }

    private sealed class TestMeterFactory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options);
            _meters.Add(meter);
            return meter;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }
}
