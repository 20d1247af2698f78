using TokenGateway.Core.Metering;
using TokenGateway.Proxy.Upstream;

namespace TokenGateway.Proxy;

/// <summary>
/// Builds every <see cref="UsageEvent"/> the gateway records: the one event per request (from its feature and outcome)
/// and one per extra upstream attempt (repairs now; retries and fallbacks next), linked to the request by
/// <see cref="UsageEvent.ParentRequestId"/>. One place decides which fields an event carries.
/// </summary>
internal static class UsageEventFactory
{
    /// <summary>The request's own event, written by <see cref="ExchangeCompletion"/>.</summary>
    public static UsageEvent ForRequest(LlmExchange exchange, in ExchangeOutcome outcome, string status, int httpStatus, decimal cost, int saved, double elapsedMs) => new()
    {
        RequestId = exchange.RequestId,
        Timestamp = exchange.StartedAt,
        TeamId = exchange.TeamId,
        KeyId = exchange.KeyId,
        Route = exchange.Route,
        Provider = exchange.UpstreamProvider?.Id,
        Model = exchange.ServedModel?.Name ?? exchange.Request?.Model, // the model that answered (a fallback's after a fallback)
        Stream = exchange.Request?.Stream ?? false,
        Status = status,
        HttpStatus = httpStatus,
        ErrorCode = outcome.ErrorCode,
        InputTokensReceived = exchange.InputTokensReceived,
        InputTokensSent = exchange.InputTokensSent,
        Anatomy = exchange.InputAnatomy,
        Usage = outcome.Usage ?? default,
        CostUsd = cost,
        TokensSaved = saved,
        Stages = exchange.Stages,
        Estimated = outcome.Estimated,
        LatencyMs = elapsedMs,
        TtftMs = outcome.TtftMs,
    };

    /// <summary>
    /// The event of one extra attempt made for <paramref name="exchange"/>: never streamed, billed to the same team and
    /// key, its prompt counted before sending (<paramref name="inputTokens"/>).
    /// </summary>
    public static UsageEvent ForAttempt(
        LlmExchange exchange, UpstreamAttempt attempt, DateTimeOffset startedAt, UpstreamResponse response, int inputTokens,
        TokenAnatomy? anatomy, TokenUsage usage, bool estimated, decimal cost) => new()
    {
        RequestId = attempt.RequestId,
        Timestamp = startedAt,
        TeamId = exchange.TeamId,
        KeyId = exchange.KeyId,
        Route = exchange.Route,
        Provider = exchange.Provider?.Id,
        Model = exchange.Model?.Name,
        Stream = false,
        Status = response.IsSuccess ? UsageStatus.Ok : UsageStatus.UpstreamError,
        HttpStatus = response.Status,
        ErrorCode = response.ErrorCode,
        InputTokensReceived = inputTokens,
        InputTokensSent = inputTokens,
        Anatomy = anatomy,
        Usage = usage,
        CostUsd = cost,
        Estimated = estimated,
        LatencyMs = response.LatencyMs,
        ParentRequestId = exchange.RequestId,
        Attempt = attempt.LedgerKind,
    };

    /// <summary>
    /// The event of an attempt that failed and was retried (issue #13): its own id (<c>{request}_attempt{n}</c>),
    /// linked by <see cref="UsageEvent.ParentRequestId"/>, <c>attempt</c> = why it was made, the error code = how it
    /// ended. Cost 0: a failed answer is not billed (the request's own event carries the answer the client got).
    /// </summary>
    public static UsageEvent ForSupersededAttempt(
        LlmExchange exchange, in Core.Resilience.PlannedAttempt attempt, in Core.Resilience.AttemptResult result, DateTimeOffset startedAt, double latencyMs) => new()
    {
        RequestId = exchange.RequestId + "_attempt" + attempt.Number.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Timestamp = startedAt,
        TeamId = exchange.TeamId,
        KeyId = exchange.KeyId,
        Route = exchange.Route,
        Provider = exchange.UpstreamProvider?.Id,
        Model = attempt.Model.Name,
        Stream = exchange.Request?.Stream ?? false,
        Status = UsageStatus.UpstreamError,
        HttpStatus = result.StatusCode,
        ErrorCode = UpstreamAttempts.ErrorCodeOf(result),
        InputTokensReceived = exchange.InputTokensReceived,
        InputTokensSent = exchange.InputTokensSent,
        Anatomy = exchange.InputAnatomy,
        Usage = default,
        CostUsd = 0m,
        LatencyMs = latencyMs,
        ParentRequestId = exchange.RequestId,
        Attempt = UpstreamAttempts.LedgerKind(attempt.Reason),
    };
    /// <summary>
    /// The event of a streamed attempt cut after its first byte and continued on another attempt (issue #13): billed for
    /// what it delivered (<paramref name="usage"/>, estimated when the provider sent none), linked by
    /// <see cref="UsageEvent.ParentRequestId"/>; the request's own event is the attempt that finished the answer.
    /// </summary>
    public static UsageEvent ForContinuedAttempt(
        LlmExchange exchange, in Core.Resilience.PlannedAttempt attempt, DateTimeOffset startedAt, TokenUsage usage, bool estimated, decimal cost, string errorCode) => new()
    {
        RequestId = exchange.RequestId + "_attempt" + attempt.Number.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Timestamp = startedAt,
        TeamId = exchange.TeamId,
        KeyId = exchange.KeyId,
        Route = exchange.Route,
        Provider = exchange.UpstreamProvider?.Id,
        Model = attempt.Model.Name,
        Stream = true,
        Status = UsageStatus.UpstreamError,
        HttpStatus = 200,
        ErrorCode = errorCode,
        InputTokensReceived = exchange.InputTokensReceived,
        InputTokensSent = exchange.InputTokensSent,
        Anatomy = exchange.InputAnatomy,
        Usage = usage,
        CostUsd = cost,
        Estimated = estimated,
        LatencyMs = exchange.ElapsedMs,
        ParentRequestId = exchange.RequestId,
        Attempt = UpstreamAttempts.LedgerKind(attempt.Reason),
    };
}
