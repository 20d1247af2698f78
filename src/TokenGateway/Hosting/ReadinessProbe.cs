using TokenGateway.Core.Metering;
using TokenGateway.Core.Teams;

namespace TokenGateway.Hosting;

/// <summary>
/// Ready when the ledger has committed what an earlier run left in its journal (budgets can be seeded without
/// undercounting) and the team store answers (keys can be checked) — liveness stays up regardless.
/// </summary>
internal sealed class ReadinessProbe(ITeamStore store, ILedgerRecovery? recovery = null)
{
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        if (recovery is { IsRecovered: false })
        {
            return false;
        }

        try
        {
            await store.GetSettingAsync("readiness_probe", cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return false;
        }
    }
}
