namespace TokenGateway.Core.Errors;

/// <summary>The catalogue of errors the gateway itself produces (upstream errors pass through unchanged).</summary>
public enum GatewayError
{
    /// <summary>Missing, unknown, revoked or expired virtual key.</summary>
    InvalidApiKey,
    /// <summary>The key is valid but may not use this model or route.</summary>
    PermissionDenied,
    /// <summary>The requested model is not in the catalogue.</summary>
    ModelNotFound,
    /// <summary>Malformed JSON, wrong content type, missing or invalid field.</summary>
    InvalidRequest,
    /// <summary>The request body exceeds the configured cap.</summary>
    RequestTooLarge,
    /// <summary>The team's budget cannot cover the request.</summary>
    BudgetExceeded,
    /// <summary>A requests- or tokens-per-minute window is full.</summary>
    RateLimited,
    /// <summary>The upstream could not be reached.</summary>
    UpstreamUnavailable,
    /// <summary>The upstream did not answer in time.</summary>
    UpstreamTimeout,
    /// <summary>The model's answer does not satisfy the required JSON schema.</summary>
    SchemaValidationFailed,
    /// <summary>The model has no price and the policy refuses unpriced models.</summary>
    ModelNotPriced,
    /// <summary>The upstream rejected the gateway's provider credential.</summary>
    ProviderAuthFailed,
    /// <summary>The upstream answered an error the gateway cannot pass through as-is (not JSON, e.g. an HTML error page).</summary>
    UpstreamError,
    /// <summary>Unexpected failure inside the gateway.</summary>
    InternalError,
    /// <summary>Every destination and key of the provider is refused by its circuit breaker: fail fast (issue #13).</summary>
    NoHealthyUpstream,
    /// <summary>The shared budget counters (Redis) cannot be reached and the team's budget is hard: fail closed (issue #14).</summary>
    BudgetUnavailable,
}

/// <summary>How one <see cref="GatewayError"/> is rendered: HTTP status, stable code and each dialect's error type.</summary>
public readonly record struct GatewayErrorInfo(int Status, string Code, string OpenAIType, string AnthropicType);

/// <summary>Maps each <see cref="GatewayError"/> once to its status, code and dialect types.</summary>
public static class GatewayErrors
{
    /// <summary>Returns the rendering facts for <paramref name="error"/>.</summary>
    public static GatewayErrorInfo Describe(GatewayError error) => error switch
    {
        GatewayError.InvalidApiKey => new(401, "invalid_api_key", "invalid_request_error", "authentication_error"),
        GatewayError.PermissionDenied => new(403, "model_not_allowed", "invalid_request_error", "permission_error"),
        GatewayError.ModelNotFound => new(404, "model_not_found", "invalid_request_error", "not_found_error"),
        GatewayError.InvalidRequest => new(400, "invalid_request", "invalid_request_error", "invalid_request_error"),
        GatewayError.RequestTooLarge => new(413, "request_too_large", "invalid_request_error", "request_too_large"),
        GatewayError.BudgetExceeded => new(429, "budget_exceeded", "insufficient_quota", "rate_limit_error"),
        GatewayError.RateLimited => new(429, "rate_limited", "rate_limit_error", "rate_limit_error"),
        GatewayError.UpstreamUnavailable => new(502, "upstream_unavailable", "api_error", "api_error"),
        GatewayError.UpstreamTimeout => new(504, "upstream_timeout", "api_error", "timeout_error"),
        GatewayError.SchemaValidationFailed => new(502, "schema_validation_failed", "api_error", "api_error"),
        GatewayError.ModelNotPriced => new(403, "model_not_priced", "invalid_request_error", "permission_error"),
        GatewayError.ProviderAuthFailed => new(502, "upstream_auth_failed", "api_error", "api_error"),
        GatewayError.UpstreamError => new(502, "upstream_error", "api_error", "api_error"),
        GatewayError.NoHealthyUpstream => new(503, "upstream_unavailable", "api_error", "overloaded_error"),
        GatewayError.BudgetUnavailable => new(503, "budget_unavailable", "api_error", "overloaded_error"),
        _ => new(500, "internal_error", "api_error", "api_error"),
    };
}
