using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Redis.Budgets;

/// <summary>
/// Releases expired Redis reservations of teams that went quiet (active teams are reaped inside their own reserve and
/// snapshot scripts) every <see cref="AdmissionOptions.ReapInterval"/>. Every replica may run it: a reap is atomic.
/// </summary>
internal sealed partial class BudgetReaperService(IBudgetCounterStore store, AdmissionOptions options, TimeProvider time, ILogger<BudgetReaperService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.ReapInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var reaped = await store.ReapExpiredAsync(stoppingToken);
                if (reaped > 0)
                {
                    LogReaped(logger, reaped);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogReapFailed(logger, ex.Message);
            }
        }
    }

    [LoggerMessage(2053, LogLevel.Information, "Released {Count} expired budget reservations")]
    private static partial void LogReaped(ILogger logger, int count);

    [LoggerMessage(2054, LogLevel.Warning, "Reaping expired budget reservations failed: {Error}")]
    private static partial void LogReapFailed(ILogger logger, string error);
}
