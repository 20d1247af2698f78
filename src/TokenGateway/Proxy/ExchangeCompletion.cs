using System.Diagnostics;
using Serilog;
using Serilog.Events;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// The single place where a request ends: prices its usage, settles its reservation, records exactly one ledger
/// event (authenticated requests only: anonymous garbage must not be able to fill the ledger) and enriches the
/// request-completion log event.
/// </summary>
internal sealed class ExchangeCompletion(
    IUsageLedger ledger, CostCalculator costs, IDiagnosticContext diagnostics, GatewayMetrics metrics, IBudgetCounterStore budgets)
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

        var saved = 0;
        foreach (var s in exchange.Stages)
        {
            saved += s.TokensSaved;
        }

        var elapsedMs = exchange.ElapsedMs;
        if (CompletionEventWritten(context, status))
        {
            EnrichCompletionEvent(exchange, status, usage, cost, saved, elapsedMs);
        }

        RecordTelemetry(exchange, status, cost, saved, elapsedMs);

        if (exchange.Lease is { } lease)
        {
            // Settle to what was actually spent (aborted and failed streams included: their delivered tokens cost
            // money); release when nothing was billed. Either happens once; the lease ignores repeats.
            // Repair calls (structured output) are part of what this request spent.
            if (exchange.Usage is { } billed && (billed.InputTokens > 0 || billed.OutputTokens > 0))
            {
                await lease.SettleAsync(cost + exchange.RepairCostUsd, billed + exchange.RepairUsage, CancellationToken.None);
                await RecordBudgetUtilizationAsync(exchange, lease);
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
            LatencyMs = elapsedMs,
            TtftMs = exchange.TtftMs,
        });
    }

    /// <summary>
    /// Whether Serilog's request-completion event will be written: Information for normal requests, Error for
    /// server errors (its default levels). Its properties cost about 2 KB per request; none are built for nobody.
    /// </summary>
    private static bool CompletionEventWritten(HttpContext context, string status) =>
        Log.Logger.IsEnabled(LogEventLevel.Information)
        || ((context.Response.StatusCode > 499 || status != UsageStatus.Ok) && Log.Logger.IsEnabled(LogEventLevel.Error));

    private void EnrichCompletionEvent(LlmExchange exchange, string status, TokenUsage usage, decimal cost, int saved, double elapsedMs)
    {
        diagnostics.Set("RequestId", exchange.RequestId);
        diagnostics.Set("TeamId", exchange.TeamId);
        diagnostics.Set("Model", exchange.Model?.Name);
        diagnostics.Set("Provider", exchange.Provider?.Id);
        diagnostics.Set("UsageStatus", status);
        diagnostics.Set("InputTokensReceived", exchange.InputTokensReceived);
        diagnostics.Set("InputTokensSent", exchange.InputTokensSent);
        diagnostics.Set("OutputTokens", usage.OutputTokens);
        diagnostics.Set("CostUsd", cost);
        diagnostics.Set("TokensSaved", saved);
        diagnostics.Set("ErrorCode", exchange.ErrorCode);
        diagnostics.Set("DurationMs", Math.Round(elapsedMs, 1));
    }

    private void RecordTelemetry(LlmExchange exchange, string status, decimal cost, int saved, double elapsedMs)
    {
        var model = exchange.Model?.Name; // catalogue names only: the raw requested model is client input (unbounded)
        var provider = GatewayMetrics.ProviderName(exchange.Provider);
        metrics.RecordCompletion(new CompletedRequest(exchange.TeamId, model, provider, status, exchange.ErrorCode,
            exchange.Request?.Stream ?? false, exchange.Usage, cost, exchange.Stages, elapsedMs, exchange.TtftMs));

        if (Activity.Current is not { OperationName: GatewayActivities.RequestSpan } span || !span.IsAllDataRequested)
        {
            return;
        }

        span.DisplayName = model is null ? "tokengateway " + exchange.Route : exchange.Route + " " + model;
        span.SetTag("tokengateway.request_id", exchange.RequestId);
        span.SetTag("tokengateway.team", exchange.TeamId);
        span.SetTag("tokengateway.key_id", exchange.KeyId);
        span.SetTag("gen_ai.request.model", model);
        span.SetTag("gen_ai.provider.name", provider);
        span.SetTag("tokengateway.status", status);
        span.SetTag("tokengateway.input_tokens.received", exchange.InputTokensReceived);
        span.SetTag("tokengateway.input_tokens.sent", exchange.InputTokensSent);
        span.SetTag("tokengateway.tokens_saved", saved);
        span.SetTag("tokengateway.cost_usd", (double)cost);
        if (exchange.Usage is { } usage)
        {
            span.SetTag("gen_ai.usage.input_tokens", usage.InputTokens);
            span.SetTag("gen_ai.usage.output_tokens", usage.OutputTokens);
        }

        if (exchange.ErrorCode is { } error)
        {
            span.SetTag("error.type", error);
            span.SetStatus(ActivityStatusCode.Error);
        }
    }

    private async ValueTask RecordBudgetUtilizationAsync(LlmExchange exchange, AdmissionLease lease)
    {
        if (exchange.Policy?.TeamBudget is not { } limits || (limits.UsdMicros is not > 0 && limits.Tokens is not > 0))
        {
            return;
        }

        var reservation = lease.Reservation;
        var counters = await budgets.GetSnapshotAsync(reservation.TeamId, null, reservation.TeamWindow.Key, CancellationToken.None);
        var ratio = 0d;
        if (limits.UsdMicros is { } usd && usd > 0)
        {
            ratio = (double)counters.SpentUsdMicros / usd;
        }

        if (limits.Tokens is { } tokens && tokens > 0)
        {
            ratio = Math.Max(ratio, (double)counters.SpentTokens / tokens);
        }

        metrics.SetBudgetUtilization(reservation.TeamId, ratio);
    }
}
