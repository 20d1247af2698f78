using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

/// <summary>
/// The <see cref="IBudgetCounterStore"/> contract: every implementation (in-process, Redis) must pass these with the
/// same numbers. Implementations derive and supply <see cref="CreateSut"/>; the clock is a fake one throughout.
/// </summary>
public abstract class BudgetCounterStoreContractTests : IDisposable
{
    private readonly List<IDisposable> _created = [];
    protected static readonly DateTimeOffset _start = new(2026, 11, 5, 12, 0, 0, TimeSpan.Zero);

    // 1000 input tokens at $1/M (1000 µ$) + 1000 output tokens at $4/M (4000 µ$) = 5000 µ$ worst case.
    protected const long CostPerRequest = 5000;

    protected static ReserveRequest Request(
        DateTimeOffset now,
        long? usdMicros = null,
        long? tokens = null,
        RateLimits teamRate = default,
        string teamId = "t1",
        string? keyId = null,
        BudgetLimits? keyBudget = null,
        RateLimits? keyRate = null,
        int input = 1000,
        int output = 1000,
        int? minOutput = null,
        BudgetPeriod period = BudgetPeriod.Day,
        bool hard = true,
        TimeSpan? ttl = null) => new()
        {
            TeamId = teamId,
            KeyId = keyId,
            TeamBudget = new BudgetLine(BudgetPeriods.Current(period, now), new BudgetLimits(period, usdMicros, tokens, null, hard)),
            KeyBudget = keyBudget is null ? null : new BudgetLine(BudgetPeriods.Current(keyBudget.Period, now), keyBudget),
            TeamRate = teamRate,
            KeyRate = keyRate,
            InputTokens = input,
            InputCostMicros = UsdMicros.CostOf(input, UsdMicros.PricePerMillion(1m)),
            MaxOutputTokens = output,
            MinOutputTokens = minOutput ?? output,
            OutputMicrosPerMillion = UsdMicros.PricePerMillion(4m),
            Ttl = ttl ?? TimeSpan.FromMinutes(20),
        };

    protected static async Task<BudgetCounters> Snapshot(IBudgetCounterStore sut, DateTimeOffset now, string teamId = "t1", string? keyId = null, BudgetPeriod period = BudgetPeriod.Day) =>
        await sut.GetSnapshotAsync(teamId, keyId, BudgetPeriods.Current(period, now).Key, CancellationToken.None);

    /// <summary>A new, empty store on <paramref name="time"/>.</summary>
    protected abstract IBudgetCounterStore CreateStore(FakeTimeProvider time);

    /// <summary>Disposes what <see cref="CreateSut"/> created.</summary>
    public void Dispose()
    {
        foreach (var created in _created)
        {
            created.Dispose();
        }

        GC.SuppressFinalize(this);
    }

    private IBudgetCounterStore CreateSut(FakeTimeProvider time)
    {
        var store = CreateStore(time);
        if (store is IDisposable disposable)
        {
            _created.Add(disposable);
        }

        return store;
    }

    [SkippableFact]
    public async Task TryReserve_64ParallelRequestsBudgetFitsK_ExactlyKAdmittedRepeated()
    {
        for (var repetition = 0; repetition < 24; repetition++)
        {
            var k = 1 + (repetition * 7 % 40);
            var time = new FakeTimeProvider(_start);
            var sut = CreateSut(time);
            var budget = k * CostPerRequest;
            var request = Request(time.GetUtcNow(), usdMicros: budget);
            var results = new ReserveResult[64];
            using var barrier = new Barrier(64);
            var threads = Enumerable.Range(0, 64).Select(i => new Thread(() =>
            {
                barrier.SignalAndWait();
                results[i] = sut.TryReserveAsync(request, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            })).ToArray();
            Array.ForEach(threads, t => t.Start());
            Array.ForEach(threads, t => t.Join());

            var admitted = results.Where(r => r.Reservation is not null).ToArray();
            Assert.Equal(k, admitted.Length);
            Assert.All(results.Where(r => r.Reservation is null), r => Assert.Equal(DenialReason.Budget, r.Denial!.Reason));
            var during = await Snapshot(sut, time.GetUtcNow());
            Assert.Equal(budget, during.ReservedUsdMicros);

            // Settle concurrently at actual cost (≤ worst case): spend stays within the budget, nothing stays reserved.
            await Task.WhenAll(admitted.Select(r => Task.Run(async () => await sut.SettleAsync(r.Reservation!, 1000 + 3000, 1750, CancellationToken.None))));
            var after = await Snapshot(sut, time.GetUtcNow());
            Assert.Equal(0, after.ReservedUsdMicros);
            Assert.Equal(0, after.OpenReservations);
            Assert.Equal(k * 4000, after.SpentUsdMicros);
            Assert.True(after.SpentUsdMicros <= budget);
        }
    }

    [SkippableFact]
    public async Task TryReserve_ConcurrentReserveSettleChurn_NeverExceedsHardBudget()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        const long budget = 37 * CostPerRequest;
        var request = Request(time.GetUtcNow(), usdMicros: budget);
        using var barrier = new Barrier(16);
        var threads = Enumerable.Range(0, 16).Select(i => new Thread(() =>
        {
            var random = new Random(i);
            barrier.SignalAndWait();
            for (var n = 0; n < 200; n++)
            {
                var result = sut.TryReserveAsync(request, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                if (result.Reservation is { } reservation)
                {
                    if (random.Next(3) == 0)
                    {
                        sut.ReleaseAsync(reservation, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                    }
                    else
                    {
                        sut.SettleAsync(reservation, random.Next(0, (int)reservation.UsdMicros + 1), 10, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                    }
                }
            }
        })).ToArray();
        Array.ForEach(threads, t => t.Start());
        Array.ForEach(threads, t => t.Join());

        var after = await Snapshot(sut, time.GetUtcNow());
        Assert.True(after.SpentUsdMicros <= budget, $"spent {after.SpentUsdMicros} > budget {budget}");
        Assert.Equal(0, after.ReservedUsdMicros);
        Assert.Equal(0, after.OpenReservations);
    }

    [SkippableFact]
    public async Task Release_AfterReserve_RestoresBalance()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var request = Request(time.GetUtcNow(), usdMicros: CostPerRequest, teamRate: new RateLimits(null, 10_000));

        var first = await sut.TryReserveAsync(request, CancellationToken.None);
        var blocked = await sut.TryReserveAsync(request, CancellationToken.None);
        await sut.ReleaseAsync(first.Reservation!, CancellationToken.None);
        var again = await sut.TryReserveAsync(request, CancellationToken.None);

        Assert.NotNull(first.Reservation);
        Assert.Equal(DenialReason.Budget, blocked.Denial!.Reason);
        Assert.NotNull(again.Reservation);
        Assert.Equal(10_000 - 2000, again.Tokens!.Value.Remaining); // the released estimate went back to the TPM bucket
    }

    [SkippableFact]
    public async Task Settle_AfterReservationExpired_StillChargesActualSpend()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var reservation = (await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, ttl: TimeSpan.FromMinutes(1)), CancellationToken.None)).Reservation!;

        time.Advance(TimeSpan.FromMinutes(2));
        await sut.ReapExpiredAsync(CancellationToken.None);
        var result = await sut.SettleAsync(reservation, 3000, 1500, CancellationToken.None);
        var counters = await Snapshot(sut, time.GetUtcNow());

        Assert.False(result.WasOpen);
        Assert.Equal(3000, counters.SpentUsdMicros);
        Assert.Equal(0, counters.ReservedUsdMicros);
    }

    [SkippableFact]
    public async Task Settle_AfterPeriodRollover_ChargesThePeriodThatReserved()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 5, 23, 59, 50, TimeSpan.Zero));
        var sut = CreateSut(time);
        var before = time.GetUtcNow();
        var reservation = (await sut.TryReserveAsync(Request(before, usdMicros: CostPerRequest), CancellationToken.None)).Reservation!;

        time.Advance(TimeSpan.FromSeconds(20)); // now 2026-11-06 00:00:10
        var newDay = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None);
        await sut.SettleAsync(reservation, 4500, 1900, CancellationToken.None);
        var oldCounters = await Snapshot(sut, before);
        var newCounters = await Snapshot(sut, time.GetUtcNow());

        Assert.Equal("day:2026-11-05", reservation.TeamWindow.Key);
        Assert.NotNull(newDay.Reservation); // the new day has its own full budget
        Assert.Equal(4500, oldCounters.SpentUsdMicros);
        Assert.Equal(0, oldCounters.ReservedUsdMicros);
        Assert.Equal(0, newCounters.SpentUsdMicros);
        Assert.Equal(CostPerRequest, newCounters.ReservedUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_RemainderBelowRequestAboveMinimum_GrantsAffordableOutput()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        // 3000 µ$ left: 1000 for input, 2000 buys 500 output tokens at 4 µ$ each.
        var result = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 3000, minOutput: 256), CancellationToken.None);

        Assert.Equal(500, result.Reservation!.OutputTokens);
        Assert.Equal(3000, result.Reservation.UsdMicros);
        Assert.Equal(0, result.RemainingUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_RemainderBelowMinimum_DeniesUntilReset()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        var result = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 1000 + (255 * 4), minOutput: 256), CancellationToken.None);

        Assert.Equal(DenialReason.Budget, result.Denial!.Reason);
        Assert.Equal(TimeSpan.FromHours(12), result.Denial.RetryAfter); // 12:00 → midnight UTC
    }

    [SkippableFact]
    public async Task TryReserve_TokenBudget_LimitsInputPlusOutput()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        var first = await sut.TryReserveAsync(Request(time.GetUtcNow(), tokens: 3500), CancellationToken.None);
        var second = await sut.TryReserveAsync(Request(time.GetUtcNow(), tokens: 3500, minOutput: 1), CancellationToken.None);
        var third = await sut.TryReserveAsync(Request(time.GetUtcNow(), tokens: 3500, minOutput: 1), CancellationToken.None);

        Assert.Equal(1000, first.Reservation!.OutputTokens);
        Assert.Equal(1500, first.RemainingTokens);
        Assert.Equal(500, second.Reservation!.OutputTokens);
        Assert.Equal(0, second.RemainingTokens);
        Assert.Equal(DenialReason.Budget, third.Denial!.Reason);
    }

    [SkippableFact]
    public async Task TryReserve_SoftBudget_AdmitsOverLimitButTracksSpend()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        var results = new List<ReserveResult>();
        for (var i = 0; i < 3; i++)
        {
            results.Add(await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest, hard: false), CancellationToken.None));
        }

        Assert.All(results, r => Assert.NotNull(r.Reservation));
        Assert.Equal(3 * CostPerRequest, (await Snapshot(sut, time.GetUtcNow())).ReservedUsdMicros);
        Assert.Equal(0, results[^1].RemainingUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_RequestsPerMinute_RefillsOverTheMinute()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var rate = new RateLimits(3, null);

        var admitted = 0;
        for (var i = 0; i < 3; i++)
        {
            admitted += (await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None)).Reservation is null ? 0 : 1;
        }

        var fourth = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(20)); // 3/min → one permit per 20 s
        var fifth = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);
        var sixth = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);

        Assert.Equal(3, admitted);
        Assert.Equal(DenialReason.RequestsPerMinute, fourth.Denial!.Reason);
        Assert.Equal(TimeSpan.FromSeconds(20), fourth.Denial.RetryAfter);
        Assert.Equal(new RateStatus(3, 0, TimeSpan.FromSeconds(60)), fourth.Requests);
        Assert.NotNull(fifth.Reservation);
        Assert.Equal(DenialReason.RequestsPerMinute, sixth.Denial!.Reason);
    }

    [SkippableFact]
    public async Task TryReserve_TokensPerMinute_WeightedAndCorrectedAtSettle()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var rate = new RateLimits(null, 5000);

        var first = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);   // estimate 2000
        var second = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);  // estimate 2000
        var third = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);   // 1000 left
        await sut.SettleAsync(first.Reservation!, 1000, 1100, CancellationToken.None);                             // used 1100: 900 back
        var fourth = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: rate), CancellationToken.None);  // 1900 left

        Assert.NotNull(first.Reservation);
        Assert.Equal(1000, second.Tokens!.Value.Remaining);
        Assert.Equal(DenialReason.TokensPerMinute, third.Denial!.Reason);
        Assert.Equal(TimeSpan.FromSeconds(12), third.Denial.RetryAfter); // 1000 missing at 5000/min
        Assert.Equal(DenialReason.TokensPerMinute, fourth.Denial!.Reason);
        Assert.Equal(1900, fourth.Tokens!.Value.Remaining);
    }

    [SkippableFact]
    public async Task TryReserve_RequestLargerThanTpmLimit_DeniedAsNeverFitting()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        var result = await sut.TryReserveAsync(Request(time.GetUtcNow(), teamRate: new RateLimits(null, 1500)), CancellationToken.None);

        Assert.Equal(DenialReason.TokensPerMinuteExceedsLimit, result.Denial!.Reason);
        Assert.Contains("lower max_tokens", result.Denial.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TryReserve_RejectedByOneLimit_ConsumesNoOtherQuota()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var teamRate = new RateLimits(100, 100_000);
        var keyRate = new RateLimits(1, null);

        // The key's RPM refuses the second request: the team's RPM/TPM and the budget must be untouched by it.
        var first = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: teamRate, keyId: "k1", keyRate: keyRate), CancellationToken.None);
        var second = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: teamRate, keyId: "k1", keyRate: keyRate), CancellationToken.None);

        // The budget refuses the third (too expensive): no rate quota taken either.
        var third = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: teamRate, keyId: "k2", output: 100_000), CancellationToken.None);
        var probe = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: teamRate, keyId: "k3"), CancellationToken.None);

        Assert.NotNull(first.Reservation);
        Assert.Equal(DenialReason.RequestsPerMinute, second.Denial!.Reason);
        Assert.Equal("key", second.Denial.Scope);
        Assert.Equal(DenialReason.Budget, third.Denial!.Reason);
        Assert.Equal(98, probe.Requests!.Value.Remaining);          // only first and probe took a request permit
        Assert.Equal(100, probe.Requests.Value.Limit);
        Assert.Equal(100_000 - 4000, probe.Tokens!.Value.Remaining);
        Assert.Equal(2 * CostPerRequest, (await Snapshot(sut, time.GetUtcNow())).ReservedUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_RateDenied_DoesNotReserveBudget()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var rate = new RateLimits(1, null);

        await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: rate), CancellationToken.None);
        var denied = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, teamRate: rate), CancellationToken.None);

        Assert.Equal(DenialReason.RequestsPerMinute, denied.Denial!.Reason);
        Assert.Equal(CostPerRequest, (await Snapshot(sut, time.GetUtcNow())).ReservedUsdMicros);
        Assert.Equal(9 * CostPerRequest, denied.RemainingUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_KeyBudget_EnforcedSeparatelyFromTeam()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var keyBudget = new BudgetLimits(BudgetPeriod.Day, CostPerRequest, null, null, true);

        var k1First = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, keyId: "k1", keyBudget: keyBudget), CancellationToken.None);
        var k1Second = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, keyId: "k1", keyBudget: keyBudget), CancellationToken.None);
        var k2First = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest, keyId: "k2", keyBudget: keyBudget), CancellationToken.None);

        Assert.NotNull(k1First.Reservation);
        Assert.Equal("key", k1Second.Denial!.Scope);
        Assert.NotNull(k2First.Reservation);
        Assert.Equal(2 * CostPerRequest, (await Snapshot(sut, time.GetUtcNow())).ReservedUsdMicros);
        Assert.Equal(CostPerRequest, (await Snapshot(sut, time.GetUtcNow(), keyId: "k1")).ReservedUsdMicros);
    }

    [SkippableFact]
    public async Task TryReserve_OnlyInFlightReservationsBlock_ShortRetryAfter()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);

        await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None);
        var denied = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None);

        Assert.Equal(TimeSpan.FromSeconds(1), denied.Denial!.RetryAfter);
        Assert.Contains("In-flight", denied.Denial.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task SeedSpent_TakesTheLargerValue()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var window = BudgetPeriods.Current(BudgetPeriod.Day, time.GetUtcNow());

        await sut.SeedSpentAsync("t1", null, window, 7000, 900, CancellationToken.None);
        await sut.SeedSpentAsync("t1", null, window, 5000, 1200, CancellationToken.None);
        var counters = await Snapshot(sut, time.GetUtcNow());
        var denied = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 7000 + CostPerRequest - 1), CancellationToken.None);

        Assert.Equal(7000, counters.SpentUsdMicros);
        Assert.Equal(1200, counters.SpentTokens);
        Assert.Equal(DenialReason.Budget, denied.Denial!.Reason);
    }

    [SkippableFact]
    public async Task ReapExpired_ReservationPastItsTtl_ReleasesTheHold()
    {
        var time = new FakeTimeProvider(_start);
        var sut = CreateSut(time);
        var orphan = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest, ttl: TimeSpan.FromMinutes(1)), CancellationToken.None);

        time.Advance(TimeSpan.FromMinutes(2));
        await sut.ReapExpiredAsync(CancellationToken.None);
        var counters = await Snapshot(sut, time.GetUtcNow());
        var again = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None);

        Assert.NotNull(orphan.Reservation);
        Assert.Equal(0, counters.ReservedUsdMicros);
        Assert.Equal(0, counters.OpenReservations);
        Assert.NotNull(again.Reservation);
    }
}
