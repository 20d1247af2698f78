using TokenGateway.Core.Teams;

namespace TokenGateway.Hosting;

/// <summary>Ready when the team store answers (keys can be checked) — liveness stays up regardless.</summary>
internal sealed class ReadinessProbe(ITeamStore store)
{
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
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
