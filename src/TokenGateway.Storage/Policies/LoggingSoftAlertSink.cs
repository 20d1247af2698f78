using Microsoft.Extensions.Logging;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Storage.Policies;

/// <summary>
/// Default <see cref="ISoftAlertSink"/>: logs one warning per alert. The host replaces it with a sink that also emits
/// the metric and POSTs the webhook.
/// </summary>
internal sealed partial class LoggingSoftAlertSink(ILogger<LoggingSoftAlertSink> logger) : ISoftAlertSink
{
    public void Publish(SoftBudgetAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        LogSoftLimitReached(logger, alert.TeamId, alert.KeyId, alert.Metric, alert.ThresholdPercent, alert.Spent, alert.Limit, alert.Period, alert.ResetsAt);
    }

    [LoggerMessage(2001, LogLevel.Warning, "Budget soft limit reached for team {TeamId} (key {KeyId}): {Metric} spend {Spent} of {Limit} crossed {ThresholdPercent}% this {Period}; resets at {ResetsAt}")]
    private static partial void LogSoftLimitReached(ILogger logger, string teamId, string? keyId, string metric, int thresholdPercent, decimal spent, decimal limit, string period, DateTimeOffset resetsAt);
}
