using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class BudgetSpentLoaderTests
{
    private static readonly DateTimeOffset _now = new(2026, 11, 5, 12, 0, 0, TimeSpan.Zero);

    /// <summary>A ledger whose totals grow when the journal replay commits (as after a crash).</summary>
    private sealed class ReplayingLedger : IUsageQueryService, ILedgerRecovery
    {
        private readonly TaskCompletionSource _replayed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public decimal CommittedUsd { get; private set; } = 1m;

        public bool IsRecovered => _replayed.Task.IsCompleted;

        public Task WaitForRecoveryAsync(CancellationToken cancellationToken) => _replayed.Task.WaitAsync(cancellationToken);

        public void CommitReplay(decimal replayedUsd)
        {
            CommittedUsd += replayedUsd;
            _replayed.TrySetResult();
        }

        public Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken) =>
            Task.FromResult(new UsageReport(new UsageTotals { CostUsd = CommittedUsd }, []));

        public Task<UsageEvent?> GetAsync(string requestId, CancellationToken cancellationToken) => Task.FromResult<UsageEvent?>(null);

        public async IAsyncEnumerable<UsageEvent> ListAsync(UsageQuery query, int limit, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }

        public Task<IReadOnlyList<TokenAnatomyRollup>> GetTokenAnatomyAsync(string? teamId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<TokenAnatomyRollup>>([]);
    }

    [Fact]
    public async Task EnsureSeededAsync_LedgerStillReplaying_WaitsAndSeedsTheFullTotal()
    {
        var time = new FakeTimeProvider(_now);
        using var store = new InMemoryBudgetCounterStore(time);
        var ledger = new ReplayingLedger();
        var sut = new BudgetSpentLoader(store, ledger, time, ledger);
        var window = BudgetPeriods.Current(BudgetPeriod.Month, _now);

        var seeding = sut.EnsureSeededAsync("t1", null, window, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(seeding.IsCompleted); // seeding now would miss the journal's spend for the life of the process

        ledger.CommitReplay(2.5m);
        await seeding.WaitAsync(TimeSpan.FromSeconds(10));

        var snapshot = await store.GetSnapshotAsync("t1", null, window.Key, CancellationToken.None);
        Assert.Equal(3.5m, UsdMicros.ToUsd(snapshot.SpentUsdMicros));
    }

    [Fact]
    public async Task EnsureSeededAsync_CallerGivesUpWhileReplaying_Cancelled()
    {
        var time = new FakeTimeProvider(_now);
        using var store = new InMemoryBudgetCounterStore(time);
        var ledger = new ReplayingLedger();
        var sut = new BudgetSpentLoader(store, ledger, time, ledger);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            sut.EnsureSeededAsync("t1", null, BudgetPeriods.Current(BudgetPeriod.Month, _now), cts.Token).AsTask());
    }
}
