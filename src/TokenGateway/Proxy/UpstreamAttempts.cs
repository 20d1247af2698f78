using System.Globalization;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Proxy;

/// <summary>
/// The attempts of one proxied request (issue #13): the planner that decides them, the attempt in flight and how it
/// ended. Created by <see cref="ResilienceMiddleware"/>; the response handler reports each upstream answer through
/// <see cref="OnResponse"/> before any byte is copied, and learns whether to pass it on or to let the middleware retry.
/// </summary>
/// <remarks>One instance per request; the middleware and the handler run one after the other, never concurrently.</remarks>
internal sealed class UpstreamAttempts(AttemptPlanner planner, Func<TimeSpan> remainingDeadline)
{
    /// <summary>Attempts made so far (the one in flight included).</summary>
    public int Count { get; private set; }

    /// <summary>The attempt in flight.</summary>
    public PlannedAttempt Current { get; private set; }

    /// <summary>The provider of the attempt in flight (differs from the request's own on a fallback to another provider).</summary>
    public Providers.ResolvedProvider? Provider { get; set; }

    /// <summary>How the attempt in flight ended, once known (set by the handler or the middleware).</summary>
    public AttemptResult? Result { get; private set; }

    /// <summary>The decision taken on <see cref="Result"/>, once reported.</summary>
    public PlanDecision? Decision { get; private set; }

    /// <summary>The gateway's default connect timeout (<c>Resilience:Timeouts:Connect</c>), set by the middleware.</summary>
    public TimeSpan DefaultConnectTimeout { get; init; }

    /// <summary>The attempt's connect timeout when it differs from the gateway default (a model's or team's override).</summary>
    public TimeSpan? ConnectTimeoutOverride => Settings.ConnectTimeout is var t && t != DefaultConnectTimeout ? t : null;

    /// <summary>The response-headers timer of the attempt in flight, when it has its own (see <see cref="ResilienceMiddleware"/>).</summary>
    public AttemptHeadersTimer? HeadersTimer { get; set; }

    /// <summary>The planner's first decision (an attempt, or fail fast when nothing is usable).</summary>
    public PlanDecision Start() => planner.Start();

    /// <summary>Marks <paramref name="attempt"/> as in flight.</summary>
    public void Begin(in PlannedAttempt attempt)
    {
        Current = attempt;
        Count++;
        HeadersTimer = null;
        Result = null;
        Decision = null;
    }

    /// <summary>
    /// Reports how the attempt in flight ended (once) and returns the next decision. An attempt that would start after
    /// <c>Gateway:RequestDeadline</c> becomes a give-up, so the caller gets the provider's answer instead.
    /// </summary>
    public PlanDecision Report(in AttemptResult result)
    {
        if (Decision is { } known)
        {
            return known;
        }

        Result = result;
        var decision = planner.Next(result);
        if (decision.Step == PlanStep.Attempt && decision.Attempt.Delay >= remainingDeadline())
        {
            decision = new PlanDecision(PlanStep.GiveUp, Detail: "deadline");
        }

        Decision = decision;
        return decision;
    }

    /// <summary>
    /// Reports that the attempt in flight, whose headers were already reported as a success, failed in its body: after
    /// bytes reached the client, a continuation attempt or <see cref="PlanStep.AbortStream"/>; before (a buffered
    /// body), a retry like any transient failure, or a give-up.
    /// </summary>
    public PlanDecision ReportCut(in AttemptResult result)
    {
        Result = result;
        var decision = planner.NextAfterBodyFailure(result);
        if (decision.Step == PlanStep.Attempt && decision.Attempt.Delay >= remainingDeadline())
        {
            decision = new PlanDecision(result.ClientReceivedBytes ? PlanStep.AbortStream : PlanStep.GiveUp, Detail: "deadline");
        }

        Decision = decision;
        return decision;
    }

    /// <summary>Drops a planned continuation the invoker will not make (the budget refused it): the stream is aborted.</summary>
    public void AbortPlanned(string detail)
    {
        planner.Release();
        Decision = new PlanDecision(PlanStep.AbortStream, Detail: detail);
    }

    /// <summary>The settings of the model being tried (per-attempt timeouts, continuation).</summary>
    public ResilienceSettings Settings => planner.CurrentSettings;

    /// <summary>
    /// The handler's report of an upstream answer (status and headers, before any byte reached the client): true when
    /// another attempt follows, so the answer must not be passed on.
    /// </summary>
    public bool OnResponse(HttpResponseMessage upstream, DateTimeOffset now)
    {
        HeadersTimer?.Disarm();
        HeadersTimer = null;
        var status = (int)upstream.StatusCode;
        TimeSpan? retryAfter = RetryAfterParser.TryParse(Header(upstream, "retry-after-ms"), Header(upstream, "Retry-After"), now, out var hint)
            ? hint
            : null;
        var rateLimits = RateLimitSnapshot.Parse(upstream, static (u, name) => Header(u, name), now);
        return Report(AttemptResult.Status(status, retryAfter, rateLimits)).Step == PlanStep.Attempt;
    }

    /// <summary>Frees the key slot of an attempt whose end was never reported (the request failed otherwise).</summary>
    public void ReleaseUnreported()
    {
        if (Count > 0 && Decision is null)
        {
            planner.Release();
        }
    }

    /// <summary>The ledger code of how an attempt ended: <c>upstream_503</c>, <c>connect_failure</c>, …</summary>
    public static string ErrorCodeOf(in AttemptResult result) => result.Kind == AttemptOutcomeKind.Response
        ? "upstream_" + result.StatusCode.ToString(CultureInfo.InvariantCulture)
        : result.Kind switch
        {
            AttemptOutcomeKind.ConnectFailure => "connect_failure",
            AttemptOutcomeKind.ResetBeforeResponse => "reset_before_response",
            AttemptOutcomeKind.ResponseHeadersTimeout => "upstream_timeout",
            AttemptOutcomeKind.BodyReset => "body_reset",
            AttemptOutcomeKind.BodyIdleTimeout => "upstream_idle_timeout",
            AttemptOutcomeKind.ClientAborted => "client_aborted",
            _ => "upstream_failed",
        };

    /// <summary>The ledger's <c>attempt</c> value for an attempt made for <paramref name="reason"/>.</summary>
    public static string LedgerKind(AttemptReason reason) => reason switch
    {
        AttemptReason.Initial => "initial",
        AttemptReason.KeyRotation => "key_rotation",
        AttemptReason.Fallback => "fallback",
        AttemptReason.Continuation => "continuation",
        _ => "retry",
    };

    private static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values))
        {
            foreach (var v in values)
            {
                return v;
            }
        }

        return null;
    }
}
