using TokenGateway.Core.Health;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Postgres;

namespace TokenGateway.Hosting;

/// <summary>The answer of <c>/readyz</c>: ready or not, a status word, and the state of each dependency.</summary>
internal sealed record ReadinessReport(bool Ready, string Status, IReadOnlyDictionary<string, string> Dependencies);

/// <summary>
/// Ready when the ledger has committed what an earlier run left in its journal (budgets can be seeded without
/// undercounting) and the team store answers (keys can be checked) — liveness stays up regardless. Every registered
/// <see cref="IDependencyCheck"/> (Redis) is reported too, and decides readiness only when it says so.
/// </summary>
/// <remarks>
/// With PostgreSQL the store is shared by every replica: when it does not answer, taking every replica out of the load
/// balancer would stop traffic that the caches can still serve (known keys and policies; events spool to each
/// replica's journal). So a PostgreSQL outage reports <c>degraded</c> with <c>postgres: unavailable</c> and stays
/// ready (200); an embedded SQLite store that fails is this replica's own fault and makes it not ready (503).
/// </remarks>
internal sealed class ReadinessProbe(
    ITeamStore store,
    StorageBackend? backend = null,
    ILedgerRecovery? recovery = null,
    IEnumerable<IDependencyCheck>? checks = null)
{
    /// <summary>How long the store check may take before the dependency counts as unavailable.</summary>
    internal static readonly TimeSpan StoreCheckTimeout = TimeSpan.FromSeconds(2);

    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken) => (await CheckAsync(cancellationToken)).Ready;

    public async Task<ReadinessReport> CheckAsync(CancellationToken cancellationToken)
    {
        var storeName = backend?.Name ?? "store";
        var recovering = recovery is { IsRecovered: false };
        var dependencies = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ledger"] = recovering ? "replaying" : "ok",
        };

        var storeUp = await StoreAnswersAsync(cancellationToken);
        dependencies[storeName] = storeUp ? "ok" : "unavailable";

        var ready = !recovering;
        var degraded = false;
        if (!storeUp)
        {
            // A shared PostgreSQL outage degrades every replica alike: stay in the load balancer (see remarks).
            if (backend is { IsPostgres: true })
            {
                degraded = true;
            }
            else
            {
                ready = false;
            }
        }

        foreach (var check in checks ?? [])
        {
            var health = await check.CheckAsync(cancellationToken);
            dependencies[check.Name] = health.Status;
            ready &= health.Ready;
            degraded |= health.IsDegraded;
        }

        var status = !ready ? "not_ready" : degraded ? "degraded" : "ready";
        return new ReadinessReport(ready, status, dependencies);
    }

    private async Task<bool> StoreAnswersAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StoreCheckTimeout);
        try
        {
            await store.GetSettingAsync("readiness_probe", timeout.Token);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
