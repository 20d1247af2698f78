namespace TokenGateway.Core.Metering;

/// <summary>Final status of a metered request.</summary>
public static class UsageStatus
{
    /// <summary>Completed normally (any upstream 2xx).</summary>
    public const string Ok = "ok";
    /// <summary>Upstream answered with an error status, failed to connect, timed out or broke mid-stream.</summary>
    public const string UpstreamError = "upstream_error";
    /// <summary>The client went away before the response completed.</summary>
    public const string ClientAborted = "client_aborted";
    /// <summary>The gateway refused the request (auth, validation, budget, rate) before forwarding.</summary>
    public const string Rejected = "rejected";
    /// <summary>The answer failed schema validation after all repairs.</summary>
    public const string SchemaInvalid = "schema_invalid";
    /// <summary>Served from the team's response cache: nothing forwarded, cost 0 (docs/caching.md).</summary>
    public const string CacheHit = "cache_hit";
}

/// <summary>Tokens one optimization stage saved on one request.</summary>
public sealed record StageSaving(string Name, int TokensSaved);

/// <summary>
/// One request's usage as recorded in the ledger: exactly one per request (repair attempts are their own events
/// linked by <see cref="ParentRequestId"/>). Written once; idempotent on <see cref="RequestId"/>.
/// </summary>
public sealed record UsageEvent
{
    /// <summary>Server-generated id, also returned in <c>x-tokengateway-request-id</c>.</summary>
    public required string RequestId { get; init; }
    /// <summary>When the request arrived (UTC).</summary>
    public required DateTimeOffset Timestamp { get; init; }
    /// <summary>Owning team, or null when the request was rejected before authentication.</summary>
    public string? TeamId { get; init; }
    /// <summary>Virtual key id (never the key).</summary>
    public string? KeyId { get; init; }
    /// <summary>Route path, e.g. <c>/v1/chat/completions</c>.</summary>
    public required string Route { get; init; }
    /// <summary>Provider (cluster) id.</summary>
    public string? Provider { get; init; }
    /// <summary>Canonical model name.</summary>
    public string? Model { get; init; }
    /// <summary>True for SSE responses.</summary>
    public bool Stream { get; init; }
    /// <summary>One of <see cref="UsageStatus"/>.</summary>
    public required string Status { get; init; }
    /// <summary>HTTP status returned to the client.</summary>
    public int HttpStatus { get; init; }
    /// <summary>Stable gateway error code when the gateway produced the error.</summary>
    public string? ErrorCode { get; init; }
    /// <summary>Prompt tokens as the client sent them (pre-flight count).</summary>
    public int InputTokensReceived { get; init; }
    /// <summary>Prompt tokens as forwarded (pre-flight count after optimization).</summary>
    public int InputTokensSent { get; init; }
    /// <summary>Billed usage (provider's figures, or estimated).</summary>
    public TokenUsage Usage { get; init; }
    /// <summary>
    /// Input tokens as sent, by part of the prompt (sums to <see cref="InputTokensSent"/>); null when unknown, e.g.
    /// the request was rejected before its body was parsed.
    /// </summary>
    public TokenAnatomy? Anatomy { get; init; }
    /// <summary>Cost in USD computed from the model card prices.</summary>
    public decimal CostUsd { get; init; }
    /// <summary>Sum of <see cref="Stages"/> savings.</summary>
    public int TokensSaved { get; init; }
    /// <summary>Savings per optimization stage.</summary>
    public IReadOnlyList<StageSaving> Stages { get; init; } = [];
    /// <summary>True when usage was counted by the gateway because the provider gave none.</summary>
    public bool Estimated { get; init; }
    /// <summary>Total latency in milliseconds.</summary>
    public double LatencyMs { get; init; }
    /// <summary>Time to first byte/event of the response body in milliseconds, when known.</summary>
    public double? TtftMs { get; init; }
    /// <summary>For repair attempts: the request they belong to.</summary>
    public string? ParentRequestId { get; init; }
    /// <summary>Free-form attempt kind (<c>repair</c>) or null for the original call.</summary>
    public string? Attempt { get; init; }
}
