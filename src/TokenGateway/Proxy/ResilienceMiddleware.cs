using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Resilience;
using TokenGateway.Core.Models;
using TokenGateway.Hosting;
using TokenGateway.Providers;
using TokenGateway.Resilience;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Proxy;

/// <summary>
/// The last proxy stage, around YARP's forwarder (issue #13): plans the request's attempts with
/// <see cref="AttemptPlanner"/>, pins each attempt to the planner's destination and key, runs it through the
/// destination's and key's circuit breakers, and — while no byte reached the client — replays the buffered body after
/// the planner's back-off when the provider failed transiently. Fails fast with 503 <c>upstream_unavailable</c> when
/// every destination and key is open; when every key is cooling down after a 429, sends one attempt anyway.
/// </summary>
/// <remarks>
/// The response handler (<see cref="LlmResponseHandler"/>) sees each upstream status before anything is copied and
/// reports it to <see cref="UpstreamAttempts"/>; for a retryable failure with attempts left it suppresses the body and
/// leaves the client response unstarted, and this stage resets the status and calls the forwarder again. Each
/// superseded attempt is its own ledger event (cost 0: a failed answer is not billed) linked by
/// <c>parentRequestId</c>; the request's own event is the answer the client got, so the reservation is settled once.
/// </remarks>
internal sealed partial class ResilienceMiddleware(
    RequestDelegate next,
    IOptionsMonitor<ResilienceOptions> resilience,
    IOptionsMonitor<GatewayOptions> gateway,
    CircuitBreakerRegistry breakers,
    IUsageLedger ledger,
    ModelCatalog catalog,
    ProviderRegistry providers,
    IProxyStateLookup proxyState,
    TimeProvider time,
    Core.Tokenization.IRequestTokenCounter counter,
    ILogger<ResilienceMiddleware> logger) : IAttemptPlannerFactory
{

    /// <summary>Response header carrying the number of upstream attempts made for the request.</summary>
    public const string AttemptsHeader = "x-tokengateway-attempts";

    // Providers without a configured key still need a selector for the planner (one anonymous "key").
    private readonly ConcurrentDictionary<string, KeySelector> _keyless = new(StringComparer.Ordinal);
    private readonly RequestDelegate _next = next;

    public async Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var proxy = context.GetReverseProxyFeature();
        if (exchange.Provider is not { } provider || exchange.Model is not { } model || proxy.AllDestinations.Count == 0
            || !resilience.CurrentValue.Enabled)
        {
            // Resilience:Enabled = false: one forward, no attempts object, planner, breaker or timer (the pipeline's cost
            // on the happy path is measured against this, docs/resilience.md section 9).
            await _next(context);
            return;
        }

        // YARP's load balancer already chose (the cluster's policy): the first attempt goes there when its breaker and a
        // key allow, without building the planner; retries and fallbacks build it (CreatePlanner) on demand.
        var picked = proxy.AvailableDestinations.Count > 0 ? proxy.AvailableDestinations[0].DestinationId : null;
        var settings = ResilienceSettingsResolver.Resolve(Defaults(), model.Resilience, exchange.Policy?.Team.Resilience);
        var keys = KeysOf(provider);
        var options = gateway.CurrentValue;
        var attempts = new UpstreamAttempts(this, settings, keys, time.GetUtcNow(), exchange, options)
        {
            DefaultConnectTimeout = resilience.CurrentValue.Timeouts.Connect,
            Context = context,
        };
        var decision = attempts.Start(model, picked);
        if (decision.Step == PlanStep.RateLimited)
        {
            // Every key is cooling down after another request's 429: the provider still decides for this one (one
            // attempt, no retry), so one request's hint never turns into gateway refusals for everybody else.
            context.Response.Headers[AttemptsHeader] = "1";
            await _next(context);
            return;
        }

        exchange.SetAttempts(attempts);
        if (decision.Step != PlanStep.Attempt)
        {
            await FailFastAsync(context, exchange, provider.Id, decision);
            return;
        }

        var clusterId = proxy.Cluster.Config.ClusterId;
        var served = model;
        try
        {
            while (true)
            {
                var attempt = decision.Attempt;
                if (attempt.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(attempt.Delay, time, context.RequestAborted);
                }

                if (!ReferenceEquals(attempt.Model, served) && attempts.FallbackClusters is { } clusters && clusters.TryGetValue(attempt.Model.Name, out var target))
                {
                    // A fallback: the same parsed request with the fallback's model, to the fallback's cluster.
                    served = attempt.Model;
                    SwitchModel(context, exchange, attempts, attempt.Model, target);
                    clusterId = target.Cluster.ClusterId;
                    LogFallback(logger, exchange.RequestId, model.Name, attempt.Model.Name);
                }

                attempts.Begin(attempt, guarded: true);
                context.Response.Headers[AttemptsHeader] = CountText(attempts.Count);
                if (!(proxy.AvailableDestinations.Count == 1 && string.Equals(proxy.AvailableDestinations[0].DestinationId, attempt.DestinationId, StringComparison.Ordinal))
                    && Find(proxy, attempt.DestinationId) is { } destination)
                {
                    proxy.AvailableDestinations = destination; // a DestinationState is its own one-item list: no allocation
                }

                context.Request.Body.Position = 0; // the buffered body, replayed as serialized once
                var startedAt = time.GetUtcNow();
                var startedTicks = time.GetTimestamp();
                var headersTimer = ArmHeadersTimeout(context, attempts, options);
                GuardedAttempt guarded;
                var keyScope = KeysOf(attempts.Provider ?? provider).ScopeIds[attempt.KeyIndex];
                try
                {
                    if (breakers.TryBeginClosed(clusterId, attempt.DestinationId, keyScope, out var closed))
                    {
                        // Both breakers closed (the happy path): the attempt runs in this method, without a Polly
                        // execution and its async state machines, and its final outcome is recorded once on both.
                        AttemptResult outcome;
                        try
                        {
                            await _next(context);
                            outcome = attempts.GuardedOutcome ?? attempts.Result ?? ResultOfForwarder(context, headersTimer);
                        }
                        catch (Exception ex)
                        {
                            breakers.EndClosed(closed, ex);
                            throw;
                        }

                        breakers.EndClosed(closed, outcome);
                        guarded = new GuardedAttempt(outcome, false, TimeSpan.Zero);
                    }
                    else
                    {
                        guarded = await breakers.ExecuteAsync(clusterId, attempt.DestinationId, keyScope,
                            static async (s, _) =>
                            {
                                await s.Self._next(s.Context);
                                // This attempt's own final outcome (a cut after its headers included), recorded once by its
                                // breakers here; later attempts (stream continuations) are recorded by the response handler.
                                return s.Attempts.GuardedOutcome ?? s.Attempts.Result ?? ResultOfForwarder(s.Context, s.Timer);
                            },
                            (Self: this, Context: context, Attempts: attempts, Timer: headersTimer),
                            headersTimer?.Original ?? context.RequestAborted);
                    }
                }
                finally
                {
                    headersTimer?.Restore(context);
                }

                var result = guarded.Rejected
                    ? new AttemptResult(AttemptOutcomeKind.ConnectFailure) // a breaker opened since the plan: not called
                    : guarded.Result;
                decision = attempts.Report(result);
                if (decision.Step != PlanStep.Attempt)
                {
                    if (guarded.Rejected && !context.Response.HasStarted)
                    {
                        await FailFastAsync(context, exchange, provider.Id, new PlanDecision(PlanStep.FailFast, RetryAfter: guarded.RetryAfter));
                    }

                    return; // the answer (or the forwarder's error, mapped by LlmExchangeMiddleware) is the client's
                }

                LogRetry(logger, exchange.RequestId, attempts.Count, UpstreamAttempts.ErrorCodeOf(result), decision.Attempt.Delay.TotalMilliseconds);
                if (exchange.TeamId is not null)
                {
                    ledger.Record(UsageEventFactory.ForSupersededAttempt(
                        exchange, attempt, result, startedAt, time.GetElapsedTime(startedTicks).TotalMilliseconds));
                }

                // Nothing reached the client: forget this attempt's status and error before the next one.
                context.Features.Set<IForwarderErrorFeature>(null);
                context.Response.StatusCode = StatusCodes.Status200OK;
            }
        }
        finally
        {
            attempts.ReleaseUnreported();
        }
    }

    /// <summary>
    /// The primary model, then its fallbacks (catalogue <c>Models:{name}:Fallbacks</c>, replaced per model by the team's
    /// <c>fallbacks</c>): models the team may use, of the request's kind, whose provider is configured. A fallback of
    /// the other API is kept when the request can be translated for it (the translated body is made here, once); one
    /// the translator refuses is skipped with the reason logged. With an enforced hard budget, a fallback priced above
    /// the primary is dropped: the admission reservation was sized for the primary, and a dearer answer could push the
    /// budget over.
    /// </summary>
    private List<PlannedModel> BuildChain(HttpContext context, LlmExchange exchange, PlannedModel primary, out Dictionary<string, FallbackTarget>? clusters)
    {
        clusters = null;
        var chain = new List<PlannedModel>(1) { primary };
        if (exchange.Policy is not { } policy)
        {
            return chain;
        }

        var defaults = Defaults();
        // Every dialect is reachable through translation; whether this request can be translated is decided per model below.
        var fallbacks = FallbackChains.Resolve(primary.Model, catalog, policy.Team.Fallbacks,
            name => policy.Models.IsAllowed(name), static _ => null, primary.Settings.MaxFallbacks);
        if (fallbacks.Count == 0)
        {
            return chain;
        }

        var hardBudget = policy.TeamBudget.Enforced || policy.KeyBudget?.Enforced == true;
        foreach (var card in fallbacks)
        {
            if (!providers.TryGet(card.Provider, out var provider) || !proxyState.TryGetCluster(provider.Id, out var cluster)
                || (!provider.HasCredential && provider.Type != ProviderType.OpenAICompatible)
                || (hardBudget && !PricedWithin(card, primary.Model)))
            {
                continue;
            }

            if (!TryTranslateFor(context, exchange, card, provider, out var dialect, out var translated))
            {
                continue;
            }

            var ids = new List<string>(cluster.Destinations.Count);
            foreach (var id in cluster.Destinations.Keys)
            {
                ids.Add(id);
            }

            if (ids.Count == 0)
            {
                continue;
            }

            var keys = provider.KeySelector ?? _keyless.GetOrAdd(provider.Id, static (id, t) => new KeySelector(id, 1, t), time);
            chain.Add(new PlannedModel(card, ResilienceSettingsResolver.Resolve(defaults, card.Resilience, policy.Team.Resilience), ids, keys));
            (clusters ??= new(StringComparer.Ordinal))[card.Name] = new FallbackTarget(provider, cluster, dialect, translated);
        }

        return chain;
    }

    /// <summary>
    /// The dialect a fallback is called in and, when it is not the client's, the client's (optimized) body translated
    /// for it. False (logged) when no translation exists from the client's API or the translator refuses the request.
    /// </summary>
    private bool TryTranslateFor(HttpContext context, LlmExchange exchange, ModelCard card, ResolvedProvider provider,
        out Core.Dialects.LlmDialect dialect, out Translation.TranslatedRequest? translated)
    {
        translated = null;
        dialect = exchange.Dialect;
        var upstream = Translation.ProviderDialects.Upstream(exchange.Dialect, provider.Type, card.Name);
        if (upstream is null || (upstream != exchange.Dialect && exchange.Dialect == Core.Dialects.LlmDialect.AnthropicCountTokens))
        {
            LogFallbackSkipped(logger, exchange.RequestId, card.Name, $"{exchange.Route} has no translation to its provider's API");
            return false;
        }

        dialect = upstream.Value;
        if (dialect == exchange.Dialect)
        {
            return true;
        }

        if (context.Features.Get<StructuredOutput.StructuredOutputFeature>() is not null)
        {
            // The gateway validates (and repairs) this answer against a schema in the client's API, which a translated
            // answer does not go through (docs/translation.md): a fallback of the other API could not keep that promise.
            LogFallbackSkipped(logger, exchange.RequestId, card.Name, "the gateway enforces a JSON schema on this request, which it cannot do through the other API");
            return false;
        }

        var translation = Core.Translation.DialectTranslator.TranslateRequest(exchange.Dialect, dialect, exchange.Request!.Body,
            Translation.ProviderDialects.OptionsFor(provider.Type));
        if (!translation.Succeeded)
        {
            LogFallbackSkipped(logger, exchange.RequestId, card.Name, translation.ErrorMessage ?? "the request cannot be translated");
            return false;
        }

        // A usage chunk the gateway forced onto the client's own stream request is not one the client asked for.
        translated = new Translation.TranslatedRequest(translation.Body!, translation.ClientIncludeUsage && exchange.ClientRequestedUsage);
        return true;
    }

    private static bool PricedWithin(ModelCard fallback, ModelCard primary) =>
        fallback.Prices is { Input: { } fi, Output: { } fo } && primary.Prices is { Input: { } pi, Output: { } po } && fi <= pi && fo <= po;

    /// <summary>
    /// Points the request at a fallback model: its dialect (translated there and back when it is the other API's), its
    /// name in the body (serialized once more), its cluster and provider; the prompt is counted once more when the
    /// dialect or the tokenizer changes, so metering and estimates use the served model's.
    /// </summary>
    private void SwitchModel(HttpContext context, LlmExchange exchange, UpstreamAttempts attempts, ModelCard card, FallbackTarget target)
    {
        var previous = exchange.ServedModel; // the attempt before this one
        var recount = target.Dialect != exchange.UpstreamDialect || !string.Equals(previous?.Tokenizer, card.Tokenizer, StringComparison.Ordinal);
        if (target.Translated is null && exchange.IsTranslated)
        {
            // Back to the client's own API after a translated attempt: ask an OpenAI stream for usage as any native one.
            exchange.SetClientRequestedUsage(!StreamUsageRequest.ForceIncludeUsage(exchange.Request!));
        }

        exchange.SwitchUpstream(target.Dialect, target.Translated);
        var bytes = exchange.BodyForModel(card.Name); // the translated body when this fallback speaks the other API (issue #16)
        if (recount && Count(target.Dialect, bytes, card, out var anatomy) is { } sent)
        {
            exchange.RecountSent(sent, anatomy);
            context.Response.Headers["x-tokengateway-prompt-tokens-original"] = exchange.InputTokensReceived.ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["x-tokengateway-prompt-tokens-sent"] = sent.ToString(CultureInfo.InvariantCulture);
        }

        context.Request.Body = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(bytes.ToArray(), writable: false);
        context.Request.ContentLength = bytes.Length;
        attempts.Provider = target.Provider;
        context.ReassignProxyRequest(target.Cluster);
    }

    private int? Count(Core.Dialects.LlmDialect dialect, ReadOnlyMemory<byte> bytes, ModelCard card, out TokenAnatomy? anatomy)
    {
        anatomy = null;
        if (!Core.Dialects.LlmRequestParser.TryParse(dialect, bytes, out var parsed, out _))
        {
            return null;
        }

        using (parsed)
        {
            var count = counter.CountInputTokens(parsed!, card, out var counted);
            anatomy = counted;
            return count;
        }
    }

    /// <summary>
    /// Arms the attempt's response-headers timeout when it is shorter than the cluster's YARP activity timeout (which
    /// already bounds the time to headers, at no cost): the forwarder then sees a request token that also fires at the
    /// attempt's timeout; the response handler disarms it once the headers arrived. Null (no allocation) otherwise.
    /// </summary>
    private static AttemptHeadersTimer? ArmHeadersTimeout(HttpContext context, UpstreamAttempts attempts, GatewayOptions options)
    {
        var timeout = attempts.Settings.ResponseHeadersTimeout;
        var remaining = options.RemainingFor(context.GetLlmExchange().ElapsedMs);
        if (remaining < timeout)
        {
            timeout = remaining;
        }

        var activity = context.GetReverseProxyFeature().Cluster.Config.HttpRequest?.ActivityTimeout ?? DefaultActivityTimeout;
        if (timeout >= activity)
        {
            return null;
        }

        var timer = new AttemptHeadersTimer(context.RequestAborted, timeout);
        context.RequestAborted = timer.Token;
        attempts.HeadersTimer = timer;
        return timer;
    }

    /// <summary>YARP's activity timeout when a cluster sets none.</summary>
    private static readonly TimeSpan DefaultActivityTimeout = TimeSpan.FromSeconds(100);

    /// <summary>How an attempt ended that produced no response the handler saw (a forwarder error, or none).</summary>
    private static AttemptResult ResultOfForwarder(HttpContext context, AttemptHeadersTimer? headersTimer)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is not { } error)
        {
            return AttemptResult.Status(context.Response.StatusCode);
        }

        if (headersTimer is { Fired: true } && !headersTimer.Original.IsCancellationRequested && !context.Response.HasStarted)
        {
            // The forwarder saw its token cancelled by the attempt's header timeout, not by the client: a 504-like
            // failure (retried), and a timeout for LlmExchangeMiddleware if it is the last attempt.
            context.Features.Set<IForwarderErrorFeature>(new HeadersTimeoutError(error.Exception));
            return new AttemptResult(AttemptOutcomeKind.ResponseHeadersTimeout);
        }

        if (context.RequestAborted.IsCancellationRequested
            || error.Error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled)
        {
            return new AttemptResult(AttemptOutcomeKind.ClientAborted);
        }

        if (context.Response.HasStarted)
        {
            return new AttemptResult(AttemptOutcomeKind.BodyReset, ClientReceivedBytes: true);
        }

        return error.Error switch
        {
            ForwarderError.RequestTimedOut => new AttemptResult(AttemptOutcomeKind.ResponseHeadersTimeout),
            ForwarderError.Request when IsConnectFailure(error.Exception) => new AttemptResult(AttemptOutcomeKind.ConnectFailure),
            ForwarderError.Request => new AttemptResult(AttemptOutcomeKind.ResetBeforeResponse),
            _ => new AttemptResult(AttemptOutcomeKind.BodyReset),
        };
    }

    private static bool IsConnectFailure(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostNotFound or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.TimedOut })
            {
                return true;
            }
        }

        return false;
    }

    private Task FailFastAsync(HttpContext context, LlmExchange exchange, string providerId, PlanDecision decision)
    {
        context.Response.Headers[AttemptsHeader] = exchange.Attempts?.Count.ToString(CultureInfo.InvariantCulture) ?? "0";
        var retryAfter = decision.RetryAfter > TimeSpan.Zero ? decision.RetryAfter : TimeSpan.FromSeconds(1);
        LogFailFast(logger, exchange.RequestId, providerId, decision.Detail ?? "circuit_open", retryAfter.TotalSeconds);
        return exchange.FailAsync(context, GatewayError.NoHealthyUpstream,
            $"No destination of the provider '{providerId}' is healthy right now (circuit open). Retry after {Seconds(retryAfter)} s.",
            retryAfter: retryAfter);
    }

    private static string Seconds(TimeSpan t) => Math.Ceiling(t.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    private static DestinationState? Find(Yarp.ReverseProxy.Model.IReverseProxyFeature proxy, string id)
    {
        foreach (var d in proxy.AllDestinations)
        {
            if (string.Equals(d.DestinationId, id, StringComparison.Ordinal))
            {
                return d;
            }
        }

        return null;
    }

    private static readonly string[] _countTexts = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];

    private static string CountText(int count) => (uint)count < (uint)_countTexts.Length ? _countTexts[count] : count.ToString(CultureInfo.InvariantCulture);

    private DefaultsCache? _defaults;

    /// <summary>The gateway defaults as settings, built once per options instance (not per request).</summary>
    private ResilienceSettings Defaults()
    {
        var current = resilience.CurrentValue;
        if (Volatile.Read(ref _defaults) is { } cached && ReferenceEquals(cached.Options, current))
        {
            return cached.Settings;
        }

        var settings = current.ToSettings();
        Volatile.Write(ref _defaults, new DefaultsCache(current, settings));
        return settings;
    }

    private sealed record DefaultsCache(ResilienceOptions Options, ResilienceSettings Settings);

    private KeySelector KeysOf(ResolvedProvider provider) =>
        provider.KeySelector ?? _keyless.GetOrAdd(provider.Id, static (id, t) => new KeySelector(id, 1, t), time);

    /// <inheritdoc />
    ICircuitStates IAttemptPlannerFactory.Breakers => breakers;

    /// <summary>
    /// Builds the request's planner (only when a retry, fallback, continuation or a planned first attempt needs it):
    /// the primary model over its cluster's destinations (the load balancer's choice, or the first attempt's, first),
    /// then its fallback chain.
    /// </summary>
    AttemptPlanner IAttemptPlannerFactory.CreatePlanner(LlmExchange exchange, UpstreamAttempts attempts)
    {
        var context = attempts.Context!; // set by InvokeAsync before the first decision
        var proxy = context.GetReverseProxyFeature();
        var provider = exchange.Provider!;
        var model = exchange.Model!;
        var all = proxy.AllDestinations;
        var first = attempts.Count > 0 ? attempts.Current.DestinationId
            : proxy.AvailableDestinations.Count > 0 ? proxy.AvailableDestinations[0].DestinationId : null;
        var destinationIds = new string[all.Count];
        var n = 0;
        if (first is not null)
        {
            destinationIds[n++] = first;
        }

        foreach (var d in all)
        {
            if (!string.Equals(d.DestinationId, first, StringComparison.Ordinal) && n < destinationIds.Length)
            {
                destinationIds[n++] = d.DestinationId;
            }
        }

        var settings = ResilienceSettingsResolver.Resolve(Defaults(), model.Resilience, exchange.Policy?.Team.Resilience);
        var chain = BuildChain(context, exchange, new PlannedModel(model, settings, destinationIds, KeysOf(provider)), out var clusters);
        attempts.FallbackClusters = clusters;
        return new AttemptPlanner(chain, breakers, time,
            canContinueStreams: exchange.Dialect == Core.Dialects.LlmDialect.AnthropicMessages && exchange.Request?.Stream == true);
    }

    [LoggerMessage(2400, LogLevel.Information, "Request {RequestId}: attempt {Attempt} failed with {Reason}; retrying in {DelayMs} ms")]
    private static partial void LogRetry(ILogger logger, string requestId, int attempt, string reason, double delayMs);

    [LoggerMessage(2402, LogLevel.Warning, "Request {RequestId}: model {Model} exhausted its attempts; falling back to {Fallback}")]
    private static partial void LogFallback(ILogger logger, string requestId, string model, string fallback);

    [LoggerMessage(2403, LogLevel.Warning, "Request {RequestId}: fallback {Fallback} skipped: {Reason}")]
    private static partial void LogFallbackSkipped(ILogger logger, string requestId, string fallback, string reason);

    [LoggerMessage(2401, LogLevel.Warning, "Request {RequestId}: provider {Provider} has nothing usable ({Detail}); failing fast with Retry-After {RetryAfterSeconds} s")]
    private static partial void LogFailFast(ILogger logger, string requestId, string provider, string detail, double retryAfterSeconds);
}

/// <summary>
/// One attempt's response-headers timeout (issue #13): a token linked to the client's that also fires after the
/// timeout, swapped into <see cref="HttpContext.RequestAborted"/> for the attempt and disarmed when the headers arrive.
/// </summary>
internal sealed class AttemptHeadersTimer : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private int _disarmed;

    public AttemptHeadersTimer(CancellationToken original, TimeSpan timeout)
    {
        Original = original;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(original);
        _cts.CancelAfter(timeout);
    }

    /// <summary>The client's own token.</summary>
    public CancellationToken Original { get; }

    /// <summary>The attempt's token (the client's, or the timeout).</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>True when the timeout (not the client) cancelled the attempt.</summary>
    public bool Fired => _cts.IsCancellationRequested && !Original.IsCancellationRequested && Volatile.Read(ref _disarmed) == 0;

    /// <summary>The headers arrived: the timer stops (the body has its own idle timeout).</summary>
    public void Disarm()
    {
        if (Interlocked.Exchange(ref _disarmed, 1) == 0)
        {
            _cts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Puts the client's token back and frees the timer.</summary>
    public void Restore(HttpContext context)
    {
        context.RequestAborted = Original;
        Dispose();
    }

    public void Dispose() => _cts.Dispose();
}

/// <summary>The forwarder error of an attempt whose response headers did not arrive within its timeout.</summary>
internal sealed class HeadersTimeoutError(Exception? exception) : IForwarderErrorFeature
{
    public ForwarderError Error => ForwarderError.RequestTimedOut;

    public Exception? Exception => exception;
}
