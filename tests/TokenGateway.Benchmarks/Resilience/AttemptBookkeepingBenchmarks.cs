using BenchmarkDotNet.Attributes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.Proxy;

namespace TokenGateway.Benchmarks.Resilience;

/// <summary>
/// Issue #13, the resilience pipeline's cost on the happy path (one attempt, success): the request's attempts object
/// with the cheap first attempt (no planner, no chain) against the shape every request paid before (planner, chain
/// list, destination array, planned model and the planner's first decision).
/// </summary>
[MemoryDiagnoser]
public class AttemptBookkeepingBenchmarks
{
    private static readonly ModelCard _model = new() { Name = "gpt-4o-mini", Provider = "openai" };
    private static readonly string[] _destinations = ["openai-0", "openai-1"];
    private readonly KeySelector _keys = new("openai", 2, TimeProvider.System);
    private readonly NoBreakers _breakers = new();
    private readonly GatewayOptions _gateway = new();
    private LlmExchange _exchange = null!;
    private Factory _factory = null!;

    [GlobalSetup]
    public void Setup()
    {
        _exchange = new LlmExchange("req_bench", LlmDialect.OpenAIChat, "/v1/chat/completions", DateTimeOffset.UtcNow);
        _factory = new Factory(this);
    }

    /// <summary>Today: the attempts object, the first attempt at the load balancer's destination, success.</summary>
    [Benchmark(Baseline = true)]
    public PlanStep FirstAttemptWithoutPlanner()
    {
        var attempts = new UpstreamAttempts(_factory, ResilienceSettings.Default, _keys, DateTimeOffset.UtcNow, _exchange, _gateway);
        var decision = attempts.Start(_model, "openai-0");
        attempts.Begin(decision.Attempt);
        return attempts.Report(AttemptResult.Status(200)).Step;
    }

    /// <summary>Before: destination array, planned model, chain list, planner and its decisions on every request.</summary>
    [Benchmark]
    public PlanStep FirstAttemptWithPlanner()
    {
        var ids = new string[_destinations.Length];
        _destinations.CopyTo(ids, 0);
        var chain = new List<PlannedModel>(1) { new(_model, ResilienceSettings.Default, ids, _keys) };
        var planner = new AttemptPlanner(chain, _breakers, TimeProvider.System);
        var attempts = new UpstreamAttempts(_factory, ResilienceSettings.Default, _keys, DateTimeOffset.UtcNow, _exchange, _gateway);
        var decision = planner.Start();
        attempts.Begin(decision.Attempt);
        return planner.Next(AttemptResult.Status(200)).Step;
    }

    private sealed class NoBreakers : ICircuitStates
    {
        public bool IsOpen(string scopeId, out TimeSpan retryAfter)
        {
            retryAfter = TimeSpan.Zero;
            return false;
        }
    }

    private sealed class Factory(AttemptBookkeepingBenchmarks owner) : IAttemptPlannerFactory
    {
        public ICircuitStates Breakers => owner._breakers;

        public AttemptPlanner CreatePlanner(LlmExchange exchange, UpstreamAttempts attempts) =>
            new([new PlannedModel(_model, ResilienceSettings.Default, _destinations, owner._keys)], owner._breakers, TimeProvider.System);
    }
}
