using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Tests.Budgets;
using TokenGateway.Redis.Budgets;

namespace TokenGateway.Redis.Tests.Budgets;

/// <summary>The Redis store against a real Redis: the shared contract (fake clock passed to the scripts) plus its own cases.</summary>
public sealed class RedisBudgetCounterStoreTests : BudgetCounterStoreContractTests
{
    protected override IBudgetCounterStore CreateStore(FakeTimeProvider time) =>
        new RedisBudgetCounterStore(RedisTestServer.Connection, RedisTestServer.NewPrefix(), time, requireSeeded: false, TimeSpan.FromMinutes(20));

    [SkippableFact]
    public async Task TryReserve_WindowLostFromRedis_ReportsUnseededUntilSeededAgain()
    {
        var time = new FakeTimeProvider(_start);
        var prefix = RedisTestServer.NewPrefix();
        var sut = new RedisBudgetCounterStore(RedisTestServer.Connection, prefix, time, requireSeeded: true, TimeSpan.FromMinutes(20));
        var window = BudgetPeriods.Current(BudgetPeriod.Day, time.GetUtcNow());

        var before = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest), CancellationToken.None);
        await sut.SeedSpentAsync("t1", null, window, 9 * CostPerRequest, 0, CancellationToken.None);
        var seeded = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest), CancellationToken.None);
        await RedisTestServer.Connection.GetDatabase().KeyDeleteAsync(prefix + "{t1}:w:" + window.Key); // what a Redis restart does
        var lost = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: 10 * CostPerRequest), CancellationToken.None);

        Assert.True(before.Unseeded);
        Assert.Null(before.Reservation);
        Assert.NotNull(seeded.Reservation);
        Assert.True(lost.Unseeded);
    }

    [SkippableFact]
    public async Task TryReserve_ServerTime_ReservationExpiryFollowsRedisClock()
    {
        var prefix = RedisTestServer.NewPrefix();
        // No clock: the scripts read Redis TIME, so a replica's own clock does not matter.
        var sut = new RedisBudgetCounterStore(RedisTestServer.Connection, prefix, clock: null, requireSeeded: false, TimeSpan.FromMinutes(20));
        var serverNow = new DateTimeOffset(await RedisTestServer.Connection.GetServers()[0].TimeAsync(), TimeSpan.Zero);

        // The window comes from the replica (here five hours behind); expiry and buckets come from Redis.
        var result = await sut.TryReserveAsync(Request(serverNow.AddHours(-5), usdMicros: 10 * CostPerRequest, ttl: TimeSpan.FromMinutes(20)), CancellationToken.None);

        Assert.NotNull(result.Reservation);
        Assert.InRange(result.Reservation!.ExpiresAt, serverNow.AddMinutes(19), serverNow.AddMinutes(21));
    }
}
