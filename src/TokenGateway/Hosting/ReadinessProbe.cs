using TokenGateway.Core.Health;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Teams;

namespace TokenGateway.Hosting;

/// <summary>What <c>/readyz</c> answers: ready or not, and each dependency's state (<c>store</c>, <c>redis</c>, …).</summary>
internal sealed record ReadinessReport(bool Ready, IReadOnlyDictionary<string, string> Dependencies);

/// <summary>
/// Ready when the ledger has committed what an earlier run left in its journal (budgets can be seeded without
/// undercounting) and the team store answers (keys can be checked) — liveness stays up regardless. Every registered
/// <see cref="IDependencyCheck"/> (Redis) is reported too, and decides readiness only when it says so.
/// </summary>
internal sealed class ReadinessProbe(ITeamStore store, ILedgerRecovery? recovery = null, IEnumerable<IDependencyCheck>? checks = null)
{
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken) => (await CheckAsync(cancellationToken)).Ready;

    public async Task<ReadinessReport> CheckAsync(CancellationToken cancellationToken)
    {
        var dependencies = new Dictionary<string, string>(StringComparer.Ordinal);
        var ready = true;
        if (recovery is { IsRecovered: false })
        {
            dependencies["ledger"] = "recovering";
            ready = false;
        }

        try
        {
            await store.GetSettingAsync("readiness_probe", cancellationToken);
            dependencies["store"] = "ok";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            dependencies["store"] = "unavailable";
            ready = false;
        }

        foreach (var check in checks ?? [])
        {
            var health = await check.CheckAsync(cancellationToken);
            dependencies[check.Name] = health.Status;
            ready &= health.Ready;
        }

        return new ReadinessReport(ready, dependencies);
    }
}
