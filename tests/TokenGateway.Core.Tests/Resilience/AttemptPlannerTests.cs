using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class AttemptPlannerTests
{
    private static readonly ResilienceSettings NoJitter = ResilienceSettings.Default with
    {
        MaxAttempts = 3,
        BaseDelay = TimeSpan.FromMilliseconds(100),
        MaxDelay = TimeSpan.FromSeconds(2),
        Jitter = 0,
        RetryAfterCap = TimeSpan.FromSeconds(10),
    };

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.Zero));
    private readonly FakeCircuitStates _breakers = new();

    [Fact]
    public void Plan_503TwiceThenSuccess_ThreeAttemptsWithExponentialBackoff()
    {
        var sut = CreateSut(Model("gpt-4o", "openai", destinations: 1));

        var attempts = Drive(sut, AttemptResult.Status(503), AttemptResult.Status(503), AttemptResult.Status(200));

        Assert.Equal(3, sut.Attempts);
        Assert.Equal([AttemptReason.Initial, AttemptReason.Retry, AttemptReason.Retry], attempts.Select(a => a.Reason));
        Assert.Equal([TimeSpan.Zero, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)], attempts.Select(a => a.Delay));
        Assert.Equal(PlanStep.Succeeded, _last.Step);
    }

    [Fact]
    public void Plan_Persistent503_StopsAfterMaxAttempts()
    {
        var sut = CreateSut(Model("gpt-4o", "openai", destinations: 2));

        var attempts = Drive(sut, Enumerable.Repeat(AttemptResult.Status(503), 10).ToArray());

        Assert.Equal(3, attempts.Count);
        Assert.Equal(PlanStep.GiveUp, _last.Step);
        Assert.Equal("max_attempts", _last.Detail);
        // The retry goes to the other destination first.
        Assert.Equal(["openai-0", "openai-1", "openai-0"], attempts.Select(a => a.DestinationId));
    }

    [Fact]
    public void Plan_SeededJitter_IsDeterministic()
    {
        var settings = NoJitter with { Jitter = 1, MaxAttempts = 4 };
        TimeSpan[] Run()
        {
            var random = new Random(7);
            var sut = new AttemptPlanner([Model("gpt-4o", "openai", settings: settings)], _breakers, _time, random.NextDouble);
            return Drive(sut, Enumerable.Repeat(AttemptResult.Status(500), 4).ToArray()).Select(a => a.Delay).ToArray();
        }

        var first = Run();

        Assert.Equal(first, Run());
        Assert.All(first.Skip(1), d => Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromMilliseconds(400)));
    }

    [Fact]
    public void Plan_429WithRetryAfterWithinCap_WaitsExactlyThatLongOnTheOnlyKey()
    {
        var sut = CreateSut(Model("gpt-4o", "openai", keys: 1));

        var attempts = Drive(sut, AttemptResult.Status(429, TimeSpan.FromSeconds(4)), AttemptResult.Status(200));

        Assert.Equal(2, attempts.Count);
        Assert.Equal(TimeSpan.FromSeconds(4), attempts[1].Delay);
        Assert.Equal(AttemptReason.KeyRotation, attempts[1].Reason);
        Assert.Equal(PlanStep.Succeeded, _last.Step);
    }

    [Fact]
    public void Plan_429WithRetryAfterBeyondCap_IsNotWaitedAndTheErrorGoesBack()
    {
        var sut = CreateSut(Model("gpt-4o", "openai", keys: 1));

        var attempts = Drive(sut, AttemptResult.Status(429, TimeSpan.FromSeconds(60)));

        Assert.Single(attempts);
        Assert.Equal(PlanStep.GiveUp, _last.Step);
        Assert.Equal("rate_limited", _last.Detail);
    }

    [Fact]
    public void Plan_429OnOneKey_MovesToTheNextKeyAtOnce()
    {
        var model = Model("gpt-4o", "openai", keys: 2);
        var sut = CreateSut(model);

        var attempts = Drive(sut, AttemptResult.Status(429, TimeSpan.FromSeconds(60)), AttemptResult.Status(200));

        Assert.Equal([0, 1], attempts.Select(a => a.KeyIndex));
        Assert.Equal(TimeSpan.Zero, attempts[1].Delay);
        Assert.True(model.Keys.IsCooling(0));
        Assert.Equal(0, model.Keys.Outstanding(0) + model.Keys.Outstanding(1));
    }

    [Fact]
    public void Start_EveryBreakerOpen_FailsFastWithRetryAfter()
    {
        _breakers.Open(CircuitScopes.Destination("openai-0"), TimeSpan.FromSeconds(7.2));
        _breakers.Open(CircuitScopes.Destination("openai-1"), TimeSpan.FromSeconds(12));
        var sut = CreateSut(Model("gpt-4o", "openai", destinations: 2));

        var decision = sut.Start();

        Assert.Equal(PlanStep.FailFast, decision.Step);
        Assert.Equal(TimeSpan.FromSeconds(8), decision.RetryAfter);
        Assert.Equal(0, sut.Attempts);
    }

    [Fact]
    public void Start_KeyBreakerOpen_UsesTheOtherKey()
    {
        _breakers.Open(CircuitScopes.Key("openai", 0), TimeSpan.FromSeconds(10));
        var sut = CreateSut(Model("gpt-4o", "openai", keys: 2));

        var decision = sut.Start();

        Assert.Equal(PlanStep.Attempt, decision.Step);
        Assert.Equal(1, decision.Attempt.KeyIndex);
    }

    [Fact]
    public void Start_PrimaryBreakerOpen_GoesStraightToTheFallback()
    {
        _breakers.Open(CircuitScopes.Destination("openai-0"), TimeSpan.FromSeconds(10));
        var sut = CreateSut(Model("gpt-4o", "openai"), Model("claude-sonnet-4", "anthropic"));

        var decision = sut.Start();

        Assert.Equal(PlanStep.Attempt, decision.Step);
        Assert.Equal("claude-sonnet-4", decision.Attempt.Model.Name);
    }

    [Fact]
    public void Start_AllKeysCoolingAfter429s_AnswersRateLimited()
    {
        var model = Model("gpt-4o", "openai", keys: 1);
        var key = model.Keys.TryAcquire();
        model.Keys.Release(key, default, rateLimited: true, retryAfter: TimeSpan.FromSeconds(30));
        var sut = CreateSut(model);

        var decision = sut.Start();

        Assert.Equal(PlanStep.RateLimited, decision.Step);
        Assert.Equal(TimeSpan.FromSeconds(30), decision.RetryAfter);
    }

    [Fact]
    public void Plan_FallbackChain_TriedInOrderAfterEachModelsAttempts()
    {
        var one = NoJitter with { MaxAttempts = 1 };
        var sut = CreateSut(
            Model("gpt-4o", "openai", settings: NoJitter with { MaxAttempts = 2 }),
            Model("gpt-4.1", "openai", settings: one),
            Model("gpt-4o-mini", "openai", settings: one));

        var attempts = Drive(sut, AttemptResult.Status(503), AttemptResult.Status(502), new AttemptResult(AttemptOutcomeKind.ConnectFailure), AttemptResult.Status(200));

        Assert.Equal(["gpt-4o", "gpt-4o", "gpt-4.1", "gpt-4o-mini"], attempts.Select(a => a.Model.Name));
        Assert.Equal([AttemptReason.Initial, AttemptReason.Retry, AttemptReason.Fallback, AttemptReason.Fallback], attempts.Select(a => a.Reason));
        Assert.Equal(TimeSpan.Zero, attempts[2].Delay);
        Assert.Equal(PlanStep.Succeeded, _last.Step);
        Assert.Equal(4, sut.Attempts);
    }

    [Fact]
    public void Plan_BreakerOpensMidRequest_GoesToTheFallbackInsteadOfWaitingForTheProbe()
    {
        var sut = CreateSut(Model("gpt-4o", "openai"), Model("gpt-4.1", "azure"));
        var first = sut.Start();

        _breakers.Open(CircuitScopes.Destination("openai-0"), TimeSpan.FromSeconds(5)); // within the 10 s cap
        var next = sut.Next(AttemptResult.Status(503));

        Assert.Equal("openai-0", first.Attempt.DestinationId);
        Assert.Equal(PlanStep.Attempt, next.Step);
        Assert.Equal("gpt-4.1", next.Attempt.Model.Name);
        Assert.Equal(TimeSpan.Zero, next.Attempt.Delay);
    }

    [Fact]
    public void Plan_BreakerOpensMidRequestWithoutFallback_WaitsForTheProbeWithinTheCap()
    {
        var sut = CreateSut(Model("gpt-4o", "openai"));
        sut.Start();

        _breakers.Open(CircuitScopes.Destination("openai-0"), TimeSpan.FromSeconds(5));
        var next = sut.Next(AttemptResult.Status(503));

        Assert.Equal(PlanStep.Attempt, next.Step);
        Assert.Equal(TimeSpan.FromSeconds(5), next.Attempt.Delay);
    }

    [Fact]
    public void Plan_NotRetryableStatus_GivesUpWithoutFallback()
    {
        var sut = CreateSut(Model("gpt-4o", "openai"), Model("gpt-4.1", "openai"));

        var attempts = Drive(sut, AttemptResult.Status(400));

        Assert.Single(attempts);
        Assert.Equal(PlanStep.GiveUp, _last.Step);
        Assert.Equal("not_retryable", _last.Detail);
    }

    [Fact]
    public void Plan_FailureAfterFirstByte_AbortsTheStreamUnlessContinuationIsOptedIn()
    {
        var cut = new AttemptResult(AttemptOutcomeKind.BodyReset, 200, ClientReceivedBytes: true);

        var plain = CreateSut(Model("claude-sonnet-4", "anthropic"));
        Drive(plain, cut);
        Assert.Equal(PlanStep.AbortStream, _last.Step);

        var optedIn = new AttemptPlanner([Model("claude-sonnet-4", "anthropic", settings: NoJitter with { ContinueStreams = true })], _breakers, _time, canContinueStreams: true);
        var attempts = Drive(optedIn, cut, AttemptResult.Status(200));
        Assert.Equal(AttemptReason.Continuation, attempts[1].Reason);
        Assert.Equal(PlanStep.Succeeded, _last.Step);

        var toolCall = new AttemptPlanner([Model("claude-sonnet-4", "anthropic", settings: NoJitter with { ContinueStreams = true })], _breakers, _time, canContinueStreams: true);
        Drive(toolCall, cut with { ToolCallInFlight = true });
        Assert.Equal(PlanStep.AbortStream, _last.Step);
        Assert.Equal("tool_call_in_flight", _last.Detail);
    }

    [Fact]
    public void Plan_BackoffBeyondTheDeadline_GivesUp()
    {
        var settings = NoJitter with { TotalTimeout = TimeSpan.FromSeconds(5), MaxAttempts = 5 };
        var sut = CreateSut(Model("gpt-4o", "openai", settings: settings));

        var decision = sut.Start();
        _time.Advance(TimeSpan.FromSeconds(4.95));
        decision = sut.Next(AttemptResult.Status(503));

        Assert.Equal(PlanStep.GiveUp, decision.Step);
        Assert.Equal("deadline", decision.Detail);
    }

    [Fact]
    public void Plan_503WithRetryAfterWithinCap_HonoursIt()
    {
        var sut = CreateSut(Model("gpt-4o", "openai"));

        var attempts = Drive(sut, AttemptResult.Status(503, TimeSpan.FromSeconds(3)), AttemptResult.Status(200));

        Assert.Equal(TimeSpan.FromSeconds(3), attempts[1].Delay);
    }

    [Fact]
    public void Release_WithoutNext_FreesTheKeySlot()
    {
        var model = Model("gpt-4o", "openai");
        var sut = CreateSut(model);
        sut.Start();
        Assert.Equal(1, model.Keys.Outstanding(0));

        sut.Release();

        Assert.Equal(0, model.Keys.Outstanding(0));
    }

    private PlanDecision _last;

    private List<PlannedAttempt> Drive(AttemptPlanner sut, params AttemptResult[] results)
    {
        var attempts = new List<PlannedAttempt>();
        var decision = sut.Start();
        var i = 0;
        while (decision.Step == PlanStep.Attempt)
        {
            attempts.Add(decision.Attempt);
            _time.Advance(decision.Attempt.Delay);
            decision = sut.Next(results[i++]);
        }

        _last = decision;
        return attempts;
    }

    private AttemptPlanner CreateSut(params PlannedModel[] chain) => new(chain, _breakers, _time, () => 0.5);

    private PlannedModel Model(string name, string provider, int destinations = 1, int keys = 1, ResilienceSettings? settings = null) => new(
        FallbackChainsTests.Card(name, provider),
        settings ?? NoJitter,
        Enumerable.Range(0, destinations).Select(i => $"{provider}-{i}").ToArray(),
        new KeySelector(provider, keys, _time));

    private sealed class FakeCircuitStates : ICircuitStates
    {
        private readonly Dictionary<string, TimeSpan> _open = [];

        public void Open(string scope, TimeSpan remaining) => _open[scope] = remaining;

        public bool IsOpen(string scopeId, out TimeSpan retryAfter) => _open.TryGetValue(scopeId, out retryAfter);
    }
}
