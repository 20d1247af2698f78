using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using TokenGateway.Core.Resilience;
using TokenGateway.Providers;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Resilience;

/// <summary>The result of an attempt run through the breakers: the attempt's own result, or a refusal by an open breaker.</summary>
/// <param name="Result">The attempt's result (default when <paramref name="Rejected"/>).</param>
/// <param name="Rejected">True when a breaker refused the attempt without calling the upstream.</param>
/// <param name="RetryAfter">When rejected: the time until the breaker lets a probe through.</param>
internal readonly record struct GuardedAttempt(AttemptResult Result, bool Rejected, TimeSpan RetryAfter);

/// <summary>
/// One Polly v8 circuit breaker per destination and per provider key (<see cref="CircuitScopes"/>), built lazily from
/// <see cref="CircuitBreakerOptions"/>; the planner reads their state through <see cref="ICircuitStates"/>, the
/// invoker runs each attempt through <see cref="ExecuteAsync{TState}"/>. Destination breakers also set YARP's passive
/// destination health, so YARP's own load balancing skips an open destination.
/// </summary>
/// <remarks>
/// What counts as a failure is <see cref="RetryClassifier.IsBreakerFailure"/> (5xx, 529, transport failures,
/// timeouts; not 429 and not client errors). A failure seen after the attempt returned (a stream cut later) is
/// recorded with <see cref="Report"/>.
/// </remarks>
internal sealed partial class CircuitBreakerRegistry : ICircuitStates
{
    private readonly ConcurrentDictionary<string, Breaker> _breakers = new(StringComparer.Ordinal);
    private readonly CircuitBreakerOptions _options;
    private readonly TimeProvider _time;
    private readonly IServiceProvider? _services;
    private readonly ILogger _logger;
    private IProxyStateLookup? _proxyState;
    private IDestinationHealthUpdater? _healthUpdater;

    public CircuitBreakerRegistry(IOptions<ResilienceOptions> options, TimeProvider time, IServiceProvider services, ILogger<CircuitBreakerRegistry> logger)
        : this(options.Value.CircuitBreaker, time, logger, services)
    {
    }

    internal CircuitBreakerRegistry(CircuitBreakerOptions options, TimeProvider time, ILogger logger, IServiceProvider? services = null)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _services = services;
    }

    /// <inheritdoc />
    public bool IsOpen(string scopeId, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (!_breakers.TryGetValue(scopeId, out var breaker))
        {
            return false;
        }

        var state = breaker.State.CircuitState;
        if (state is CircuitState.Open or CircuitState.Isolated)
        {
            var left = breaker.OpenUntil - _time.GetUtcNow();
            if (state == CircuitState.Isolated || left > TimeSpan.Zero)
            {
                retryAfter = left > TimeSpan.Zero ? left : _options.BreakDuration;
                return true;
            }
        }

        return false;
    }

    /// <summary>The breaker state of a scope (closed when it never saw an attempt).</summary>
    public CircuitState StateOf(string scopeId) => _breakers.TryGetValue(scopeId, out var b) ? b.State.CircuitState : CircuitState.Closed;

    /// <summary>
    /// True when at least one destination of <paramref name="provider"/> and one of its keys accept attempts; when
    /// false, <paramref name="retryAfter"/> is the soonest a probe is let through (for a 503 with Retry-After).
    /// </summary>
    public bool IsAnythingHealthy(ResolvedProvider provider, out TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(provider);
        var destinationOk = SoonestOpen(
            Enumerable.Range(0, provider.Destinations.Count).Select(i => CircuitScopes.Destination(DestinationId(provider.Id, i))),
            out var destinationWait);
        var keyOk = true;
        var keyWait = TimeSpan.Zero;
        if (provider.KeySelector is { } keys)
        {
            keyOk = SoonestOpen(keys.ScopeIds, out keyWait);
        }

        retryAfter = destinationOk && keyOk ? TimeSpan.Zero : Max(destinationOk ? TimeSpan.Zero : destinationWait, keyOk ? TimeSpan.Zero : keyWait);
        return destinationOk && keyOk;
    }

    /// <summary>
    /// Runs one attempt through the breaker of its destination, then of its key. An open breaker refuses at once
    /// (no upstream call); the attempt's result is recorded on both breakers. When both breakers are closed the attempt
    /// runs as <see cref="TryBeginClosed"/> and <see cref="EndClosed(in ClosedAttempt, in AttemptResult)"/> run it
    /// (no Polly execution); otherwise (a half-open probe) through the breakers' Polly pipelines.
    /// </summary>
    public async ValueTask<GuardedAttempt> ExecuteAsync<TState>(
        string clusterId,
        string destinationId,
        string keyScopeId,
        Func<TState, CancellationToken, ValueTask<AttemptResult>> attempt,
        TState state,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        if (TryBeginClosed(clusterId, destinationId, keyScopeId, out var closed))
        {
            AttemptResult result;
            try
            {
                result = await attempt(state, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                EndClosed(closed, ex);
                throw;
            }

            EndClosed(closed, result);
            return new GuardedAttempt(result, false, TimeSpan.Zero);
        }

        return await ExecuteThroughPollyAsync(clusterId, destinationId, keyScopeId, attempt, state, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The happy path without a Polly execution: true when the attempt's destination breaker and key breaker are both
    /// closed, so Polly would let it through without any state change; the caller makes the attempt itself and reports
    /// its outcome once with <see cref="EndClosed(in ClosedAttempt, in AttemptResult)"/> (or the exception it threw).
    /// False when either breaker is open, isolated or half-open: run the attempt with <see cref="ExecuteAsync{TState}"/>,
    /// which refuses or spends the half-open probe as before.
    /// </summary>
    /// <remarks>
    /// A closed breaker admits every call, so deciding here instead of inside Polly's execution changes nothing about
    /// admission; it saves the two executions' async state machines (≈ 3.8 KB per request, docs/performance.md, issue
    /// #17). The outcome is recorded afterwards by replaying it through each breaker (as <see cref="Record"/> does for
    /// stream continuations), only while that breaker is still closed: an outcome that arrives after its breaker opened
    /// (other requests' failures) is ignored instead of deciding a later half-open probe, which only an attempt made
    /// while half-open may do.
    /// </remarks>
    public bool TryBeginClosed(string clusterId, string destinationId, string keyScopeId, out ClosedAttempt closed)
    {
        var destination = GetOrAdd(CircuitScopes.Destination(destinationId), clusterId, destinationId);
        var key = GetOrAdd(keyScopeId, clusterId, null);
        if (destination.State.CircuitState == CircuitState.Closed && key.State.CircuitState == CircuitState.Closed)
        {
            closed = new ClosedAttempt(destination, key);
            return true;
        }

        closed = default;
        return false;
    }

    /// <summary>Records the result of an attempt begun with <see cref="TryBeginClosed"/> once on its destination's and key's breakers.</summary>
    public void EndClosed(in ClosedAttempt closed, in AttemptResult result)
    {
        // As in the Polly execution, every outcome is recorded, as a failure when the breaker's predicate handles it
        // and as a success otherwise.
        Replay(closed.Destination, result);
        Replay(closed.Key, result);
    }

    /// <summary>Records the exception thrown by an attempt begun with <see cref="TryBeginClosed"/> once on both breakers.</summary>
    public void EndClosed(in ClosedAttempt closed, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ReplayException(closed.Destination, exception);
        ReplayException(closed.Key, exception);
    }

    private static void Replay(Breaker? breaker, AttemptResult result)
    {
        if (breaker is null || breaker.State.CircuitState != CircuitState.Closed)
        {
            return;
        }

        // If another request opened it since the check, the replay is refused: this late outcome decides nothing.
        ReplayThrough(breaker, result);
    }

    /// <summary>
    /// Records <paramref name="result"/> on <paramref name="breaker"/> by replaying it through the breaker's pipeline
    /// (Polly records outcomes only by executing); a breaker that refuses the replay (opened, or half-open with its probe
    /// in flight) is left to decide by itself.
    /// </summary>
    private static void ReplayThrough(Breaker breaker, in AttemptResult result)
    {
        try
        {
            _ = breaker.Pipeline.Execute(static r => r, result);
        }
        catch (BrokenCircuitException)
        {
            // Refused: the breaker's own state (or its probe) decides.
        }
    }

    private static void ReplayException(Breaker? breaker, Exception exception)
    {
        if (breaker is null || breaker.State.CircuitState != CircuitState.Closed)
        {
            return;
        }

        // Outcome-based execution records the exception through the breaker's predicate without throwing it; the
        // callback completes synchronously, so the execution does too.
        var context = ResilienceContextPool.Shared.Get();
        try
        {
            var pending = breaker.Pipeline.ExecuteOutcomeAsync(
                static (_, ex) => ValueTask.FromResult(Outcome.FromException<AttemptResult>(ex)), context, exception);
            _ = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private async ValueTask<GuardedAttempt> ExecuteThroughPollyAsync<TState>(
        string clusterId,
        string destinationId,
        string keyScopeId,
        Func<TState, CancellationToken, ValueTask<AttemptResult>> attempt,
        TState state,
        CancellationToken cancellationToken)
    {
        var destinationScope = CircuitScopes.Destination(destinationId);
        if (IsOpen(destinationScope, out var wait) || IsOpen(keyScopeId, out wait))
        {
            // Refuse before Polly sees the call, so a refusal by one breaker never spends the other's half-open probe.
            return new GuardedAttempt(default, true, wait);
        }

        var destination = GetOrAdd(destinationScope, clusterId, destinationId);
        var key = GetOrAdd(keyScopeId, clusterId, null);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            var outcome = await destination.Pipeline.ExecuteOutcomeAsync(
                static async (ctx, s) =>
                {
                    var inner = await s.key.Pipeline.ExecuteOutcomeAsync(
                        static async (c, s2) =>
                        {
                            try
                            {
                                return Outcome.FromResult(await s2.attempt(s2.state, c.CancellationToken).ConfigureAwait(false));
                            }
                            catch (Exception ex)
                            {
                                // Outcome-based execution expects no throw: a transport exception is a recorded failure.
                                return Outcome.FromException<AttemptResult>(ex);
                            }
                        },
                        ctx,
                        s).ConfigureAwait(false);
                    return inner;
                },
                context,
                (key, attempt, state)).ConfigureAwait(false);

            if (outcome.Exception is BrokenCircuitException broken)
            {
                return new GuardedAttempt(default, true, broken.RetryAfter ?? _options.BreakDuration);
            }

            outcome.ThrowIfException();
            return new GuardedAttempt(outcome.Result, false, TimeSpan.Zero);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>Records an outcome learnt after the attempt returned (a stream cut or stalled mid-body) on both breakers.</summary>
    public void Report(string clusterId, string destinationId, string keyScopeId, in AttemptResult result)
    {
        if (RetryClassifier.IsBreakerFailure(result))
        {
            Record(clusterId, destinationId, keyScopeId, result);
        }
    }

    /// <summary>
    /// Records the outcome of an attempt made outside <see cref="ExecuteAsync{TState}"/> (a stream continuation sent by
    /// the response handler), success or failure, once on its destination's and key's breakers. A client that went away
    /// says nothing about the upstream and is not recorded.
    /// </summary>
    public void Record(string clusterId, string destinationId, string keyScopeId, in AttemptResult result)
    {
        if (result.Kind == AttemptOutcomeKind.ClientAborted)
        {
            return;
        }

        var destinationScope = CircuitScopes.Destination(destinationId);
        foreach (var (scope, breaker) in new[] { (destinationScope, GetOrAdd(destinationScope, clusterId, destinationId)), (keyScopeId, GetOrAdd(keyScopeId, clusterId, null)) })
        {
            if (!IsOpen(scope, out _))
            {
                ReplayThrough(breaker, result); // half-open with its probe in flight: refused, that probe decides
            }
        }
    }

    /// <summary>A state summary by scope (labels only, never key material), for logs and the admin surface.</summary>
    public override string ToString() =>
        string.Join("; ", _breakers.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value.State.CircuitState}"));

    internal static string DestinationId(string providerId, int index) => $"{providerId}-{index}";

    private bool SoonestOpen(IEnumerable<string> scopes, out TimeSpan soonest)
    {
        soonest = TimeSpan.MaxValue;
        foreach (var scope in scopes)
        {
            if (!IsOpen(scope, out var wait))
            {
                soonest = TimeSpan.Zero;
                return true;
            }

            soonest = wait < soonest ? wait : soonest;
        }

        if (soonest == TimeSpan.MaxValue)
        {
            soonest = TimeSpan.Zero;
            return true; // no scope at all: nothing to refuse
        }

        return false;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private Breaker GetOrAdd(string scopeId, string clusterId, string? destinationId) =>
        _breakers.GetOrAdd(scopeId, static (scope, s) => s.self.Create(scope, s.clusterId, s.destinationId), (self: this, clusterId, destinationId));

    private Breaker Create(string scopeId, string clusterId, string? destinationId)
    {
        var breaker = new Breaker(new CircuitBreakerStateProvider());
        breaker.Pipeline = new ResiliencePipelineBuilder<AttemptResult> { TimeProvider = _time }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<AttemptResult>
            {
                FailureRatio = _options.FailureRatio,
                MinimumThroughput = _options.MinimumThroughput,
                SamplingDuration = _options.SamplingDuration,
                BreakDuration = _options.BreakDuration,
                StateProvider = breaker.State,
                ShouldHandle = destinationId is null
                    ? static args => ValueTask.FromResult(args.Outcome switch
                    {
                        // A key is judged only on answers its requests got: a destination that could not be reached
                        // says nothing about the key (else one dead deployment would open every key's breaker).
                        { Exception: OperationCanceledException or BrokenCircuitException or HttpRequestException } => false,
                        { Exception: not null } => true,
                        { Result: var r } => RetryClassifier.IsBreakerFailure(r) && r.Kind != AttemptOutcomeKind.ConnectFailure,
                    })
                    : static args => ValueTask.FromResult(args.Outcome switch
                    {
                        { Exception: OperationCanceledException or BrokenCircuitException } => false,
                        { Exception: not null } => true,
                        { Result: var r } => RetryClassifier.IsBreakerFailure(r),
                    }),
                OnOpened = args =>
                {
                    breaker.OpenUntil = _time.GetUtcNow() + args.BreakDuration;
                    LogOpened(_logger, scopeId, args.BreakDuration.TotalSeconds);
                    SetDestinationHealth(clusterId, destinationId, DestinationHealth.Unhealthy, args.BreakDuration);
                    return default;
                },
                OnHalfOpened = _ =>
                {
                    LogHalfOpened(_logger, scopeId);
                    return default;
                },
                OnClosed = _ =>
                {
                    breaker.OpenUntil = default;
                    LogClosed(_logger, scopeId);
                    SetDestinationHealth(clusterId, destinationId, DestinationHealth.Healthy, TimeSpan.Zero);
                    return default;
                },
            })
            .Build();
        return breaker;
    }

    private void SetDestinationHealth(string clusterId, string? destinationId, DestinationHealth health, TimeSpan reactivation)
    {
        if (destinationId is null || _services is null)
        {
            return;
        }

        _proxyState ??= _services.GetService<IProxyStateLookup>();
        _healthUpdater ??= _services.GetService<IDestinationHealthUpdater>();
        if (_proxyState is null || _healthUpdater is null
            || !_proxyState.TryGetCluster(clusterId, out var cluster)
            || !cluster.Destinations.TryGetValue(destinationId, out var destination))
        {
            return;
        }

        // YARP re-activates an unhealthy destination by itself after the period (health Unknown), in step with the
        // breaker half-opening; whether YARP *filters* on it depends on the cluster enabling passive health checks.
        _healthUpdater.SetPassive(cluster, destination, health, reactivation);
    }

    [LoggerMessage(2200, LogLevel.Warning, "Circuit {Scope} opened for {BreakSeconds} s")]
    private static partial void LogOpened(ILogger logger, string scope, double breakSeconds);

    [LoggerMessage(2201, LogLevel.Information, "Circuit {Scope} half-open: one probe is let through")]
    private static partial void LogHalfOpened(ILogger logger, string scope);

    [LoggerMessage(2202, LogLevel.Information, "Circuit {Scope} closed")]
    private static partial void LogClosed(ILogger logger, string scope);

    /// <summary>An attempt admitted by <see cref="TryBeginClosed"/>: the two closed breakers its outcome is recorded on.</summary>
    internal readonly struct ClosedAttempt
    {
        internal ClosedAttempt(Breaker destination, Breaker key)
        {
            Destination = destination;
            Key = key;
        }

        internal Breaker? Destination { get; }

        internal Breaker? Key { get; }
    }

    internal sealed class Breaker(CircuitBreakerStateProvider state)
    {
        public CircuitBreakerStateProvider State { get; } = state;

        public ResiliencePipeline<AttemptResult> Pipeline { get; set; } = ResiliencePipeline<AttemptResult>.Empty;

        public DateTimeOffset OpenUntil { get; set; }
    }
}
