using System.Globalization;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Proxy;

/// <summary>
/// The attempts of one proxied request (issue #13): the planner that decides them, the attempt in flight and how it
/// ended. Created by <see cref="ResilienceMiddleware"/>; the response handler reports each upstream answer through
/// <see cref="OnResponse"/> before any byte is copied, and learns whether to pass it on or to let the middleware retry.
/// </summary>
/// <remarks>
/// <para>One instance per request; the middleware and the handler run one after the other, never concurrently.</para>
/// <para>The planner (with its fallback chain) is built only when needed: a first attempt that the load balancer's
/// destination and a usable key can take is made without it (<see cref="AttemptPlanner.TryFirstAttempt"/>), and a
/// success then costs no planner at all. The first report that needs a decision builds it through
/// <see cref="IAttemptPlannerFactory"/> and hands it the attempt already made (<see cref="AttemptPlanner.Adopt"/>).</para>
/// </remarks>
internal sealed class UpstreamAttempts
{
    private readonly IAttemptPlannerFactory _factory;
    private readonly ResilienceSettings _settings;
    private readonly KeySelector _keys;
    private readonly DateTimeOffset _startedAt;
    private readonly LlmExchange _exchange;
    private readonly Hosting.GatewayOptions _gateway;
    private AttemptPlanner? _planner;
    private PlanDecision _first;
    private bool _firstHeld;
    private int _guarded;

    /// <param name="factory">Builds the planner when a decision needs it.</param>
    /// <param name="settings">The primary model's effective settings.</param>
    /// <param name="keys">The primary provider's key selector.</param>
    /// <param name="startedAt">When the request's attempts start (the planner's deadline counts from it).</param>
    /// <param name="exchange">The request (its elapsed time bounds every attempt by <c>Gateway:RequestDeadline</c>).</param>
    /// <param name="gateway">The gateway options of the request.</param>
    public UpstreamAttempts(IAttemptPlannerFactory factory, ResilienceSettings settings, KeySelector keys, DateTimeOffset startedAt,
        LlmExchange exchange, Hosting.GatewayOptions gateway)
    {
        _factory = factory;
        _settings = settings;
        _keys = keys;
        _startedAt = startedAt;
        _exchange = exchange;
        _gateway = gateway;
    }

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

    /// <summary>The request's HTTP context (the planner factory reads its YARP feature).</summary>
    public HttpContext? Context { get; init; }

    /// <summary>The fallback models' providers and clusters, once the planner resolved the chain.</summary>
    public Dictionary<string, FallbackTarget>? FallbackClusters { get; set; }

    /// <summary>True once the planner was built (a retry, fallback, continuation or a first attempt it had to plan).</summary>
    public bool HasPlanner => _planner is not null;

    /// <summary>The gateway's default connect timeout (<c>Resilience:Timeouts:Connect</c>), set by the middleware.</summary>
    public TimeSpan DefaultConnectTimeout { get; init; }

    /// <summary>The attempt's connect timeout when it differs from the gateway default (a model's or team's override).</summary>
    public TimeSpan? ConnectTimeoutOverride => Settings.ConnectTimeout is var t && t != DefaultConnectTimeout ? t : null;

    /// <summary>The response-headers timer of the attempt in flight, when it has its own (see <see cref="ResilienceMiddleware"/>).</summary>
    public AttemptHeadersTimer? HeadersTimer { get; set; }

    /// <summary>
    /// The first decision: the load balancer's destination with a usable key when both are (no planner built), else the
    /// planner's (an attempt anywhere in the chain, or fail fast when nothing is usable).
    /// </summary>
    public PlanDecision Start(ModelCard model, string? pickedDestination)
    {
        if (pickedDestination is not null && AttemptPlanner.TryFirstAttempt(model, pickedDestination, _keys, _factory.Breakers, out var first))
        {
            _first = new PlanDecision(PlanStep.Attempt, first);
            _firstHeld = true;
            return _first;
        }

        return Planner.Start();
    }

    private AttemptPlanner Planner
    {
        get
        {
            if (_planner is null)
            {
                _planner = _factory.CreatePlanner(_exchange, this);
                if (_first.Step == PlanStep.Attempt && Count > 0)
                {
                    _planner.Adopt(_first.Attempt, _startedAt, _firstHeld);
                    _firstHeld = false;
                }
            }

            return _planner;
        }
    }

    /// <summary>
    /// Marks <paramref name="attempt"/> as in flight. <paramref name="guarded"/>: the attempt runs inside its breakers'
    /// execution (<see cref="ResilienceMiddleware"/>), which records its outcome when it returns.
    /// </summary>
    public void Begin(in PlannedAttempt attempt, bool guarded = false)
    {
        Current = attempt;
        Count++;
        HeadersTimer = null;
        Result = null;
        Decision = null;
        if (guarded)
        {
            _guarded = Count;
            GuardedOutcome = null;
        }
    }

    /// <summary>
    /// The final outcome of the attempt run through the breakers by the middleware when it failed after its headers (a
    /// cut or idle body), else null (its <see cref="Result"/> is its outcome). Later attempts of the same request (stream
    /// continuations) never change it: each attempt is counted once, on its own destination's and key's breakers.
    /// </summary>
    public AttemptResult? GuardedOutcome { get; private set; }

    /// <summary>True while the attempt in flight is the one the middleware runs through its breakers.</summary>
    public bool CurrentIsGuarded => Count > 0 && Count == _guarded;

    /// <summary>
    /// Records a failure learnt after the attempt's headers were reported (a cut, an idle body). True when the attempt
    /// in flight is the guarded one: its breakers record the failure, once, when the middleware's execution returns
    /// (instead of the success its headers looked like). False for a continuation attempt: the caller reports it.
    /// </summary>
    public bool DeferBreakerFailure(in AttemptResult result)
    {
        if (!CurrentIsGuarded)
        {
            return false;
        }

        GuardedOutcome = result;
        return true;
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
        PlanDecision decision;
        if (_planner is null && _firstHeld && result.IsSuccess)
        {
            // The cheap first attempt succeeded: free its key slot with the provider's rate-limit headers; no planner.
            _keys.Release(Current.KeyIndex, result.RateLimits, rateLimited: false, result.RetryAfter);
            _firstHeld = false;
            decision = new PlanDecision(PlanStep.Succeeded);
        }
        else
        {
            decision = Planner.Next(result);
        }

        if (decision.Step == PlanStep.Attempt && decision.Attempt.Delay >= RemainingDeadline())
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
        var decision = Planner.NextAfterBodyFailure(result);
        if (decision.Step == PlanStep.Attempt && decision.Attempt.Delay >= RemainingDeadline())
        {
            decision = new PlanDecision(result.ClientReceivedBytes ? PlanStep.AbortStream : PlanStep.GiveUp, Detail: "deadline");
        }

        Decision = decision;
        return decision;
    }

    /// <summary>Drops a planned continuation the invoker will not make (the budget refused it): the stream is aborted.</summary>
    public void AbortPlanned(string detail)
    {
        Planner.Release();
        Decision = new PlanDecision(PlanStep.AbortStream, Detail: detail);
    }

    /// <summary>The settings of the model being tried (per-attempt timeouts, continuation).</summary>
    public ResilienceSettings Settings => _planner?.CurrentSettings ?? _settings;

    private TimeSpan RemainingDeadline() => _gateway.RemainingFor(_exchange.ElapsedMs);

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
            if (_planner is not null)
            {
                _planner.Release();
            }
            else if (_firstHeld)
            {
                _keys.Release(Current.KeyIndex, default);
                _firstHeld = false;
            }
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

    /// <summary>
    /// One response header's first value, read without validation: no parsed-value store, string array or enumerator per
    /// lookup (every answer is read for ten of them, most absent).
    /// </summary>
    private static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.NonValidated.TryGetValues(name, out var values) || response.Content.Headers.NonValidated.TryGetValues(name, out values))
        {
            foreach (var v in values)
            {
                return v;
            }
        }

        return null;
    }
}

/// <summary>
/// Where a fallback model's attempts go: its provider and cluster, the dialect it is called in and, when that is not
/// the client's, the client's body translated for it (made once, when the chain is built).
/// </summary>
internal sealed record FallbackTarget(
    Providers.ResolvedProvider Provider,
    Yarp.ReverseProxy.Model.ClusterState Cluster,
    Core.Dialects.LlmDialect Dialect,
    Translation.TranslatedRequest? Translated);

/// <summary>Builds a request's planner when its attempts need one (implemented by <see cref="ResilienceMiddleware"/>).</summary>
internal interface IAttemptPlannerFactory
{
    /// <summary>The circuit-breaker states the cheap first attempt checks.</summary>
    ICircuitStates Breakers { get; }

    /// <summary>The planner over the request's chain (the primary model, then its fallbacks).</summary>
    AttemptPlanner CreatePlanner(LlmExchange exchange, UpstreamAttempts attempts);
}
