using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;
using TokenGateway.Proxy;
using TokenGateway.Proxy.Upstream;

namespace TokenGateway.StructuredOutput;

/// <summary>
/// The outcome of one repair call: the provider's response body (null on failure or refusal), its usage and cost, and
/// the admission error when the team's budget or rate limit refused the call before it was sent.
/// </summary>
internal sealed record RepairAttempt(JsonObject? Response, TokenUsage Usage, decimal CostUsd, GatewayError? Refused = null);

/// <summary>
/// Sends repair calls through the <see cref="UpstreamInvoker"/> (the request's provider cluster, its destinations,
/// client, header rules and credential, like the proxy). Each call is admitted against the team's budget and rate
/// limits before it is sent — its own reservation, settled to its own cost (a hard budget refuses a repair it cannot
/// afford) — then metered, recorded as its own ledger event linked to the original request (<c>ParentRequestId</c>,
/// <c>Attempt = "repair"</c>) and added to the request's outcome.
/// </summary>
internal sealed partial class StructuredOutputRepairClient(
    UpstreamInvoker invoker, AdmissionController admission, IRequestTokenCounter counter, ITokenizerRegistry tokenizers, CostCalculator costs,
    IUsageLedger ledger, TimeProvider time, ILogger<StructuredOutputRepairClient> logger)
{
    public async Task<RepairAttempt> SendAsync(HttpContext http, LlmExchange exchange, JsonObject body, int number)
    {
        var card = exchange.Model!;
        var attempt = UpstreamAttempt.Repair(exchange.RequestId, number);
        var startedAt = time.GetUtcNow();
        ReadOnlyMemory<byte> bytes = JsonSerializer.SerializeToUtf8Bytes(body, LlmRequestParser.WriteOptions);
        LlmRequestParser.TryParse(exchange.Dialect, bytes, out var parsed, out _);
        var preflight = exchange.InputTokensSent;
        var anatomy = exchange.InputAnatomy;
        if (parsed is not null)
        {
            preflight = counter.CountInputTokens(parsed, card, out var counted);
            anatomy = counted;
        }


        AdmissionLease? lease = null;
        if (exchange.Policy is { } policy)
        {
            var decision = await admission.AdmitAsync(new AdmissionRequest
            {
                Policy = policy,
                Model = card,
                RequestedModel = card.Name,
                InputTokens = preflight,
                RequestedMaxTokens = parsed?.MaxTokens,
            }, http.RequestAborted);
            if (!decision.IsAdmitted)
            {
                LogRepairRefused(logger, number, exchange.RequestId, decision.Error ?? GatewayError.BudgetExceeded);
                return new RepairAttempt(null, default, 0m, decision.Error ?? GatewayError.BudgetExceeded);
            }

            lease = decision.Lease;
            if (decision.MaxTokensToSend is { } maxTokens && parsed is not null && parsed.MaxTokens != maxTokens)
            {
                parsed.SetMaxTokens(maxTokens); // what the budget can afford, as for the request itself
                bytes = parsed.GetBytesToSend();
            }
        }

        JsonObject? response = null;
        var metered = default(MeteredUsage);
        var cost = 0m;
        try
        {
            using var upstream = await invoker.SendAsync(http, exchange, bytes, attempt);
            if (upstream.IsSuccess)
            {
                try
                {
                    response = JsonNode.Parse(upstream.Body) as JsonObject;
                }
                catch (JsonException)
                {
                    response = null;
                }
            }

            // A failed call generated nothing and is billed nothing (as the proxy does for upstream errors).
            metered = response is null ? default : UsageEstimator.ForBody(exchange.Dialect, upstream.Body, preflight, tokenizers, card.Tokenizer);
            cost = response is not null && costs.TryCalculate(card, metered.Usage, out var c) ? c : 0m;
            exchange.Outcome.AddRepair(metered.Usage, cost);
            if (exchange.TeamId is not null)
            {
                ledger.Record(UsageEventFactory.ForAttempt(exchange, attempt, startedAt, upstream, preflight, anatomy, metered.Usage, metered.Estimated, cost));
            }
        }
        finally
        {
            if (lease is not null)
            {
                // The repair's reservation settles to the repair's own cost (or is released when nothing was billed).
                if (metered.Usage.InputTokens > 0 || metered.Usage.OutputTokens > 0)
                {
                    await lease.SettleAsync(cost, metered.Usage, CancellationToken.None);
                }
                else
                {
                    await lease.ReleaseAsync(CancellationToken.None);
                }
            }
        }

        return new RepairAttempt(response, metered.Usage, cost);
    }

    [LoggerMessage(2503, LogLevel.Warning, "Structured-output repair call {Attempt} for request {RequestId} refused by admission: {Error}")]
    private static partial void LogRepairRefused(ILogger logger, int attempt, string requestId, GatewayError error);
}
