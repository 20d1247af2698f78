using TokenGateway.Core.Models;

namespace TokenGateway.Core.Resilience;

/// <summary>One model the planner may use: its card, effective settings, deployments (YARP destinations) and keys.</summary>
/// <param name="Model">The model card (the primary first, then its fallbacks).</param>
/// <param name="Settings">Effective settings for this model (defaults ← model ← team).</param>
/// <param name="DestinationIds">The YARP destination ids of the model's provider.</param>
/// <param name="Keys">The provider's key selector (shared by every request to the provider).</param>
public sealed record PlannedModel(ModelCard Model, ResilienceSettings Settings, IReadOnlyList<string> DestinationIds, KeySelector Keys);

/// <summary>Why an attempt is made.</summary>
public enum AttemptReason
{
    /// <summary>The first attempt of the request.</summary>
    Initial,
    /// <summary>A retry of the same model after a transient failure.</summary>
    Retry,
    /// <summary>A retry on another key after a 429.</summary>
    KeyRotation,
    /// <summary>The first attempt on a fallback model.</summary>
    Fallback,
    /// <summary>A continuation of a stream cut after its first byte (Anthropic, opted in).</summary>
    Continuation,
}

/// <summary>One planned upstream attempt: which model, destination and key, after which delay.</summary>
/// <param name="Number">1-based attempt number within the request (the <c>x-tokengateway-attempts</c> value once made).</param>
/// <param name="Model">The model to call.</param>
/// <param name="DestinationId">The YARP destination to send to.</param>
/// <param name="KeyIndex">Position of the provider key to use (see <see cref="KeySelector.Labels"/>).</param>
/// <param name="Delay">Time to wait before sending (back-off or an honoured Retry-After).</param>
/// <param name="Reason">Why this attempt is made.</param>
public readonly record struct PlannedAttempt(int Number, ModelCard Model, string DestinationId, int KeyIndex, TimeSpan Delay, AttemptReason Reason);

/// <summary>What the invoker does next.</summary>
public enum PlanStep
{
    /// <summary>Make <see cref="PlanDecision.Attempt"/> (after its delay).</summary>
    Attempt,
    /// <summary>The last attempt succeeded; nothing more to do.</summary>
    Succeeded,
    /// <summary>Nothing is healthy: answer 503 <c>upstream_unavailable</c> with <see cref="PlanDecision.RetryAfter"/> at once.</summary>
    FailFast,
    /// <summary>Every key is cooling down after 429s beyond the cap: answer 429 with <see cref="PlanDecision.RetryAfter"/> at once.</summary>
    RateLimited,
    /// <summary>Stop: return the last provider answer (its status and Retry-After) in the dialect's envelope.</summary>
    GiveUp,
    /// <summary>Bytes already reached the client and the stream cannot be continued: send the dialect's stream error and end abnormally.</summary>
    AbortStream,
}

/// <summary>The planner's decision.</summary>
/// <param name="Step">What to do.</param>
/// <param name="Attempt">The attempt to make when <paramref name="Step"/> is <see cref="PlanStep.Attempt"/>.</param>
/// <param name="RetryAfter">For fail-fast and rate-limited answers: the Retry-After to send.</param>
/// <param name="Detail">A short machine-friendly reason (<c>max_attempts</c>, <c>deadline</c>, <c>not_retryable</c>, …) for logs and the ledger.</param>
public readonly record struct PlanDecision(PlanStep Step, PlannedAttempt Attempt = default, TimeSpan RetryAfter = default, string? Detail = null);

/// <summary>
/// Plans the attempts of one request: the primary model's deployments and keys, then its fallback chain; after each
/// failure decides whether, where and when to try again. Pure given the clock, the random source, the shared key
/// selectors and the breaker states; the invoker makes the calls and reports each outcome to <see cref="Next"/>.
/// </summary>
/// <remarks>
/// Invariants: every attempt the planner hands out holds one outstanding slot on its key until the next call to
/// <see cref="Next"/> (or <see cref="Release"/>); no attempt starts after the total deadline; no retry happens once a
/// byte reached the client, except a stream continuation the team opted into; a <c>Retry-After</c> above the cap is
/// never waited out. One instance per request, not thread-safe.
/// </remarks>
public sealed class AttemptPlanner
{
    private readonly IReadOnlyList<PlannedModel> _chain;
    private readonly ICircuitStates _breakers;
    private readonly TimeProvider _time;
    private readonly Func<double> _random;
    private readonly Func<string, int>? _destinationLoad;
    private readonly bool _canContinueStreams;
    private int[] _destinationFailures = [];
    private DateTimeOffset _deadline;
    private int _modelIndex;
    private int _attemptsOnModel;
    private int _attempts;
    private int _rotation;
    private PlannedAttempt _current;
    private bool _holding;

    /// <summary>Creates the planner for one request.</summary>
    /// <param name="chain">The primary model then its fallbacks (see <see cref="FallbackChains.Resolve"/>); not empty.</param>
    /// <param name="breakers">Circuit-breaker states per destination and key.</param>
    /// <param name="time">The clock.</param>
    /// <param name="random">Draws in [0, 1) for back-off jitter; <see cref="Random.Shared"/> when null.</param>
    /// <param name="destinationLoad">Outstanding requests per destination (YARP's count); ties fall back to rotation.</param>
    /// <param name="canContinueStreams">True when the request's dialect supports stream continuation (Anthropic messages).</param>
    public AttemptPlanner(
        IReadOnlyList<PlannedModel> chain,
        ICircuitStates breakers,
        TimeProvider time,
        Func<double>? random = null,
        Func<string, int>? destinationLoad = null,
        bool canContinueStreams = false)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentOutOfRangeException.ThrowIfZero(chain.Count);
        ArgumentNullException.ThrowIfNull(breakers);
        ArgumentNullException.ThrowIfNull(time);
        _chain = chain;
        _breakers = breakers;
        _time = time;
        _random = random ?? Random.Shared.NextDouble;
        _destinationLoad = destinationLoad;
        _canContinueStreams = canContinueStreams;
    }

    /// <summary>Attempts handed out so far (retries, fallbacks and continuations included).</summary>
    public int Attempts => _attempts;

    /// <summary>The request's deadline (start + the primary model's total timeout).</summary>
    public DateTimeOffset Deadline => _deadline;

    /// <summary>The settings of the model currently being tried (per-attempt timeouts for the invoker).</summary>
    public ResilienceSettings CurrentSettings => _chain[_modelIndex].Settings;

    /// <summary>The first decision: an attempt, or fail fast when no deployment or key of any model in the chain is usable.</summary>
    public PlanDecision Start()
    {
        _deadline = _time.GetUtcNow() + _chain[0].Settings.TotalTimeout;
        var earliest = TimeSpan.MaxValue;
        var onlyRateLimited = true;
        for (var m = 0; m < _chain.Count; m++)
        {
            EnterModel(m);
            if (TryPick(TimeSpan.Zero, AttemptReason.Initial, out var decision, ref earliest, ref onlyRateLimited))
            {
                return decision;
            }
        }

        _modelIndex = 0;
        var retryAfter = earliest == TimeSpan.MaxValue ? TimeSpan.FromSeconds(1) : Ceiling(earliest);
        return onlyRateLimited
            ? new PlanDecision(PlanStep.RateLimited, RetryAfter: retryAfter, Detail: "keys_rate_limited")
            : new PlanDecision(PlanStep.FailFast, RetryAfter: retryAfter, Detail: "circuit_open");
    }

    /// <summary>
    /// The cheap first attempt (no planner built): <paramref name="destinationId"/> (the load balancer's choice) when
    /// its breaker is closed, with the best usable key of <paramref name="keys"/> (one outstanding slot taken). False
    /// when either is unusable: the caller then builds the planner and calls <see cref="Start"/>.
    /// </summary>
    public static bool TryFirstAttempt(ModelCard model, string destinationId, KeySelector keys, ICircuitStates breakers, out PlannedAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(breakers);
        attempt = default;
        if (breakers.IsOpen(CircuitScopes.Destination(destinationId), out _))
        {
            return false;
        }

        var key = keys.TryAcquire((breakers, keys), static (s, i) => !s.breakers.IsOpen(s.keys.ScopeIds[i], out _));
        if (key < 0)
        {
            return false;
        }

        attempt = new PlannedAttempt(1, model, destinationId, key, TimeSpan.Zero, AttemptReason.Initial);
        return true;
    }

    /// <summary>
    /// Takes over a request whose first attempt (<paramref name="first"/>, from <see cref="TryFirstAttempt"/>) was made
    /// without a planner, as if <see cref="Start"/> had planned it at <paramref name="startedAt"/>;
    /// <paramref name="holding"/> says whether its key slot is still held (not yet released by the caller).
    /// </summary>
    public void Adopt(in PlannedAttempt first, DateTimeOffset startedAt, bool holding)
    {
        _deadline = startedAt + _chain[0].Settings.TotalTimeout;
        EnterModel(0);
        _attempts = 1;
        _attemptsOnModel = 1;
        _rotation = 1;
        _current = first;
        _holding = holding;
    }

    /// <summary>Reports how the last attempt ended and returns what to do next.</summary>
    public PlanDecision Next(in AttemptResult result)
    {
        if (!_holding)
        {
            throw new InvalidOperationException("Next was called without an attempt in flight; call Start first.");
        }

        var failure = RetryClassifier.Classify(result);
        Release(result, failure == FailureClass.RateLimited);
        return Decide(result, failure);
    }

    /// <summary>
    /// Reports that the last attempt, already reported as a success (its 200 headers), failed in its body: before any
    /// byte reached the client (a buffered body cut or stalled) it is retried like a transient failure; after, see
    /// <see cref="NextAfterCut"/>.
    /// </summary>
    public PlanDecision NextAfterBodyFailure(in AttemptResult result)
    {
        if (result.ClientReceivedBytes)
        {
            return NextAfterCut(result);
        }

        if (_holding)
        {
            Release(result, rateLimited: false);
        }

        return Decide(result, RetryClassifier.Classify(result));
    }

    private PlanDecision Decide(in AttemptResult result, FailureClass failure)
    {
        var settings = _chain[_modelIndex].Settings;
        switch (failure)
        {
            case FailureClass.Success:
                return new PlanDecision(PlanStep.Succeeded);
            case FailureClass.Final:
                return new PlanDecision(PlanStep.GiveUp, Detail: result.Kind == AttemptOutcomeKind.ClientAborted ? "client_aborted" : "not_retryable");
            case FailureClass.AfterFirstByte:
                return NextAfterFirstByte(result, settings);
        }

        if (failure == FailureClass.Transient)
        {
            MarkDestinationFailed(_current.DestinationId, result.RetryAfter is { } hint && hint > settings.RetryAfterCap);
        }

        var now = _time.GetUtcNow();
        var earliest = TimeSpan.MaxValue;
        var onlyRateLimited = true;
        if (_attemptsOnModel < settings.MaxAttempts)
        {
            TimeSpan delay;
            AttemptReason reason;
            if (failure == FailureClass.RateLimited)
            {
                // The key cools down until its Retry-After; another key can go at once.
                delay = TimeSpan.Zero;
                reason = AttemptReason.KeyRotation;
            }
            else
            {
                delay = result.RetryAfter is { } ra && ra <= settings.RetryAfterCap
                    ? ra
                    : Backoff.Compute(_attemptsOnModel, settings.BaseDelay, settings.MaxDelay, settings.Jitter, _random());
                reason = AttemptReason.Retry;
            }

            if (now + delay >= _deadline)
            {
                return new PlanDecision(PlanStep.GiveUp, Detail: "deadline");
            }

            if (TryPick(delay, reason, out var decision, ref earliest, ref onlyRateLimited))
            {
                return decision;
            }

            // Nothing usable now: wait for the soonest key (or, with no fallback left, breaker probe) if that is
            // within the cap and the deadline. An open breaker with a fallback available goes to the fallback.
            var mayWait = onlyRateLimited || _modelIndex == _chain.Count - 1;
            if (mayWait && earliest <= settings.RetryAfterCap && earliest > delay && now + earliest < _deadline
                && TryPick(earliest, reason, out decision, ref earliest, ref onlyRateLimited))
            {
                return decision;
            }
        }

        var exhausted = _attemptsOnModel >= settings.MaxAttempts;
        for (var m = _modelIndex + 1; m < _chain.Count; m++)
        {
            if (now >= _deadline)
            {
                return new PlanDecision(PlanStep.GiveUp, Detail: "deadline");
            }

            EnterModel(m);
            var fallbackEarliest = TimeSpan.MaxValue;
            if (TryPick(TimeSpan.Zero, AttemptReason.Fallback, out var decision, ref fallbackEarliest, ref onlyRateLimited))
            {
                return decision;
            }
        }

        return new PlanDecision(PlanStep.GiveUp, Detail: failure == FailureClass.RateLimited ? "rate_limited"
            : exhausted ? "max_attempts" : "no_healthy_upstream");
    }

    /// <summary>
    /// Reports that the last attempt, already reported as a success (its 200 headers), failed after bytes reached the
    /// client (a stream cut or stalled): a continuation when the team opted in and nothing forbids it, else
    /// <see cref="PlanStep.AbortStream"/>.
    /// </summary>
    public PlanDecision NextAfterCut(in AttemptResult result)
    {
        if (_holding)
        {
            Release(result, rateLimited: false);
        }

        return NextAfterFirstByte(result with { ClientReceivedBytes = true }, _chain[_modelIndex].Settings);
    }

    /// <summary>Frees the key slot of the attempt in flight when the invoker stops without calling <see cref="Next"/>.</summary>
    public void Release() => Release(default, rateLimited: false);

    private PlanDecision NextAfterFirstByte(in AttemptResult result, ResilienceSettings settings)
    {
        if (!(_canContinueStreams && settings.ContinueStreams) || result.ToolCallInFlight)
        {
            return new PlanDecision(PlanStep.AbortStream, Detail: result.ToolCallInFlight ? "tool_call_in_flight" : "after_first_byte");
        }

        if (_attemptsOnModel >= settings.MaxAttempts || _time.GetUtcNow() >= _deadline)
        {
            return new PlanDecision(PlanStep.AbortStream, Detail: "max_attempts");
        }

        MarkDestinationFailed(_current.DestinationId, excludeForRequest: false);
        var earliest = TimeSpan.MaxValue;
        var onlyRateLimited = true;
        return TryPick(TimeSpan.Zero, AttemptReason.Continuation, out var decision, ref earliest, ref onlyRateLimited)
            ? decision
            : new PlanDecision(PlanStep.AbortStream, Detail: "no_healthy_upstream");
    }

    private void EnterModel(int index)
    {
        _modelIndex = index;
        _attemptsOnModel = 0;
        _destinationFailures = new int[_chain[index].DestinationIds.Count];
    }

    private bool TryPick(TimeSpan delay, AttemptReason reason, out PlanDecision decision, ref TimeSpan earliest, ref bool onlyRateLimited)
    {
        var model = _chain[_modelIndex];
        var destination = PickDestination(model, delay, ref earliest, ref onlyRateLimited);
        if (destination < 0)
        {
            decision = default;
            return false;
        }

        var key = model.Keys.TryAcquire((this, model, delay), static (s, i) => !s.Item1.IsOpenAt(s.model.Keys.ScopeIds[i], s.delay, out _), delay);
        if (key < 0)
        {
            var keysFree = model.Keys.NextAvailableIn();
            if (keysFree > TimeSpan.Zero && keysFree < earliest)
            {
                earliest = keysFree;
            }

            for (var i = 0; i < model.Keys.Count; i++)
            {
                if (IsOpenAt(model.Keys.ScopeIds[i], delay, out var remaining) && !model.Keys.IsCooling(i))
                {
                    onlyRateLimited = false;
                    earliest = remaining < earliest ? remaining : earliest;
                }
            }

            decision = default;
            return false;
        }

        _attempts++;
        _attemptsOnModel++;
        _current = new PlannedAttempt(_attempts, model.Model, model.DestinationIds[destination], key, delay, reason);
        _holding = true;
        decision = new PlanDecision(PlanStep.Attempt, _current);
        return true;
    }

    private int PickDestination(PlannedModel model, TimeSpan delay, ref TimeSpan earliest, ref bool onlyRateLimited)
    {
        var ids = model.DestinationIds;
        var best = -1;
        var bestLoad = 0;
        for (var n = 0; n < ids.Count; n++)
        {
            // Rotate the scan start per request attempt so ties spread over destinations deterministically.
            var i = (n + _rotation) % ids.Count;
            if (_destinationFailures[i] == int.MaxValue)
            {
                continue;
            }

            if (IsOpenAt(CircuitScopes.Destination(ids[i]), delay, out var remaining))
            {
                onlyRateLimited = false;
                earliest = remaining < earliest ? remaining : earliest;
                continue;
            }

            var load = _destinationLoad?.Invoke(ids[i]) ?? 0;
            if (best < 0 || _destinationFailures[i] < _destinationFailures[best]
                || (_destinationFailures[i] == _destinationFailures[best] && load < bestLoad))
            {
                best = i;
                bestLoad = load;
            }
        }

        _rotation++;
        return best;
    }

    private bool IsOpenAt(string scope, TimeSpan delay, out TimeSpan remaining) =>
        _breakers.IsOpen(scope, out remaining) && remaining > delay;

    private void MarkDestinationFailed(string destinationId, bool excludeForRequest)
    {
        var ids = _chain[_modelIndex].DestinationIds;
        for (var i = 0; i < ids.Count; i++)
        {
            if (string.Equals(ids[i], destinationId, StringComparison.Ordinal))
            {
                // A Retry-After beyond the cap means "not this destination for this request".
                _destinationFailures[i] = excludeForRequest ? int.MaxValue : _destinationFailures[i] == int.MaxValue ? int.MaxValue : _destinationFailures[i] + 1;
                return;
            }
        }
    }

    private void Release(in AttemptResult result, bool rateLimited)
    {
        if (!_holding)
        {
            return;
        }

        _holding = false;
        _chain[_modelIndex].Keys.Release(_current.KeyIndex, result.RateLimits, rateLimited, result.RetryAfter);
    }

    private static TimeSpan Ceiling(TimeSpan value) =>
        TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(value.TotalSeconds)));
}
