using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;
using TokenGateway.Proxy;
using TokenGateway.Proxy.Upstream;

namespace TokenGateway.StructuredOutput;

/// <summary>The outcome of one repair call: the provider's response body (null on failure) and its usage.</summary>
internal sealed record RepairAttempt(JsonObject? Response, TokenUsage Usage, decimal CostUsd);

/// <summary>
/// Sends repair calls through the <see cref="UpstreamInvoker"/> (the request's provider cluster, its destinations,
/// client, header rules and credential, like the proxy), meters each one, records it as its own ledger event linked to
/// the original request (<c>ParentRequestId</c>, <c>Attempt = "repair"</c>) and adds its usage and cost to the
/// request's outcome so the team is billed.
/// </summary>
internal sealed class StructuredOutputRepairClient(
    UpstreamInvoker invoker, IRequestTokenCounter counter, ITokenizerRegistry tokenizers, CostCalculator costs, IUsageLedger ledger,
    TimeProvider time)
{
    public async Task<RepairAttempt> SendAsync(HttpContext http, LlmExchange exchange, JsonObject body, int number)
    {
        var card = exchange.Model!;
        var attempt = UpstreamAttempt.Repair(exchange.RequestId, number);
        var startedAt = time.GetUtcNow();
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, LlmRequestParser.WriteOptions);
        var preflight = LlmRequestParser.TryParse(exchange.Dialect, bytes, out var parsed, out _) ? counter.CountInputTokens(parsed!, card) : exchange.InputTokensSent;

        using var upstream = await invoker.SendAsync(http, exchange, bytes, attempt);
        JsonObject? response = null;
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
        var metered = response is null ? default : UsageEstimator.ForBody(exchange.Dialect, upstream.Body, preflight, tokenizers, card.Tokenizer);
        var cost = response is not null && costs.TryCalculate(card, metered.Usage, out var c) ? c : 0m;
        exchange.Outcome.AddRepair(metered.Usage, cost);

        if (exchange.TeamId is not null)
        {
            ledger.Record(UsageEventFactory.ForAttempt(exchange, attempt, startedAt, upstream, preflight, metered.Usage, metered.Estimated, cost));
        }

        return new RepairAttempt(response, metered.Usage, cost);
    }
}
