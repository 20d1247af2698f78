using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;
using TokenGateway.Hosting;
using TokenGateway.Proxy;

namespace TokenGateway.StructuredOutput;

/// <summary>The outcome of one repair call: the provider's response body (null on failure) and its usage.</summary>
internal sealed record RepairAttempt(JsonObject? Response, TokenUsage Usage, decimal CostUsd);

/// <summary>
/// Sends repair calls straight to the request's provider (same destination set, credential and header style as the
/// proxy), meters each one, records it as its own ledger event linked to the original request
/// (<c>ParentRequestId</c>, <c>Attempt = "repair"</c>) and adds its usage and cost to the exchange so the team is billed.
/// </summary>
internal sealed partial class StructuredOutputRepairClient(
    IHttpClientFactory httpClients, IRequestTokenCounter counter, ITokenizerRegistry tokenizers, CostCalculator costs, IUsageLedger ledger,
    TimeProvider time, IOptionsMonitor<GatewayOptions> options, ILogger<StructuredOutputRepairClient> logger)
{
    public const string HttpClientName = "tokengateway-structured-output-repair";

    private static readonly HashSet<string> _notForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Length", "Content-Type", "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade",
        "Proxy-Connection", "Expect", "x-tokengateway-request-id",
    };

    public async Task<RepairAttempt> SendAsync(HttpContext http, LlmExchange exchange, JsonObject body, int attempt)
    {
        var provider = exchange.Provider!;
        var card = exchange.Model!;
        var repairId = $"{exchange.RequestId}_repair{attempt.ToString(CultureInfo.InvariantCulture)}";
        var startedAt = time.GetUtcNow();
        var start = Stopwatch.GetTimestamp();
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, LlmRequestParser.WriteOptions);
        var preflight = LlmRequestParser.TryParse(exchange.Dialect, bytes, out var parsed, out _) ? counter.CountInputTokens(parsed!, card) : exchange.InputTokensSent;

        var destination = provider.Destinations[Random.Shared.Next(provider.Destinations.Count)].TrimEnd('/');
        using var message = new HttpRequestMessage(HttpMethod.Post, destination + http.Request.Path.Value) { Content = new ByteArrayContent(bytes) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, values) in http.Request.Headers)
        {
            if (!_notForwarded.Contains(name) && !ProviderRequestTransform.IsStripped(name) && !name.StartsWith(':'))
            {
                message.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        message.Headers.TryAddWithoutValidation("Accept-Encoding", "identity");
        message.Headers.TryAddWithoutValidation("x-tokengateway-request-id", repairId);
        if (ProviderRequestTransform.ApplyProviderHeaders(message.Headers, provider, exchange) is { } azure)
        {
            message.RequestUri = new Uri($"{destination}{azure.Path}?api-version={Uri.EscapeDataString(azure.ApiVersion)}");
        }

        var status = 0;
        JsonObject? response = null;
        byte[] responseBytes = [];
        string? errorCode = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        timeout.CancelAfter(options.CurrentValue.UpstreamTimeout);
        try
        {
            using var client = httpClients.CreateClient(HttpClientName);
            using var upstream = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = (int)upstream.StatusCode;
            responseBytes = await ReadBoundedAsync(upstream.Content, options.CurrentValue.MaxResponseBodyBytes, timeout.Token);
            if (status < 400)
            {
                response = JsonNode.Parse(responseBytes) as JsonObject;
            }
            else
            {
                errorCode = "upstream_" + status.ToString(CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException or JsonException or InvalidDataException)
        {
            LogRepairFailed(logger, exchange.RequestId, attempt, ex.GetType().Name);
            errorCode = ex is OperationCanceledException && !http.RequestAborted.IsCancellationRequested ? "upstream_timeout" : "upstream_unavailable";
            response = null;
        }

        // A failed call generated nothing and is billed nothing (as the proxy does for upstream errors).
        var metered = response is null ? default : UsageEstimator.ForBody(exchange.Dialect, responseBytes, preflight, tokenizers, card.Tokenizer);
        var cost = response is not null && costs.TryCalculate(card, metered.Usage, out var c) ? c : 0m;
        exchange.Outcome.AddRepair(metered.Usage, cost);

        if (exchange.TeamId is not null)
        {
            ledger.Record(new UsageEvent
            {
                RequestId = repairId,
                Timestamp = startedAt,
                TeamId = exchange.TeamId,
                KeyId = exchange.KeyId,
                Route = exchange.Route,
                Provider = provider.Id,
                Model = card.Name,
                Stream = false,
                Status = response is null ? UsageStatus.UpstreamError : UsageStatus.Ok,
                HttpStatus = status,
                ErrorCode = errorCode,
                InputTokensReceived = preflight,
                InputTokensSent = preflight,
                Usage = metered.Usage,
                CostUsd = cost,
                Estimated = metered.Estimated,
                LatencyMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds,
                ParentRequestId = exchange.RequestId,
                Attempt = "repair",
            });
        }

        return new RepairAttempt(response, metered.Usage, cost);
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpContent content, long cap, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > cap)
            {
                throw new InvalidDataException("The repair response exceeds the response size cap.");
            }
        }

        return buffer.ToArray();
    }

    [LoggerMessage(2501, LogLevel.Warning, "Structured-output repair call {Attempt} for request {RequestId} failed: {Reason}")]
    private static partial void LogRepairFailed(ILogger logger, string requestId, int attempt, string reason);
}
