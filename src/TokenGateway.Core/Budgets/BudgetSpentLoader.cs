using System.Collections.Concurrent;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// Initialises a window's spent counters from the ledger the first time this process uses the window (after a
/// restart, or at a rollover), so budgets survive restarts. One ledger query per team/key/window per process.
/// </summary>
/// <remarks>
/// After a crash the ledger's totals lack the events still in its journal; seeding then would undercount the window
/// for the life of the process (seeding happens once). So every seed first waits for <see cref="ILedgerRecovery"/>.
/// </remarks>
internal sealed class BudgetSpentLoader
{
    private readonly ConcurrentDictionary<string, Seeding> _seeded = new(StringComparer.Ordinal);
    private readonly IBudgetCounterStore _store;
    private readonly IUsageQueryService? _ledger;
    private readonly TimeProvider _time;
    private readonly ILedgerRecovery? _recovery;

    /// <summary>Creates the loader; with no ledger it does nothing; with <paramref name="recovery"/>, seeding waits for it.</summary>
    public BudgetSpentLoader(IBudgetCounterStore store, IUsageQueryService? ledger, TimeProvider time, ILedgerRecovery? recovery = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        _store = store;
        _ledger = ledger;
        _time = time;
        _recovery = recovery;
    }

    /// <summary>
    /// Makes sure the window has been seeded; concurrent callers share one query. A failed query is retried by the
    /// next caller and its exception propagates (admission fails closed rather than forgetting past spend).
    /// </summary>
    public ValueTask EnsureSeededAsync(string teamId, string? keyId, BudgetWindow window, CancellationToken cancellationToken)
    {
        if (_ledger is null)
        {
            return ValueTask.CompletedTask;
        }

        var id = string.Join('\n', teamId, keyId, window.Key);
        if (_seeded.TryGetValue(id, out var existing) && existing.Task.IsCompletedSuccessfully)
        {
            return ValueTask.CompletedTask;
        }

        return new ValueTask(EnsureSlowAsync(id, teamId, keyId, window, cancellationToken));
    }

    /// <summary>
    /// Seeds the window again even if this process already did (the store reported it lost the counters); the store
    /// keeps the larger of its value and the ledger's, so a replica reseeding late cannot lower another's count.
    /// </summary>
    public ValueTask ReseedAsync(string teamId, string? keyId, BudgetWindow window, CancellationToken cancellationToken)
    {
        if (_ledger is null)
        {
            return ValueTask.CompletedTask;
        }

        var id = string.Join('\n', teamId, keyId, window.Key);
        if (_seeded.TryGetValue(id, out var existing) && existing.Task.IsCompleted)
        {
            _seeded.TryRemove(new KeyValuePair<string, Seeding>(id, existing));
        }

        return new ValueTask(EnsureSlowAsync(id, teamId, keyId, window, cancellationToken));
    }

    private async Task EnsureSlowAsync(string id, string teamId, string? keyId, BudgetWindow window, CancellationToken cancellationToken)
    {
        var seeding = _seeded.GetOrAdd(id, static (_, state) => new Seeding(state.Self.SeedAsync(state.TeamId, state.KeyId, state.Window), state.Window.End), (Self: this, TeamId: teamId, KeyId: keyId, Window: window));
        try
        {
            // The shared query is not cancelled by one caller going away.
            await seeding.Task.WaitAsync(cancellationToken);
        }
        catch (Exception) when (seeding.Task.IsFaulted || seeding.Task.IsCanceled)
        {
            _seeded.TryRemove(new KeyValuePair<string, Seeding>(id, seeding));
            throw;
        }

        Prune();
    }

    private async Task SeedAsync(string teamId, string? keyId, BudgetWindow window)
    {
        if (_recovery is { IsRecovered: false } recovery)
        {
            // Callers stop waiting when their request goes away (EnsureSlowAsync); the shared wait carries on.
            await recovery.WaitForRecoveryAsync(CancellationToken.None);
        }

        var report = await _ledger!.QueryAsync(new UsageQuery { TeamId = teamId, KeyId = keyId, From = window.Start, To = window.End }, CancellationToken.None); // guarded by EnsureSeededAsync
        var totals = report.Totals;
        await _store.SeedSpentAsync(teamId, keyId, window, UsdMicros.FromUsd(totals.CostUsd), totals.InputTokens + totals.OutputTokens, CancellationToken.None);
    }

    private void Prune()
    {
        if (_seeded.Count < 4096)
        {
            return;
        }

        var now = _time.GetUtcNow();
        foreach (var (key, seeding) in _seeded)
        {
            if (seeding.WindowEnd < now && seeding.Task.IsCompleted)
            {
                _seeded.TryRemove(key, out _);
            }
        }
    }

    private sealed record Seeding(Task Task, DateTimeOffset WindowEnd);
}
