namespace TokenGateway.Core.Resilience;

/// <summary>How one upstream attempt ended, as the invoker observed it.</summary>
public enum AttemptOutcomeKind
{
    /// <summary>The provider answered with a status code (success or error); see <see cref="AttemptResult.StatusCode"/>.</summary>
    Response,
    /// <summary>No connection could be opened (refused, DNS, TLS, connect timeout).</summary>
    ConnectFailure,
    /// <summary>The connection was reset or closed before the response headers arrived.</summary>
    ResetBeforeResponse,
    /// <summary>The response headers did not arrive within the response-headers timeout.</summary>
    ResponseHeadersTimeout,
    /// <summary>The response body was cut (reset or closed) after the headers.</summary>
    BodyReset,
    /// <summary>The response body went silent for longer than the idle timeout.</summary>
    BodyIdleTimeout,
    /// <summary>The client went away; nothing more is attempted.</summary>
    ClientAborted,
}

/// <summary>
/// The invoker's report of one attempt: what happened, whether any byte already reached the client, and what the
/// provider said about retrying and its rate limits.
/// </summary>
/// <param name="Kind">How the attempt ended.</param>
/// <param name="StatusCode">The provider's status when <paramref name="Kind"/> is <see cref="AttemptOutcomeKind.Response"/> (else 0).</param>
/// <param name="ClientReceivedBytes">True once any response byte was written to the client (no retry is invisible then).</param>
/// <param name="RetryAfter">The provider's <c>retry-after-ms</c>/<c>Retry-After</c>, parsed (see <see cref="RetryAfterParser"/>).</param>
/// <param name="RateLimits">The provider's rate-limit headers for the key used, if sent.</param>
/// <param name="ToolCallInFlight">True when a cut stream was in the middle of a tool call (never continued).</param>
public readonly record struct AttemptResult(
    AttemptOutcomeKind Kind,
    int StatusCode = 0,
    bool ClientReceivedBytes = false,
    TimeSpan? RetryAfter = null,
    RateLimitSnapshot RateLimits = default,
    bool ToolCallInFlight = false)
{
    /// <summary>A provider answer with <paramref name="status"/>.</summary>
    public static AttemptResult Status(int status, TimeSpan? retryAfter = null, RateLimitSnapshot rateLimits = default) =>
        new(AttemptOutcomeKind.Response, status, RetryAfter: retryAfter, RateLimits: rateLimits);

    /// <summary>True for a 1xx-3xx provider answer (2xx in practice).</summary>
    public bool IsSuccess => Kind == AttemptOutcomeKind.Response && StatusCode is >= 200 and < 400;
}

/// <summary>What the planner may do after a failed attempt.</summary>
public enum FailureClass
{
    /// <summary>Not a failure.</summary>
    Success,
    /// <summary>Transient: another attempt (same or next candidate) may succeed.</summary>
    Transient,
    /// <summary>The key's rate limit (429): move off the key until its reset, try another key.</summary>
    RateLimited,
    /// <summary>Failed after bytes reached the client: only a stream continuation can help.</summary>
    AfterFirstByte,
    /// <summary>Final: the provider's answer goes to the client as it is (4xx, auth errors, client gone).</summary>
    Final,
}

/// <summary>Which attempt outcomes are retryable; pure.</summary>
public static class RetryClassifier
{
    /// <summary>Anthropic's "overloaded" status.</summary>
    public const int AnthropicOverloaded = 529;

    /// <summary>Classifies an attempt result.</summary>
    /// <remarks>
    /// Retryable: connect failures, resets and response-headers timeouts before the first response byte, 408, 429,
    /// 500, 502, 503, 504 and 529 — and only while no byte has reached the client. A header timeout is treated like a
    /// 504 (the gateway's own): nothing was received, so nothing of that answer can be billed to the caller.
    /// </remarks>
    public static FailureClass Classify(in AttemptResult result)
    {
        if (result.IsSuccess)
        {
            return FailureClass.Success;
        }

        if (result.Kind == AttemptOutcomeKind.ClientAborted)
        {
            return FailureClass.Final;
        }

        if (result.ClientReceivedBytes)
        {
            return FailureClass.AfterFirstByte;
        }

        return result.Kind switch
        {
            AttemptOutcomeKind.ConnectFailure or AttemptOutcomeKind.ResetBeforeResponse or AttemptOutcomeKind.ResponseHeadersTimeout => FailureClass.Transient,
            // A buffered body cut or stalled before anything was written to the client is replayable.
            AttemptOutcomeKind.BodyReset or AttemptOutcomeKind.BodyIdleTimeout => FailureClass.Transient,
            AttemptOutcomeKind.Response => ClassifyStatus(result.StatusCode),
            _ => FailureClass.Final,
        };
    }

    /// <summary>Classifies a provider status code sent before any byte reached the client.</summary>
    public static FailureClass ClassifyStatus(int status) => status switch
    {
        >= 200 and < 400 => FailureClass.Success,
        429 => FailureClass.RateLimited,
        408 or 500 or 502 or 503 or 504 or AnthropicOverloaded => FailureClass.Transient,
        _ => FailureClass.Final,
    };

    /// <summary>True when the outcome counts as a failure of the destination or key for the circuit breaker.</summary>
    /// <remarks>429 does not (the key's cooldown handles it), nor do client errors or a client that went away.</remarks>
    public static bool IsBreakerFailure(in AttemptResult result) => result.Kind switch
    {
        AttemptOutcomeKind.Response => result.StatusCode is 500 or 502 or 503 or 504 or AnthropicOverloaded,
        AttemptOutcomeKind.ClientAborted => false,
        _ => true,
    };
}
