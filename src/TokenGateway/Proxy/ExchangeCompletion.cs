using Serilog;
using TokenGateway.Core.Metering;

namespace TokenGateway.Proxy;

/// <summary>
/// The single place where a request ends: prices its usage, settles its reservation, records exactly one ledger
/// event (authenticated requests only: anonymous garbage must not be able to fill the ledger) and enriches the
/// request-completion log event.
/// </summary>
internal sealed class ExchangeCompletion(IUsageLedger ledger, CostCalculator costs, IDiagnosticContext diagnostics)
{
    /// <summary>Prices the exchange's usage once and caches it on the exchange; null when there is no usage.</summary>
    public decimal? ComputeCost(LlmExchange exchange)
    {
        if (exchange.CostUsd is { } known)
        {
            return known;
        }

        if (exchange.Usage is not { } usage || exchange.Model is null)
        {
            return null;
        }

        exchange.CostUsd = costs.TryCalculate(exchange.Model, usage, out var cost) ? cost : 0m;
        return exchange.CostUsd;
    }

    public async Task CompleteAsync(HttpContext context, LlmExchange exchange)
    {
        var status = exchange.Status ?? (context.RequestAborted.IsCancellationRequested ? UsageStatus.ClientAborted : UsageStatus.Ok);
        var cost = ComputeCost(exchange) ?? 0m;
        var usage = exchange.Usage ?? default;

        diagnostics.Set("RequestId", exchange.RequestId);
        diagnostics.Set("TeamId", exchange.TeamId);
        diagnostics.Set("Model", exchange.Model?.Name);
        diagnostics.Set("Provider", exchange.Provider?.Id);
        diagnostics.Set("UsageStatus", status);
        diagnostics.Set("InputTokensReceived", exchange.InputTokensReceived);
        diagnostics.Set("InputTokensSent", exchange.InputTokensSent);
        diagnostics.Set("OutputTokens", usage.OutputTokens);
        diagnostics.Set("CostUsd", cost);

        if (exchange.Lease is { } lease)
        {
            // Settle to what was actually spent (aborted and failed streams included: their delivered tokens cost
            // money); release when nothing was billed. Either happens once; the lease ignores repeats.
            // Repair calls (structured output) are part of what this request spent.
            if (exchange.Usage is { } billed && (billed.InputTokens > 0 || billed.OutputTokens > 0))
            {
                await lease.SettleAsync(cost + exchange.RepairCostUsd, billed + exchange.RepairUsage, CancellationToken.None);
            }
            else
            {
                await lease.ReleaseAsync(CancellationToken.None);
            }
        }

        if (exchange.TeamId is null)
        {
            return;
        }

        var stages = exchange.Stages;
        var saved = 0;
        foreach (var s in stages)
        {
            saved += s.TokensSaved;
        }

        ledger.Record(new UsageEvent
        {
            RequestId = exchange.RequestId,
            Timestamp = exchange.StartedAt,
            TeamId = exchange.TeamId,
            KeyId = exchange.KeyId,
            Route = exchange.Route,
            Provider = exchange.Provider?.Id,
            Model = exchange.Model?.Name ?? exchange.Request?.Model,
            Stream = exchange.Request?.Stream ?? false,
            Status = status,
            HttpStatus = context.Response.StatusCode,
            ErrorCode = exchange.ErrorCode,
            InputTokensReceived = exchange.InputTokensReceived,
            InputTokensSent = exchange.InputTokensSent,
            Usage = usage,
            CostUsd = cost,
            TokensSaved = saved,
            Stages = stages,
            Estimated = exchange.Estimated,
            LatencyMs = exchange.ElapsedMs,
            TtftMs = exchange.TtftMs,
        });
    }
}
