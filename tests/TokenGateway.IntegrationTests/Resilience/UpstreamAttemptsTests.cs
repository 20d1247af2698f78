using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.Proxy;
using Xunit.Abstractions;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// The request's attempts build the planner (and its chain) only when a decision needs it: a first attempt that
/// succeeds costs no planner (issue #13, happy-path cost).
/// </summary>
public sealed class UpstreamAttemptsTests(ITestOutputHelper output)
{
    private static readonly ModelCard Model = new() { Name = "gpt-4o-mini", Provider = "openai" };
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Start_FirstAttemptSucceeds_NoPlannerIsBuiltAndTheKeySlotIsFreed()
    {
        var (sut, factory, keys) = CreateSut();

        var decision = sut.Start(Model, "openai-0");
        sut.Begin(decision.Attempt);
        var next = sut.Report(AttemptResult.Status(200));

        Assert.Equal(PlanStep.Attempt, decision.Step);
        Assert.Equal("openai-0", decision.Attempt.DestinationId);
        Assert.Equal(PlanStep.Succeeded, next.Step);
        Assert.Equal(0, factory.Created);
        Assert.False(sut.HasPlanner);
        Assert.Equal(0, keys.Outstanding(decision.Attempt.KeyIndex));
    }

    [Fact]
    public void Report_FirstAttemptFails_ThePlannerIsBuiltOnceAndRetriesElsewhere()
    {
        var (sut, factory, keys) = CreateSut();

        var first = sut.Start(Model, "openai-0");
        sut.Begin(first.Attempt);
        var retry = sut.Report(AttemptResult.Status(503));
        sut.Begin(retry.Attempt);
        var done = sut.Report(AttemptResult.Status(200));

        Assert.Equal(1, factory.Created);
        Assert.Equal(PlanStep.Attempt, retry.Step);
        Assert.Equal(2, retry.Attempt.Number);
        Assert.Equal(AttemptReason.Retry, retry.Attempt.Reason);
        Assert.Equal("openai-1", retry.Attempt.DestinationId); // the failed destination goes last
        Assert.Equal(PlanStep.Succeeded, done.Step);
        Assert.Equal(0, keys.Outstanding(0));
    }

    [Fact]
    public void Start_PickedDestinationOpen_ThePlannerPlansTheFirstAttempt()
    {
        var (sut, factory, _) = CreateSut(open: "dest:openai-0");

        var decision = sut.Start(Model, "openai-0");

        Assert.Equal(1, factory.Created);
        Assert.Equal("openai-1", decision.Attempt.DestinationId);
    }

    [Fact]
    public void HappyPath_FirstAttemptBookkeepingAllocatesNothing()
    {
        // Warm up both paths (JIT, statics), then measure one request's Start/Begin/Report on this thread (synchronous).
        for (var i = 0; i < 3; i++)
        {
            Run(CreateSut().Sut, "openai-0");
            Run(CreateSut().Sut, null);
        }

        var happySut = CreateSut().Sut;
        var before = GC.GetAllocatedBytesForCurrentThread();
        Run(happySut, "openai-0");
        var happy = GC.GetAllocatedBytesForCurrentThread() - before;

        var plannedSut = CreateSut().Sut;
        before = GC.GetAllocatedBytesForCurrentThread();
        Run(plannedSut, null); // no load-balancer choice: the planner (and its chain) plans the first attempt
        var planned = GC.GetAllocatedBytesForCurrentThread() - before;

        output.WriteLine($"attempt bookkeeping per request: first attempt without planner {happy} B, with planner {planned} B");
        Assert.Equal(0, happy);
        Assert.True(planned > 0);

        static void Run(UpstreamAttempts sut, string? picked)
        {
            var d = sut.Start(Model, picked);
            sut.Begin(d.Attempt);
            sut.Report(AttemptResult.Status(200));
        }
    }

    private (UpstreamAttempts Sut, Factory Factory, KeySelector Keys) CreateSut(string? open = null)
    {
        var keys = new KeySelector("openai", 2, _time);
        var breakers = new Breakers(open);
        var factory = new Factory(breakers, keys, _time);
        var exchange = new LlmExchange("req_test", LlmDialect.OpenAIChat, "/v1/chat/completions", _time.GetUtcNow());
        var sut = new UpstreamAttempts(factory, ResilienceSettings.Default, keys, _time.GetUtcNow(), exchange, new GatewayOptions());
        return (sut, factory, keys);
    }

    private sealed class Breakers(string? open) : ICircuitStates
    {
        public bool IsOpen(string scopeId, out TimeSpan retryAfter)
        {
            retryAfter = TimeSpan.FromSeconds(5);
            return scopeId == open;
        }
    }

    private sealed class Factory(ICircuitStates breakers, KeySelector keys, TimeProvider time) : IAttemptPlannerFactory
    {
        public int Created { get; private set; }

        public ICircuitStates Breakers => breakers;

        public AttemptPlanner CreatePlanner(LlmExchange exchange, UpstreamAttempts attempts)
        {
            Created++;
            var first = attempts.Count > 0 ? attempts.Current.DestinationId : "openai-0";
            string[] ids = first == "openai-0" ? ["openai-0", "openai-1"] : ["openai-1", "openai-0"];
            return new AttemptPlanner([new PlannedModel(Model, ResilienceSettings.Default, ids, keys)], breakers, time, random: static () => 0.5);
        }
    }
}
