using System.Diagnostics;
using Serilog;
using Serilog.Core;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// The single place where a request ends: prices its usage, settles its reservation, records exactly one ledger
/// event (authenticated requests only: anonymous garbage must not be able to fill the ledger) and enriches the
/// request-completion log event. The only reader of <see cref="LlmExchange.Outcome"/>.
/// </summary>
internal sealed class ExchangeCompletion
{
    /// <summary>The source context of Serilog's request-completion event (its middleware type is internal).</summary>
    private const string RequestLoggingSource = "Serilog.AspNetCore.RequestLoggingMiddleware";

    private readonly IUsageLedger _ledger;
    private readonly CostCalculator _costs;
    private readonly IDiagnosticContext _diagnostics;
    private readonly GatewayMetrics _metrics;
    private readonly IBudgetCounterStore _budgets;
    private readonly Serilog.ILogger _requestLog;
    private readonly AdaptiveOutputCaps _adaptiveCaps;
    private readonly RequestLogLevels _logLevels;
    private readonly Insights.InsightsSampler _insights;

    /// <param name="requestLog">
    /// The logger Serilog's request logging writes the completion event through (the host passes the same instance to
    /// <c>UseSerilogRequestLogging</c>), so the level check here sees the same minimum level and overrides.
    /// </param>
    public ExchangeCompletion(
        IUsageLedger ledger, CostCalculator costs, IDiagnosticContext diagnostics, GatewayMetrics metrics, IBudgetCounterStore budgets,
        Serilog.ILogger requestLog, AdaptiveOutputCaps adaptiveCaps, RequestLogLevels logLevels, Insights.InsightsSampler insights)
    {
        _logLevels = logLevels;
        _insights = insights;
        _adaptiveCaps = adaptiveCaps;
        _ledger = ledger;
        _costs = costs;
        _diagnostics = diagnostics;
        _metrics = metrics;
        _budgets = budgets;
        _requestLog = requestLog.ForContext(Constants.SourceContextPropertyName, RequestLoggingSource);
    }

    /// <summary>Prices the exchange's own usage once and caches it on the outcome; null when there is no usage.</summary>
    public decimal? ComputeCost(LlmExchange exchange)
    {
        ref var outcome = ref exchange.Outcome;
        if (outcome.CostUsd is { } known)
        {
            return known;
        }

        if (outcome.Usage is not { } usage || exchange.ServedModel is not { } served)
        {
            return null;
        }

        var cost = _costs.TryCalculate(served, usage, out var c) ? c : 0m; // priced as the model that answered
        outcome.CacheCost(cost);
        return cost;
    }

    /// <summary>
    /// What the request cost the team so far: its own call plus its repair calls (the one place they are added), or
    /// null before its usage is known. Sent as <c>x-tokengateway-cost-usd</c>.
    /// </summary>
    public decimal? TotalCost(LlmExchange exchange) => ComputeCost(exchange) is { } cost ? cost + exchange.Outcome.RepairCostUsd : null;

    public async Task CompleteAsync(HttpContext context, LlmExchange exchange)
    {
        var outcome = exchange.Outcome; // a copy: nothing may change it from here on
        var status = outcome.Status(context.RequestAborted.IsCancellationRequested);
        var cost = ComputeCost(exchange) ?? 0m;
        var usage = outcome.Usage ?? default;

        var saved = 0;
        foreach (var s in exchange.Stages)
        {
            saved += s.TokensSaved;
        }

        var elapsedMs = exchange.ElapsedMs;
        exchange.CompletedStatus = status;
        if (_requestLog.IsEnabled(_logLevels.For(context.Response.StatusCode, status)))
        {
            EnrichCompletionEvent(exchange, outcome, status, usage, cost, saved, elapsedMs);
        }

        RecordTelemetry(exchange, outcome, status, cost, saved, elapsedMs);

        // The usage event is journaled before the reservation is settled: a process killed between the two leaves
        // an event whose spend the shared counters lack until the window is seeded from the ledger again (counters
        // never exceed the ledger), instead of counters holding spend whose provider-billed event was lost.
        if (exchange.TeamId is not null)
        {
            ObserveOutputLength(exchange, status, outcome.Usage);
            var usageEvent = UsageEventFactory.ForRequest(exchange, outcome, status, context.Response.StatusCode, cost, saved, elapsedMs);
            _ledger.Record(usageEvent);
            _insights.Offer(context, exchange, usageEvent); // a random draw; a sampled request is evaluated later, off the request path
        }

        if (exchange.Lease is { } lease)
        {
            // Settle to what was actually spent (aborted and failed streams included: their delivered tokens cost
            // money); release when nothing was billed. Either happens once; the lease ignores repeats. Repair calls
            // (structured output) were admitted and settled on their own reservations.
            if (outcome.Usage is { } billed && (billed.InputTokens > 0 || billed.OutputTokens > 0))
            {
                await lease.SettleAsync(cost, billed, CancellationToken.None);
                await RecordBudgetUtilizationAsync(exchange, lease);
            }
            else
            {
                await lease.ReleaseAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Feeds the adaptive output cap (teams that enable it) with a complete answer's length per choice and the
    /// <c>max_tokens</c> it was sent with; an answer that used all of it was truncated.
    /// </summary>
    private void ObserveOutputLength(LlmExchange exchange, string status, TokenUsage? usage)
    {
        if (exchange.Policy?.AdaptiveMaxTokens is not { } settings || status != UsageStatus.Ok || usage is not { } billed ||
            exchange.Model is not { Kind: Core.Models.ModelKind.Chat } model || exchange.Request is not { } request)
        {
            return;
        }

        var choices = Math.Max(1, request.Choices);
        _adaptiveCaps.Observe(exchange.Policy.TeamId, model.Name, billed.OutputTokens / choices, request.MaxTokens, settings,
            exchange.Policy.MaxTokensCap ?? model.MaxOutputTokens);
    }

    private void EnrichCompletionEvent(LlmExchange exchange, in ExchangeOutcome outcome, string status, TokenUsage usage, decimal cost, int saved, double elapsedMs)
    {
        var diagnostics = _diagnostics;
        diagnostics.Set("RequestId", exchange.RequestId);
        diagnostics.Set("TeamId", exchange.TeamId);
        diagnostics.Set("Model", exchange.ServedModel?.Name);
        diagnostics.Set("Provider", exchange.UpstreamProvider?.Id);
        diagnostics.Set("UsageStatus", status);
        diagnostics.Set("InputTokensReceived", exchange.InputTokensReceived);
        diagnostics.Set("InputTokensSent", exchange.InputTokensSent);
        diagnostics.Set("OutputTokens", usage.OutputTokens);
        diagnostics.Set("CostUsd", cost);
        diagnostics.Set("TokensSaved", saved);
        diagnostics.Set("ErrorCode", outcome.ErrorCode);
        diagnostics.Set("DurationMs", Math.Round(elapsedMs, 1));
    }

    private void RecordTelemetry(LlmExchange exchange, in ExchangeOutcome outcome, string status, decimal cost, int saved, double elapsedMs)
    {
        var model = exchange.ServedModel?.Name; // catalogue names only: the raw requested model is client input (unbounded)
        var provider = GatewayMetrics.ProviderName(exchange.UpstreamProvider);
        _metrics.RecordCompletion(new CompletedRequest(exchange.TeamId, model, provider, status, outcome.ErrorCode,
            exchange.Request?.Stream ?? false, outcome.Usage, cost, exchange.Stages, elapsedMs, outcome.TtftMs));

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
        if (outcome.Usage is { } usage)
        {
            span.SetTag("gen_ai.usage.input_tokens", usage.InputTokens);
            span.SetTag("gen_ai.usage.output_tokens", usage.OutputTokens);
        }

        if (outcome.ErrorCode is { } error)
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
        var counters = await _budgets.GetSnapshotAsync(reservation.TeamId, null, reservation.TeamWindow.Key, CancellationToken.None);
        var ratio = 0d;
        if (limits.UsdMicros is { } usd && usd > 0)
        {
            ratio = (double)counters.SpentUsdMicros / usd;
        }

        if (limits.Tokens is { } tokens && tokens > 0)
        {
            ratio = Math.Max(ratio, (double)counters.SpentTokens / tokens);
        }

        _metrics.SetBudgetUtilization(reservation.TeamId, ratio);
    }
}
