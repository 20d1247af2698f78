using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Redis.Budgets;
using Xunit.Abstractions;

namespace TokenGateway.Redis.Tests.Budgets;

/// <summary>
/// A bounded reserve+settle load on the real Redis: the counters stay exact under concurrency, and the rate is written
/// to the test output (docs/scaling.md quotes it). Not a benchmark gate: nothing asserts a speed.
/// </summary>
public sealed class RedisBudgetThroughputTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task ReserveThenSettle_16Concurrent_CountersExactAndRateReported()
    {
        const int Workers = 16;
        const int PerWorker = 250;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var sut = new RedisBudgetCounterStore(RedisTestServer.Connection, RedisTestServer.NewPrefix(), clock: null, requireSeeded: false, TimeSpan.FromMinutes(20));
        var window = BudgetPeriods.Current(BudgetPeriod.Day, time.GetUtcNow());
        var request = new ReserveRequest
        {
            TeamId = "throughput",
            KeyId = "k1",
            TeamBudget = new BudgetLine(window, new BudgetLimits(BudgetPeriod.Day, 1_000_000_000, null, null, true)),
            TeamRate = new RateLimits(1_000_000, 1_000_000_000),
            InputTokens = 1000,
            InputCostMicros = 1000,
            MaxOutputTokens = 1000,
            MinOutputTokens = 1000,
            OutputMicrosPerMillion = UsdMicros.PricePerMillion(4m),
            Ttl = TimeSpan.FromMinutes(20),
        };

        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < PerWorker; i++)
            {
                var result = await sut.TryReserveAsync(request, CancellationToken.None);
                await sut.SettleAsync(result.Reservation!, 3000, 1500, CancellationToken.None);
            }
        })));
        watch.Stop();

        var counters = await sut.GetSnapshotAsync("throughput", null, window.Key, CancellationToken.None);
        var pairs = Workers * PerWorker;
        output.WriteLine($"{pairs} reserve+settle pairs in {watch.Elapsed.TotalSeconds:0.00} s: {pairs / watch.Elapsed.TotalSeconds:0} pairs/s ({2 * pairs / watch.Elapsed.TotalSeconds:0} scripts/s), {Workers} concurrent callers");
        Assert.Equal(pairs * 3000L, counters.SpentUsdMicros);
        Assert.Equal(pairs * 1500L, counters.SpentTokens);
        Assert.Equal(0, counters.ReservedUsdMicros);
        Assert.Equal(0, counters.OpenReservations);
    }
}
