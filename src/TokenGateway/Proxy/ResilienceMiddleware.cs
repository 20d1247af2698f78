using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.Resilience;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Proxy;

/// <summary>
/// The last proxy stage, around YARP's forwarder (issue #13): plans the request's attempts with
/// <see cref="AttemptPlanner"/>, pins each attempt to the planner's destination and key, runs it through the
/// destination's and key's circuit breakers, and — while no byte reached the client — replays the buffered body after
/// the planner's back-off when the provider failed transiently. Fails fast with 503 <c>upstream_unavailable</c> when
/// every destination and key is open.
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
    TimeProvider time,
    ILogger<ResilienceMiddleware> logger)
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
        if (exchange.Provider is not { } provider || exchange.Model is not { } model || proxy.AllDestinations.Count == 0)
        {
            await _next(context);
            return;
        }

        // YARP's load balancer already chose (the cluster's policy): that destination goes first, so the initial attempt
        // honours the policy; the planner moves retries to the destinations that have not failed.
        var all = proxy.AllDestinations;
        var picked = proxy.AvailableDestinations.Count > 0 ? proxy.AvailableDestinations[0].DestinationId : null;
        var destinationIds = new string[all.Count];
        var n = 0;
        if (picked is not null)
        {
            destinationIds[n++] = picked;
        }

        foreach (var d in all)
        {
            if (!string.Equals(d.DestinationId, picked, StringComparison.Ordinal) && n < destinationIds.Length)
            {
                destinationIds[n++] = d.DestinationId;
            }
        }

        var settings = ResilienceSettingsResolver.Resolve(resilience.CurrentValue.ToSettings(), model.Resilience, exchange.Policy?.Team.Resilience);
        var keys = provider.KeySelector ?? _keyless.GetOrAdd(provider.Id, static (id, t) => new KeySelector(id, 1, t), time);
        var planner = new AttemptPlanner([new PlannedModel(model, settings, destinationIds, keys)], breakers, time);
        var options = gateway.CurrentValue;
        var attempts = new UpstreamAttempts(planner, () => options.RemainingFor(exchange.ElapsedMs));
        exchange.SetAttempts(attempts);

        var decision = attempts.Start();
        if (decision.Step != PlanStep.Attempt)
        {
            await FailFastAsync(context, exchange, provider.Id, decision);
            return;
        }

        var clusterId = proxy.Cluster.Config.ClusterId;
        try
        {
            while (true)
            {
                var attempt = decision.Attempt;
                if (attempt.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(attempt.Delay, time, context.RequestAborted);
                }

                attempts.Begin(attempt);
                context.Response.Headers[AttemptsHeader] = attempts.Count.ToString(CultureInfo.InvariantCulture);
                if (Find(proxy, attempt.DestinationId) is { } destination)
                {
                    proxy.AvailableDestinations = destination;
                }

                context.Request.Body.Position = 0; // the buffered body, replayed as serialized once
                var startedAt = time.GetUtcNow();
                var startedTicks = time.GetTimestamp();
                var guarded = await breakers.ExecuteAsync(clusterId, attempt.DestinationId, CircuitScopes.Key(provider.Id, attempt.KeyIndex),
                    static async (s, _) =>
                    {
                        await s.Self._next(s.Context);
                        return s.Attempts.Result ?? ResultOfForwarder(s.Context);
                    },
                    (Self: this, Context: context, Attempts: attempts),
                    context.RequestAborted);

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

    /// <summary>How an attempt ended that produced no response the handler saw (a forwarder error, or none).</summary>
    private static AttemptResult ResultOfForwarder(HttpContext context)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is not { } error)
        {
            return AttemptResult.Status(context.Response.StatusCode);
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
        return decision.Step == PlanStep.RateLimited
            ? exchange.FailAsync(context, GatewayError.RateLimited,
                $"Every key of the provider '{providerId}' is rate limited. Retry after {Seconds(retryAfter)} s.", retryAfter: retryAfter)
            : exchange.FailAsync(context, GatewayError.NoHealthyUpstream,
                $"No destination of the provider '{providerId}' is healthy right now (circuit open). Retry after {Seconds(retryAfter)} s.",
                retryAfter: retryAfter);
    }

    private static string Seconds(TimeSpan t) => Math.Ceiling(t.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    private static IReadOnlyList<DestinationState>? Find(Yarp.ReverseProxy.Model.IReverseProxyFeature proxy, string id)
    {
        foreach (var d in proxy.AllDestinations)
        {
            if (string.Equals(d.DestinationId, id, StringComparison.Ordinal))
            {
                return [d];
            }
        }

        return null;
    }

    [LoggerMessage(2400, LogLevel.Information, "Request {RequestId}: attempt {Attempt} failed with {Reason}; retrying in {DelayMs} ms")]
    private static partial void LogRetry(ILogger logger, string requestId, int attempt, string reason, double delayMs);

    [LoggerMessage(2401, LogLevel.Warning, "Request {RequestId}: provider {Provider} has nothing usable ({Detail}); failing fast with Retry-After {RetryAfterSeconds} s")]
    private static partial void LogFailFast(ILogger logger, string requestId, string provider, string detail, double retryAfterSeconds);
}
