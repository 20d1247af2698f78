using TokenGateway.Core.Errors;

namespace TokenGateway.Core.Budgets;

/// <summary>Response header names set by admission.</summary>
public static class AdmissionHeaders
{
    /// <summary>Requests-per-minute limit.</summary>
    public const string LimitRequests = "x-ratelimit-limit-requests";
    /// <summary>Requests left in the current minute.</summary>
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    /// <summary>Time until the request bucket is full again (e.g. <c>1s</c>, <c>6m0s</c>).</summary>
    public const string ResetRequests = "x-ratelimit-reset-requests";
    /// <summary>Tokens-per-minute limit.</summary>
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    /// <summary>Tokens left in the current minute.</summary>
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    /// <summary>Time until the token bucket is full again.</summary>
    public const string ResetTokens = "x-ratelimit-reset-tokens";
    /// <summary>USD left in the budget window after this request's reservation.</summary>
    public const string BudgetRemainingUsd = "x-tokengateway-budget-remaining-usd";
    /// <summary>Tokens left in the token-budget window after this request's reservation.</summary>
    public const string BudgetRemainingTokens = "x-tokengateway-budget-remaining-tokens";
    /// <summary>The lowered <c>max_tokens</c>, present only when the gateway lowered it (budget or policy cap).</summary>
    public const string MaxTokensLowered = "x-tokengateway-max-tokens-lowered";
    /// <summary>Seconds to wait before retrying (on rejections).</summary>
    public const string RetryAfter = "retry-after";
}

/// <summary>The outcome of admission: admitted with a lease, or rejected with an error and <c>Retry-After</c>.</summary>
public sealed record AdmissionDecision
{
    /// <summary>The reservation handle when admitted; settle or release it (disposing releases).</summary>
    public AdmissionLease? Lease { get; init; }

    /// <summary>True when the request may be forwarded.</summary>
    public bool IsAdmitted => Lease is not null;

    /// <summary>The <c>max_tokens</c> the request runs with (after default, cap and budget lowering); null for embeddings.</summary>
    public int? EffectiveMaxTokens { get; init; }

    /// <summary>When set, the host must write this value as the request's <c>max_tokens</c> before forwarding.</summary>
    public int? MaxTokensToSend { get; init; }

    /// <summary>True when the budget (not only the policy cap) forced a lower <c>max_tokens</c>.</summary>
    public bool MaxTokensLowered { get; init; }

    /// <summary>The error when rejected.</summary>
    public GatewayError? Error { get; init; }

    /// <summary>What was wrong and what to do (never includes prompts or keys).</summary>
    public string? Message { get; init; }

    /// <summary>When to retry, for 429 rejections.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Which limit refused the request, for logs and metrics.</summary>
    public DenialReason? DenialReason { get; init; }

    /// <summary>Response headers to add (rate-limit state, budget remaining, lowering, <c>retry-after</c> on rejection).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];
}
