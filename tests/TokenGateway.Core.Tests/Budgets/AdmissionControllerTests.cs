using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class AdmissionControllerTests
{
    private static readonly DateTimeOffset _start = new(2026, 11, 5, 12, 0, 0, TimeSpan.Zero);

    // $1/M input, $4/M output: 1000 input + 1000 output tokens cost 5000 µ$ worst case.
    private static readonly ModelCard _model = new()
    {
        Name = "gpt-4o-mini",
        Provider = "openai",
        MaxOutputTokens = 16_384,
        Prices = new ModelPrices { Input = 1m, Output = 4m },
    };

    private sealed class RecordingSink : ISoftAlertSink
    {
        public ConcurrentQueue<SoftBudgetAlert> Alerts { get; } = new();

        public void Publish(SoftBudgetAlert alert) => Alerts.Enqueue(alert);
    }

    private sealed class FakeLedger(decimal costUsd, long inputTokens, long outputTokens) : IUsageQueryService
    {
        private int _queries;

        public int Queries => _queries;

        public List<UsageQuery> Seen { get; } = [];

        public async Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _queries);
            lock (Seen)
            {
                Seen.Add(query);
            }

            await Task.Delay(20, cancellationToken);
            return new UsageReport(new UsageTotals { CostUsd = costUsd, InputTokens = inputTokens, OutputTokens = outputTokens }, []);
        }

        public Task<UsageEvent?> GetAsync(string requestId, CancellationToken cancellationToken) => Task.FromResult<UsageEvent?>(null);

        public async IAsyncEnumerable<UsageEvent> ListAsync(UsageQuery query, int limit, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }

        public Task<IReadOnlyList<TokenAnatomyRollup>> GetTokenAnatomyAsync(string? teamId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<TokenAnatomyRollup>>([]);
    }

    private sealed record Sut(AdmissionController Controller, InMemoryBudgetCounterStore Store, RecordingSink Sink, FakeTimeProvider Time) : IDisposable
    {
        public void Dispose() => Store.Dispose();
    }

    private static Sut CreateSut(FakeTimeProvider? time = null, AdmissionOptions? options = null, IUsageQueryService? ledger = null, PricingOptions? pricing = null)
    {
        time ??= new FakeTimeProvider(_start);
        var store = new InMemoryBudgetCounterStore(time);
        var sink = new RecordingSink();
        var controller = new AdmissionController(store, new BudgetSpentLoader(store, ledger, time), sink, new SoftAlertTracker(), time, options ?? new AdmissionOptions(), pricing);
        return new Sut(controller, store, sink, time);
    }

    private static EffectivePolicy Policy(string json, string? keyJson = null, string teamId = "t1", string? keyId = null) =>
        EffectivePolicy.Resolve(teamId, keyId, null, PolicyJson.Parse(json).Policy!, keyJson is null ? null : PolicyJson.Parse(keyJson).Policy!);

    private static AdmissionRequest Request(EffectivePolicy policy, int input = 1000, int? maxTokens = 1000, ModelCard? model = null, string? requestedModel = null) => new()
    {
        Policy = policy,
        Model = model ?? _model,
        RequestedModel = requestedModel,
        InputTokens = input,
        RequestedMaxTokens = maxTokens,
    };

    private static string? Header(AdmissionDecision decision, string name) =>
        decision.Headers.Where(h => h.Key == name).Select(h => h.Value).SingleOrDefault();

    [Fact]
    public async Task AdmitAsync_64ParallelRequestsBudgetFitsK_ExactlyKAdmittedRepeated()
    {
        for (var repetition = 0; repetition < 20; repetition++)
        {
            var k = 3 + (repetition * 11 % 50);
            using var sut = CreateSut();

            // k full requests fit; the 2000 µ$ left over cannot buy input (1000) + the 256-token minimum (1024).
            var budget = (k * 5000) + 2000;
            var policy = EffectivePolicy.Resolve("t1", null, null, new TeamPolicy { Budget = new BudgetPolicy { Usd = UsdMicros.ToUsd(budget), Period = BudgetPeriod.Day } }, null);
            var decisions = new AdmissionDecision[64];
            using var barrier = new Barrier(64);
            var threads = Enumerable.Range(0, 64).Select(i => new Thread(() =>
            {
                barrier.SignalAndWait();
                decisions[i] = sut.Controller.AdmitAsync(Request(policy), CancellationToken.None).AsTask().GetAwaiter().GetResult();
            })).ToArray();
            Array.ForEach(threads, t => t.Start());
            Array.ForEach(threads, t => t.Join());

            var admitted = decisions.Where(d => d.IsAdmitted).ToArray();
            Assert.Equal(k, admitted.Length);
            Assert.All(decisions.Where(d => !d.IsAdmitted), d =>
            {
                Assert.Equal(GatewayError.BudgetExceeded, d.Error);
                Assert.NotNull(Header(d, AdmissionHeaders.RetryAfter));
            });
            Assert.All(admitted, d => Assert.False(d.MaxTokensLowered));

            await Task.WhenAll(admitted.Select(d => Task.Run(async () => await d.Lease!.SettleAsync(0.004m, new TokenUsage(1000, 750)))));
            var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);
            Assert.Equal(0m, snapshot.ReservedUsd);
            Assert.Equal(k * 0.004m, snapshot.SpentUsd);
            Assert.True(snapshot.SpentUsd <= UsdMicros.ToUsd(budget));
        }
    }

    [Fact]
    public async Task AdmitAsync_RemainderCoversUsefulMinimum_LowersMaxTokens()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 0.003}}""");

        var decision = await sut.Controller.AdmitAsync(Request(policy, maxTokens: 4000), CancellationToken.None);

        // 3000 µ$ − 1000 µ$ input = 2000 µ$ → 500 output tokens; the minimum is max(256, 10% of 4000) = 400.
        Assert.True(decision.IsAdmitted);
        Assert.True(decision.MaxTokensLowered);
        Assert.Equal(500, decision.EffectiveMaxTokens);
        Assert.Equal(500, decision.MaxTokensToSend);
        Assert.Equal("500", Header(decision, AdmissionHeaders.MaxTokensLowered));
        Assert.Equal("0", Header(decision, AdmissionHeaders.BudgetRemainingUsd));
    }

    [Fact]
    public async Task AdmitAsync_NChoices_ReservesMaxTokensForEveryChoice()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 100}}""");

        var decision = await sut.Controller.AdmitAsync(Request(policy, maxTokens: 1000) with { Choices = 3 }, CancellationToken.None);

        // 1000 input (1000 µ$) + 3 × 1000 output (12000 µ$): not the 5000 µ$ of one completion.
        Assert.True(decision.IsAdmitted);
        Assert.False(decision.MaxTokensLowered);
        Assert.Equal(1000, decision.EffectiveMaxTokens);
        var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);
        Assert.Equal(0.013m, snapshot.ReservedUsd);
    }

    [Fact]
    public async Task AdmitAsync_NChoicesBudgetCoversPart_LowersMaxTokensPerChoice()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 0.009}}""");

        var decision = await sut.Controller.AdmitAsync(Request(policy, maxTokens: 1000) with { Choices = 4 }, CancellationToken.None);

        // 9000 µ$ − 1000 µ$ input = 8000 µ$ → 2000 output tokens for 4 choices → 500 each (minimum 256 each).
        Assert.True(decision.IsAdmitted);
        Assert.True(decision.MaxTokensLowered);
        Assert.Equal(500, decision.MaxTokensToSend);
        Assert.Equal("500", Header(decision, AdmissionHeaders.MaxTokensLowered));
    }

    [Fact]
    public async Task AdmitAsync_NChoicesMinimumUnaffordable_Rejects()
    {
        using var sut = CreateSut();

        // 8 choices × the 256-token minimum × 4 µ$ = 8192 µ$ > the 8000 µ$ left after input.
        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"budget": {"usd": 0.009}}"""), maxTokens: 1000) with { Choices = 8 }, CancellationToken.None);

        Assert.Equal(GatewayError.BudgetExceeded, decision.Error);
    }

    [Fact]
    public async Task AdmitAsync_NAboveMaxChoices_InvalidRequest()
    {
        using var sut = CreateSut(options: new AdmissionOptions { MaxChoices = 4 });

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{}"""), maxTokens: 10) with { Choices = 5 }, CancellationToken.None);

        Assert.Equal(GatewayError.InvalidRequest, decision.Error);
        Assert.Contains("'n'", decision.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdmitAsync_RemainderBelowFractionMinimum_Rejects()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 0.003}}""");

        // Minimum = 10% of 8000 = 800 tokens = 3200 µ$ > 2000 µ$ available.
        var decision = await sut.Controller.AdmitAsync(Request(policy, maxTokens: 8000), CancellationToken.None);

        Assert.False(decision.IsAdmitted);
        Assert.Equal(GatewayError.BudgetExceeded, decision.Error);
        Assert.Equal(TimeSpan.FromDays(25) + TimeSpan.FromHours(12), decision.RetryAfter); // month resets 2026-12-01
        Assert.Equal("2203200", Header(decision, AdmissionHeaders.RetryAfter));
    }

    [Fact]
    public async Task AdmitAsync_LoweringDisabled_RejectsInsteadOfLowering()
    {
        using var sut = CreateSut(options: new AdmissionOptions { LowerMaxTokens = false });

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"budget": {"usd": 0.003}}"""), maxTokens: 4000), CancellationToken.None);

        Assert.Equal(GatewayError.BudgetExceeded, decision.Error);
    }

    [Fact]
    public async Task AdmitAsync_NoMaxTokensSent_AppliesPolicyDefault()
    {
        using var sut = CreateSut();

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"maxTokens": {"default": 700, "cap": 2000}}"""), maxTokens: null), CancellationToken.None);

        Assert.Equal(700, decision.EffectiveMaxTokens);
        Assert.Equal(700, decision.MaxTokensToSend);
        Assert.Null(Header(decision, AdmissionHeaders.MaxTokensLowered));
        Assert.Equal(1700, decision.Lease!.Reservation.Tokens);
    }

    [Fact]
    public async Task AdmitAsync_NoMaxTokensNoDefault_ReservesModelMaximumWithoutRewriting()
    {
        using var sut = CreateSut();

        var decision = await sut.Controller.AdmitAsync(Request(Policy("{}"), maxTokens: null), CancellationToken.None);

        Assert.Equal(16_384, decision.EffectiveMaxTokens);
        Assert.Null(decision.MaxTokensToSend);
        Assert.Equal(1000 + (16_384 * 4), decision.Lease!.Reservation.UsdMicros);
    }

    [Fact]
    public async Task AdmitAsync_RequestedAboveCap_CapsAndSaysSo()
    {
        using var sut = CreateSut();

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"maxTokens": {"cap": 2000}}"""), maxTokens: 9000), CancellationToken.None);

        Assert.Equal(2000, decision.EffectiveMaxTokens);
        Assert.Equal(2000, decision.MaxTokensToSend);
        Assert.False(decision.MaxTokensLowered);
        Assert.Equal("2000", Header(decision, AdmissionHeaders.MaxTokensLowered));
    }

    [Theory]
    [InlineData("""{"models": {"allow": ["claude-*"]}}""", "gpt-4o-mini", false)]
    [InlineData("""{"models": {"allow": ["gpt-4o*"]}}""", "gpt-4o-mini", true)]
    [InlineData("""{"models": {"allow": ["*"], "deny": ["gpt-4o*"]}}""", "gpt-4o-mini", false)]
    [InlineData("""{"models": {"deny": ["*-mini"]}}""", "gpt-4o-mini", false)]
    [InlineData("""{"models": {"deny": ["gpt-4o"]}}""", "gpt-4o-mini", true)]
    public async Task AdmitAsync_ModelRules_AllowOrPermissionDenied(string policyJson, string model, bool allowed)
    {
        using var sut = CreateSut();

        var decision = await sut.Controller.AdmitAsync(Request(Policy(policyJson), model: _model with { Name = model }), CancellationToken.None);

        Assert.Equal(allowed, decision.IsAdmitted);
        if (!allowed)
        {
            Assert.Equal(GatewayError.PermissionDenied, decision.Error);
            Assert.Contains(model, decision.Message, StringComparison.Ordinal);
            Assert.Equal(0, (await sut.Store.GetSnapshotAsync("t1", null, BudgetPeriods.Current(BudgetPeriod.Month, _start).Key, CancellationToken.None)).OpenReservations);
        }
    }

    [Fact]
    public async Task AdmitAsync_UnpricedModelUnderUsdBudget_RefusedUnlessCeilingConfigured()
    {
        var unpriced = _model with { Name = "local-llm", Prices = new ModelPrices() };
        var policy = Policy("""{"budget": {"usd": 1}}""");
        using var strict = CreateSut();
        using var ceiling = CreateSut(pricing: new PricingOptions { UnpricedModelPolicy = UnpricedModelPolicy.Ceiling, CeilingInputPerMillion = 10m, CeilingOutputPerMillion = 30m });
        using var noBudget = CreateSut();

        var refused = await strict.Controller.AdmitAsync(Request(policy, model: unpriced), CancellationToken.None);
        var charged = await ceiling.Controller.AdmitAsync(Request(policy, model: unpriced), CancellationToken.None);
        var free = await noBudget.Controller.AdmitAsync(Request(Policy("{}"), model: unpriced), CancellationToken.None);

        Assert.Equal(GatewayError.ModelNotPriced, refused.Error);
        Assert.Equal(10_000 + 30_000, charged.Lease!.Reservation.UsdMicros);
        Assert.True(free.IsAdmitted);
    }

    [Fact]
    public async Task AdmitAsync_UnpricedModelUnderCeiling_ReservesExactlyWhatSettlementCharges()
    {
        // One setting (Pricing) prices both sides: before issue #11 admission read Budgets:Unpriced* and settlement
        // read Pricing:Ceiling*, so the two disagreed (and a USD budget refused the model outright).
        var pricing = new PricingOptions { UnpricedModelPolicy = UnpricedModelPolicy.Ceiling, CeilingInputPerMillion = 12m, CeilingOutputPerMillion = 48m };
        var unpriced = _model with { Name = "local-llm", Prices = new ModelPrices() };
        using var sut = CreateSut(pricing: pricing);

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"budget": {"usd": 5}}"""), input: 1000, maxTokens: 1000, model: unpriced), CancellationToken.None);
        Assert.True(new CostCalculator(pricing).TryCalculate(unpriced, new TokenUsage(1000, 1000), out var settled));

        Assert.True(decision.IsAdmitted, decision.Message);
        Assert.Equal(UsdMicros.FromUsd(settled), decision.Lease!.Reservation.UsdMicros); // settlement converts with FromUsd
        Assert.Equal(12_000 + 48_000, decision.Lease.Reservation.UsdMicros);
    }

    [Fact]
    public async Task AdmitAsync_Embeddings_ReserveInputOnly()
    {
        using var sut = CreateSut();
        var embedding = _model with { Name = "text-embedding-3-small", Kind = ModelKind.Embedding, Prices = new ModelPrices { Input = 0.02m, Output = 0m } };

        var decision = await sut.Controller.AdmitAsync(Request(Policy("""{"maxTokens": {"cap": 10}}"""), input: 5000, maxTokens: null, model: embedding), CancellationToken.None);

        Assert.Null(decision.EffectiveMaxTokens);
        Assert.Null(decision.MaxTokensToSend);
        Assert.Equal(100, decision.Lease!.Reservation.UsdMicros);
        Assert.Equal(0, decision.Lease.Reservation.OutputTokens);
    }

    [Fact]
    public async Task AdmitAsync_RateLimits_HeadersAndRateLimitedError()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"rateLimits": {"requestsPerMinute": 2, "tokensPerMinute": 100000}, "budget": {"usd": 10}}""");

        var first = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);
        var second = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);
        var third = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);

        Assert.Equal("2", Header(first, AdmissionHeaders.LimitRequests));
        Assert.Equal("1", Header(first, AdmissionHeaders.RemainingRequests));
        Assert.Equal("30s", Header(first, AdmissionHeaders.ResetRequests));
        Assert.Equal("100000", Header(first, AdmissionHeaders.LimitTokens));
        Assert.Equal("98000", Header(first, AdmissionHeaders.RemainingTokens));
        Assert.Equal("9.995", Header(first, AdmissionHeaders.BudgetRemainingUsd));
        Assert.Equal("0", Header(second, AdmissionHeaders.RemainingRequests));
        Assert.Equal(GatewayError.RateLimited, third.Error);
        Assert.Equal(DenialReason.RequestsPerMinute, third.DenialReason);
        Assert.Equal(TimeSpan.FromSeconds(30), third.RetryAfter);
        Assert.Equal("30", Header(third, AdmissionHeaders.RetryAfter));
        Assert.Equal("1m0s", Header(third, AdmissionHeaders.ResetRequests));
        Assert.Equal("9.99", Header(third, AdmissionHeaders.BudgetRemainingUsd)); // the rejected request reserved nothing
    }

    [Fact]
    public async Task Lease_EveryExitPath_LeavesNothingReserved()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 1, "period": "day"}, "rateLimits": {"tokensPerMinute": 1000000}}""");

        // Success: settled.
        await using (var lease = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!)
        {
            Assert.True(await lease.SettleAsync(0.002m, new TokenUsage(1000, 250)));
        }

        // Upstream error: released explicitly.
        var failed = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;
        Assert.True(await failed.ReleaseAsync());

        // Client cancel / timeout: the handler unwinds through `await using`.
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await using var lease = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;
            await cts.CancelAsync();
            await Task.Delay(Timeout.Infinite, cts.Token);
        });

        // Exception in a later stage.
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await using var lease = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;
            throw new InvalidOperationException("schema stage failed");
        });

        var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);
        Assert.Equal(0m, snapshot.ReservedUsd);
        Assert.Equal(0, snapshot.OpenReservations);
        Assert.Equal(0.002m, snapshot.SpentUsd);
        Assert.Equal(1250, snapshot.SpentTokens);
    }

    [Fact]
    public async Task Lease_SettleTwice_ChargesOnce()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 1}}""");
        var lease = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;

        var first = await lease.SettleAsync(0.003m, 1500);
        var second = await lease.SettleAsync(0.003m, 1500);
        var release = await lease.ReleaseAsync();
        await lease.DisposeAsync();

        Assert.True(first);
        Assert.False(second);
        Assert.False(release);
        Assert.Equal(0.003m, (await sut.Controller.GetBudgetAsync(policy, CancellationToken.None)).SpentUsd);
    }

    [Fact]
    public async Task Settle_CrossingSoftAlertPercent_AlertsOncePerPeriod()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 0.1, "period": "day", "softAlertPercent": 50, "hard": false}}""");

        // 40 settles of 2500 µ$ each = 0.1 USD; the 20th crosses 50 %.
        var leases = new List<AdmissionLease>();
        for (var i = 0; i < 40; i++)
        {
            leases.Add((await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!);
        }

        await Task.WhenAll(leases.Select(l => Task.Run(async () => await l.SettleAsync(0.0025m, 2000))));
        var alert = Assert.Single(sut.Sink.Alerts);
        Assert.Equal("t1", alert.TeamId);
        Assert.Equal("usd", alert.Metric);
        Assert.Equal("day", alert.Period);
        Assert.Equal(50, alert.ThresholdPercent);
        Assert.Equal(0.1m, alert.Limit);
        Assert.Equal(0.05m, alert.Spent);
        Assert.Equal(new DateTimeOffset(2026, 11, 6, 0, 0, 0, TimeSpan.Zero), alert.ResetsAt);

        sut.Time.Advance(TimeSpan.FromDays(1));
        for (var i = 0; i < 25; i++)
        {
            await (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!.SettleAsync(0.0025m, 2000);
        }

        Assert.Equal(2, sut.Sink.Alerts.Count);
    }

    [Fact]
    public async Task AdmitAsync_AfterRestart_SeedsSpentFromLedgerOncePerWindow()
    {
        var ledger = new FakeLedger(costUsd: 0.04m, inputTokens: 30_000, outputTokens: 5_000);
        using var sut = CreateSut(ledger: ledger);
        var policy = Policy("""{"budget": {"usd": 0.05, "period": "week"}}""");

        var decisions = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => sut.Controller.AdmitAsync(Request(policy), CancellationToken.None).AsTask()));
        var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);

        Assert.Equal(1, ledger.Queries);
        var query = Assert.Single(ledger.Seen);
        Assert.Equal("t1", query.TeamId);
        Assert.Equal(new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero), query.From);
        Assert.Equal(new DateTimeOffset(2026, 11, 9, 0, 0, 0, TimeSpan.Zero), query.To);
        Assert.Equal(2, decisions.Count(d => d.IsAdmitted)); // 0.01 USD left = two 5000 µ$ requests
        Assert.Equal(0.04m, snapshot.SpentUsd);
        Assert.Equal(35_000, snapshot.SpentTokens);
        Assert.Equal(0m, snapshot.RemainingUsd);
    }

    /// <summary>An in-process store that can "lose" its windows the way an emptied Redis does (issue #14).</summary>
    private sealed class ForgetfulStore(InMemoryBudgetCounterStore inner, bool forgetForever = false) : IBudgetCounterStore
    {
        private volatile bool _lost;

        public void Lose() => _lost = true;

        public ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken) =>
            _lost ? ValueTask.FromResult(new ReserveResult { Unseeded = true }) : inner.TryReserveAsync(request, cancellationToken);

        public ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken) =>
            inner.SettleAsync(reservation, actualUsdMicros, actualTokens, cancellationToken);

        public ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken) => inner.ReleaseAsync(reservation, cancellationToken);

        public ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken) =>
            inner.GetSnapshotAsync(teamId, keyId, periodKey, cancellationToken);

        public ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken)
        {
            _lost = forgetForever;
            return inner.SeedSpentAsync(teamId, keyId, window, spentUsdMicros, spentTokens, cancellationToken);
        }

        public ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken) => inner.ReapExpiredAsync(cancellationToken);
    }

    [Fact]
    public async Task AdmitAsync_StoreLostTheWindow_ReseedsFromLedgerThenDecides()
    {
        var time = new FakeTimeProvider(_start);
        var ledger = new FakeLedger(costUsd: 0.04m, inputTokens: 30_000, outputTokens: 5_000);
        using var inner = new InMemoryBudgetCounterStore(time);
        var store = new ForgetfulStore(inner);
        var controller = new AdmissionController(store, new BudgetSpentLoader(store, ledger, time), new RecordingSink(), new SoftAlertTracker(), time, new AdmissionOptions());
        var policy = Policy("""{"budget": {"usd": 0.05, "period": "week"}}""");

        var first = await controller.AdmitAsync(Request(policy), CancellationToken.None);
        store.Lose();
        var afterLoss = await controller.AdmitAsync(Request(policy), CancellationToken.None);

        Assert.True(first.IsAdmitted);
        Assert.True(afterLoss.IsAdmitted);
        Assert.Equal(2, ledger.Queries); // seeded at first use, and again when the store reported the loss
    }

    [Fact]
    public async Task AdmitAsync_StoreStillUnseededAfterReseed_RefusedAsBudgetUnavailable()
    {
        var time = new FakeTimeProvider(_start);
        var ledger = new FakeLedger(costUsd: 0m, inputTokens: 0, outputTokens: 0);
        using var inner = new InMemoryBudgetCounterStore(time);
        var store = new ForgetfulStore(inner, forgetForever: true);
        store.Lose();
        var controller = new AdmissionController(store, new BudgetSpentLoader(store, ledger, time), new RecordingSink(), new SoftAlertTracker(), time, new AdmissionOptions());

        var decision = await controller.AdmitAsync(Request(Policy("""{"budget": {"usd": 0.05, "period": "week"}}""")), CancellationToken.None);

        Assert.False(decision.IsAdmitted);
        Assert.Equal(GatewayError.BudgetUnavailable, decision.Error);
        Assert.Equal(503, GatewayErrors.Describe(decision.Error!.Value).Status);
        Assert.Equal("budget_unavailable", GatewayErrors.Describe(decision.Error.Value).Code);
    }

    [Fact]
    public async Task AdmitAsync_PeriodRollover_InFlightChargedToReservingPeriod()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 5, 23, 59, 59, TimeSpan.Zero));
        using var sut = CreateSut(time);
        var policy = Policy("""{"budget": {"usd": 0.005, "period": "day"}}""");

        var lease = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;
        var sameDay = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(2));
        var nextDay = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);
        await lease.SettleAsync(0.005m, 2000);
        var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);

        Assert.Equal(GatewayError.BudgetExceeded, sameDay.Error);
        Assert.Equal(TimeSpan.FromSeconds(1), sameDay.RetryAfter);
        Assert.True(nextDay.IsAdmitted);
        Assert.Equal(0m, snapshot.SpentUsd);           // yesterday's request is charged to yesterday
        Assert.Equal(0.005m, snapshot.ReservedUsd);    // today's request in flight
        Assert.Equal("day", snapshot.Period);
        Assert.Equal(new DateTimeOffset(2026, 11, 7, 0, 0, 0, TimeSpan.Zero), snapshot.ResetsAt);
        var yesterday = await sut.Store.GetSnapshotAsync("t1", null, "day:2026-11-05", CancellationToken.None);
        Assert.Equal(5000, yesterday.SpentUsdMicros);
        Assert.Equal(0, yesterday.ReservedUsdMicros);
    }

    [Fact]
    public async Task GetBudgetAsync_ReportsSpentReservedRemaining()
    {
        using var sut = CreateSut();
        var policy = Policy("""{"budget": {"usd": 50, "tokens": 1000000, "period": "month"}}""");
        var settled = (await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None)).Lease!;
        await settled.SettleAsync(1.25m, 3000);
        _ = await sut.Controller.AdmitAsync(Request(policy), CancellationToken.None);

        var snapshot = await sut.Controller.GetBudgetAsync(policy, CancellationToken.None);

        Assert.Equal("month", snapshot.Period);
        Assert.Equal(1.25m, snapshot.SpentUsd);
        Assert.Equal(0.005m, snapshot.ReservedUsd);
        Assert.Equal(48.745m, snapshot.RemainingUsd);
        Assert.Equal(3000, snapshot.SpentTokens);
        Assert.Equal(2000, snapshot.ReservedTokens);
        Assert.Equal(1_000_000 - 5000, snapshot.RemainingTokens);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero), snapshot.ResetsAt);
        Assert.Equal(50m, snapshot.BudgetUsd);
        Assert.True(snapshot.Hard);
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(250, "250ms")]
    [InlineData(1500, "1.5s")]
    [InlineData(20_000, "20s")]
    [InlineData(360_000, "6m0s")]
    [InlineData(3_723_000, "1h2m3s")]
    public void FormatReset_Durations_UseOpenAIStyle(int milliseconds, string expected)
    {
        Assert.Equal(expected, AdmissionController.FormatReset(TimeSpan.FromMilliseconds(milliseconds)));
    }
}
