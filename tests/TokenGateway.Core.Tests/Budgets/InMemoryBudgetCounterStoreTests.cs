using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

/// <summary>The in-process store: the shared contract plus its reaper timer.</summary>
public sealed class InMemoryBudgetCounterStoreTests : BudgetCounterStoreContractTests
{
    protected override IBudgetCounterStore CreateStore(FakeTimeProvider time) => new InMemoryBudgetCounterStore(time);

    [Fact]
    public async Task Reaper_ReservationNeverSettled_ExpiresAfterTtlOnTimer()
    {
        var time = new FakeTimeProvider(_start);
        using var sut = new InMemoryBudgetCounterStore(time, TimeSpan.FromSeconds(30));
        var request = Request(time.GetUtcNow(), usdMicros: CostPerRequest, ttl: TimeSpan.FromMinutes(20));
        var orphan = await sut.TryReserveAsync(request, CancellationToken.None);

        time.Advance(TimeSpan.FromMinutes(19));
        var stillHeld = await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(1.5)); // the reaper timer fires inside Advance
        var reapedByStore = await sut.ReapExpiredAsync(CancellationToken.None);
        var counters = await Snapshot(sut, time.GetUtcNow());

        Assert.NotNull(orphan.Reservation);
        Assert.Equal(DenialReason.Budget, stillHeld.Denial!.Reason);
        Assert.Equal(0, reapedByStore); // the timer already did it
        Assert.Equal(0, counters.ReservedUsdMicros);
        Assert.Equal(0, counters.OpenReservations);
        Assert.NotNull((await sut.TryReserveAsync(Request(time.GetUtcNow(), usdMicros: CostPerRequest), CancellationToken.None)).Reservation);
    }
}
