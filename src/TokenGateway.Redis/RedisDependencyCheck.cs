using StackExchange.Redis;
using TokenGateway.Core.Health;
using TokenGateway.Redis.Budgets;

namespace TokenGateway.Redis;

/// <summary>
/// <c>/readyz</c>'s <c>redis</c> entry: <c>ok</c>, <c>not_configured</c>, or while Redis does not answer a ping,
/// <c>degraded</c> (DegradeToLocal) / <c>unavailable</c> (FailClosed). The replica stays ready either way unless
/// <see cref="RedisOptions.RequiredForReadiness"/> is set: teams without hard budgets can still be served.
/// </summary>
internal sealed class RedisDependencyCheck(RedisConnection connection, RedisBudgetOptions budgets) : IDependencyCheck
{
    public string Name => "redis";

    public async Task<DependencyHealth> CheckAsync(CancellationToken cancellationToken)
    {
        if (!connection.IsConfigured)
        {
            return new DependencyHealth(DependencyHealth.NotConfigured, true);
        }

        try
        {
            await connection.Multiplexer.GetDatabase().PingAsync().WaitAsync(connection.Options.OperationTimeout, cancellationToken).ConfigureAwait(false);
            return new DependencyHealth(DependencyHealth.Ok, true);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            var status = budgets.RedisUnavailable == RedisUnavailableMode.DegradeToLocal ? "degraded" : "unavailable";
            var detail = budgets.RedisUnavailable == RedisUnavailableMode.DegradeToLocal
                ? "budgets and rate limits run on this replica's local counters"
                : "teams with a hard budget are refused (budget_unavailable)";
            return new DependencyHealth(status, !connection.Options.RequiredForReadiness, detail);
        }
    }
}
