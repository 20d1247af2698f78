using System.Diagnostics;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Providers;

namespace TokenGateway.Proxy;

/// <summary>
/// The request feature: what the stages of one LLM request share, set as an HttpContext feature by
/// <see cref="LlmExchangeMiddleware"/> (like YARP's <c>IReverseProxyFeature</c>), never through <c>HttpContext.Items</c>.
/// </summary>
/// <remarks>
/// <para>Two halves with different rules. The <b>admission facts</b> (caller, parsed request, model card, provider,
/// policy, reservation lease) are each set exactly once, by the stage that decides them, through a <c>Set…</c>
/// method that throws on a second write; they never change afterwards. The pre-flight counts are written by the
/// metering and optimization stages only.</para>
/// <para>The <b>outcome</b> (<see cref="Outcome"/>) is what happened to the request. It changes only through its
/// transitions, whose precedence makes the order of reports irrelevant, and it is read by one step,
/// <see cref="ExchangeCompletion"/>, which settles the reservation and records the usage event (ADR 0002).</para>
/// </remarks>
internal sealed class LlmExchange
{
    private ExchangeOutcome _outcome;
    private string? _teamId;
    private string? _keyId;
    private LlmRequest? _request;
    private ModelCard? _model;
    private ResolvedProvider? _provider;
    private EffectivePolicy? _policy;
    private AdmissionLease? _lease;

    public LlmExchange(string requestId, LlmDialect dialect, string route, DateTimeOffset startedAt)
    {
        RequestId = requestId;
        Dialect = dialect;
        Route = route;
        StartedAt = startedAt;
        StartTimestamp = Stopwatch.GetTimestamp();
        UpstreamDialect = dialect;
    }

    public string RequestId { get; }
    public LlmDialect Dialect { get; }
    public string Route { get; }
    public DateTimeOffset StartedAt { get; }
    public long StartTimestamp { get; }

    // ------------------------------------------------------------------ admission facts (each set once)

    /// <summary>The caller's team (set by authentication).</summary>
    public string? TeamId => _teamId;

    /// <summary>The caller's virtual key id, never the key (set by authentication).</summary>
    public string? KeyId => _keyId;

    /// <summary>The parsed request (set by parsing).</summary>
    public LlmRequest? Request => _request;

    /// <summary>The catalogue card of the requested model (set by routing).</summary>
    public ModelCard? Model => _model;

    /// <summary>The provider whose cluster serves the model (set by routing).</summary>
    public ResolvedProvider? Provider => _provider;

    /// <summary>The caller's effective policy (set by admission).</summary>
    public EffectivePolicy? Policy => _policy;

    /// <summary>The budget/quota reservation to settle or release (set by admission when it reserved).</summary>
    public AdmissionLease? Lease => _lease;

    public void SetCaller(string teamId, string? keyId)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        _teamId = Once(_teamId, teamId, nameof(TeamId));
        _keyId = keyId;
    }

    public void SetRequest(LlmRequest request) => _request = Once(_request, request, nameof(Request));

    public void SetModel(ModelCard model) => _model = Once(_model, model, nameof(Model));

    public void SetProvider(ResolvedProvider provider) => _provider = Once(_provider, provider, nameof(Provider));

    public void SetPolicy(EffectivePolicy policy) => _policy = Once(_policy, policy, nameof(Policy));

    public void SetLease(AdmissionLease lease) => _lease = Once(_lease, lease, nameof(Lease));

    /// <summary>The request's upstream attempts (set by <see cref="ResilienceMiddleware"/> before the first one).</summary>
    public UpstreamAttempts? Attempts { get; private set; }

    public void SetAttempts(UpstreamAttempts attempts) => Attempts = Once(Attempts, attempts, nameof(Attempts));

    /// <summary>The model that served (or is serving) the request: a fallback's card after a fallback, else <see cref="Model"/>.</summary>
    public ModelCard? ServedModel => Attempts is { Count: > 0 } a ? a.Current.Model : _model;

    /// <summary>The provider of the current attempt: a fallback's provider after a fallback, else <see cref="Provider"/>.</summary>
    public ResolvedProvider? UpstreamProvider => Attempts?.Provider ?? _provider;

    // ------------------------------------------------------------------ translation (issue #16)

    /// <summary>
    /// The dialect of the upstream call: the client's own, or the provider's when the model's provider speaks the other
    /// API (set by routing). The meter reads this dialect; the client always sees <see cref="Dialect"/>.
    /// </summary>
    public LlmDialect UpstreamDialect { get; private set; }

    /// <summary>True when the request is translated to <see cref="UpstreamDialect"/> and the answer back.</summary>
    public bool IsTranslated => UpstreamDialect != Dialect;

    /// <summary>The translated body sent upstream (set by forward preparation for a translated request).</summary>
    public Translation.TranslatedRequest? Translated { get; private set; }

    public void SetUpstreamDialect(LlmDialect dialect) => UpstreamDialect = dialect;

    /// <summary>
    /// Points the upstream half at a fallback model (resilience, issue #13): its provider's dialect and, when that is
    /// not the client's, the client's body translated for it. The request transform, the response handler and the meter
    /// read these per attempt, so a fallback of the other API is translated there and back.
    /// </summary>
    public void SwitchUpstream(LlmDialect dialect, Translation.TranslatedRequest? translated)
    {
        UpstreamDialect = dialect;
        Translated = dialect == Dialect ? null : translated ?? throw new ArgumentNullException(nameof(translated));
    }

    /// <summary>
    /// The prompt counted once more on a fallback's body (its dialect, its tokenizer): <see cref="InputTokensSent"/>
    /// becomes that count and the optimizer's saving (received − sent) carries over.
    /// </summary>
    public void RecountSent(int tokensSent, TokenAnatomy? anatomy = null)
    {
        InputTokensReceived += tokensSent - InputTokensSent;
        InputTokensSent = tokensSent;
        InputAnatomy = anatomy;
    }

    /// <summary>
    /// Records the translated body and the prompt tokens counted on it (as received: the client's original body
    /// translated; as sent: the optimized body translated), in the provider's dialect with the served model's tokenizer.
    /// </summary>
    public void SetTranslated(Translation.TranslatedRequest translated, int tokensReceived, int tokensSent, TokenAnatomy? anatomySent = null)
    {
        Translated = Once(Translated, translated, nameof(Translated));
        InputTokensReceived = tokensReceived;
        InputTokensSent = tokensSent;
        InputAnatomy = anatomySent;
    }

    /// <summary>
    /// The bytes to send for <paramref name="model"/> (a fallback's name): the translated body when the request is
    /// translated, else the client's body; serialized once more only when the name changes.
    /// </summary>
    public ReadOnlyMemory<byte> BodyForModel(string model)
    {
        if (Translated is { } translated)
        {
            return translated.Serialize(model);
        }

        var request = _request!; // a body is forwarded only after parsing
        request.Body["model"] = model;
        request.MarkModified();
        return request.GetBytesToSend();
    }

    // ------------------------------------------------------------------ pre-flight counts (metering, optimization)

    /// <summary>Prompt tokens as the client sent them (counted once by the metering stage).</summary>
    public int InputTokensReceived { get; private set; }

    /// <summary>Prompt tokens as forwarded (the metering count, then the optimization stage's).</summary>
    public int InputTokensSent { get; private set; }

    /// <summary>
    /// <see cref="InputTokensSent"/> split by part of the prompt (it sums to it), from the same count; null when the
    /// prompt was not counted, or nothing was sent (a response-cache hit).
    /// </summary>
    public TokenAnatomy? InputAnatomy { get; private set; }

    /// <summary>Tokens saved per optimization stage.</summary>
    public IReadOnlyList<StageSaving> Stages { get; private set; } = [];

    /// <summary>False when the gateway added <c>stream_options.include_usage</c> and must hide the usage chunk.</summary>
    public bool ClientRequestedUsage { get; private set; } = true;

    public void SetInputTokens(int count, TokenAnatomy? anatomy = null)
    {
        InputTokensReceived = count;
        InputTokensSent = count;
        InputAnatomy = anatomy;
    }

    /// <summary>Records the optimizer's count; <paramref name="anatomySent"/> null keeps the metering split (body unchanged).</summary>
    public void SetOptimized(int tokensSent, IReadOnlyList<StageSaving> stages, TokenAnatomy? anatomySent = null)
    {
        if (anatomySent is not null || tokensSent != InputTokensSent)
        {
            InputAnatomy = anatomySent;
        }

        InputTokensSent = tokensSent;
        Stages = stages;
    }

    public void SetClientRequestedUsage(bool requested) => ClientRequestedUsage = requested;

    /// <summary>What a response-cache hit saved in dollars (the stored answer's usage at today's prices), else 0.</summary>
    public decimal CacheSavedUsd { get; private set; }

    /// <summary>
    /// Records a response-cache hit: nothing was sent upstream, so the prompt as it would have been sent and the stored
    /// answer's output tokens are saved under the stage <c>cache</c> (after the optimization stages' own savings).
    /// </summary>
    public void SetServedFromCache(int wouldBeOutputTokens, decimal wouldBeCostUsd)
    {
        Stages = [.. Stages, new StageSaving(Core.Caching.ResponseCacheKey.StageName, InputTokensSent + wouldBeOutputTokens)];
        InputTokensSent = 0;
        InputAnatomy = null; // nothing was sent
        CacheSavedUsd = wouldBeCostUsd;
    }

    // ------------------------------------------------------------------ outcome

    /// <summary>
    /// What happened to the request, changed only through its transitions. A reference to the one instance (a field of
    /// this feature, so it costs no allocation); <see cref="ExchangeCompletion"/> reads it.
    /// </summary>
    public ref ExchangeOutcome Outcome => ref _outcome;

    public double ElapsedMs => Stopwatch.GetElapsedTime(StartTimestamp).TotalMilliseconds;

    private static T Once<T>(T? current, T value, string name)
        where T : class =>
        current is null
            ? value ?? throw new ArgumentNullException(name)
            : throw new InvalidOperationException($"The request's {name} is set once, by the stage that decides it.");
}

internal static class LlmExchangeExtensions
{
    public static LlmExchange GetLlmExchange(this HttpContext context) =>
        context.Features.Get<LlmExchange>() ?? throw new InvalidOperationException("The LLM exchange feature is not set.");

    /// <summary>Records <paramref name="error"/> as the request's outcome, then writes it in the caller's dialect.</summary>
    public static Task FailAsync(this LlmExchange exchange, HttpContext context, Core.Errors.GatewayError error, string message,
        string? param = null, TimeSpan? retryAfter = null, int? status = null)
    {
        exchange.Outcome.GatewayError(error);
        return GatewayErrorWriter.WriteAsync(context, exchange.Dialect, error, message, param, retryAfter, exchange.RequestId, status);
    }
}
