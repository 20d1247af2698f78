using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;

namespace TokenGateway.Proxy;

/// <summary>
/// What happened to a request, in rising precedence: a report of a higher kind replaces a lower one, a lower one
/// never replaces a higher one (ADR 0002).
/// </summary>
internal enum OutcomeKind : byte
{
    /// <summary>Nothing reported yet.</summary>
    Pending = 0,

    /// <summary>The provider answered 2xx and the answer was delivered (ledger status <c>ok</c>).</summary>
    Completed = 1,

    /// <summary>The answer failed its JSON schema after all repairs and the client got an error (<c>schema_invalid</c>).</summary>
    SchemaInvalid = 2,

    /// <summary>
    /// The provider answered an error, could not be reached, timed out, broke mid-response or the gateway failed while
    /// forwarding (<c>upstream_error</c>). Outranks a completed or schema-invalid answer: a stream that broke after its
    /// answer was judged is still a broken stream.
    /// </summary>
    UpstreamFailed = 3,

    /// <summary>The client went away before the response was complete (<c>client_aborted</c>); outranks what the upstream did.</summary>
    Aborted = 4,

    /// <summary>
    /// The gateway refused the request before forwarding it (<c>rejected</c>): auth, validation, model, budget, rate.
    /// Final: a rejected request was never forwarded, so nothing later can describe it better.
    /// </summary>
    Rejected = 5,
}

/// <summary>
/// The outcome of one request: its kind (with a documented precedence), its stable error code, the usage billed for it
/// and its timings. Written only through the transitions below by the stages that observe what happened; read by
/// <see cref="ExchangeCompletion"/> alone, which settles the reservation and records the usage event.
/// </summary>
/// <remarks>
/// A mutable struct on purpose: it lives as a field of <see cref="LlmExchange"/> and is reached by reference
/// (<see cref="LlmExchange.Outcome"/>), so recording an outcome allocates nothing on the hot path. Because precedence
/// decides every conflict, the order in which stages report does not matter (a stream transform may report a schema
/// failure before or after the response handler reports the end of the stream).
/// </remarks>
internal struct ExchangeOutcome
{
    private OutcomeKind _kind;
    private string? _errorCode;
    private TokenUsage? _usage;
    private bool _estimated;
    private double? _ttftMs;
    private decimal? _costUsd;
    private TokenUsage _repairUsage;
    private decimal _repairCostUsd;
    private int _repairs;
    private bool _cacheHit;

    /// <summary>The winning kind so far.</summary>
    public readonly OutcomeKind Kind => _kind;

    /// <summary>Stable error code of the winning report (or of a non-blocking schema failure), else null.</summary>
    public readonly string? ErrorCode => _errorCode;

    /// <summary>Billed usage of the request's own upstream call, once metered (zero for upstream errors).</summary>
    public readonly TokenUsage? Usage => _usage;

    /// <summary>True when <see cref="Usage"/> was counted by the gateway because the provider gave none.</summary>
    public readonly bool Estimated => _estimated;

    /// <summary>Milliseconds from arrival to the first response byte written to the client.</summary>
    public readonly double? TtftMs => _ttftMs;

    /// <summary>The priced cost of <see cref="Usage"/>, cached by <see cref="ExchangeCompletion.ComputeCost"/>.</summary>
    public readonly decimal? CostUsd => _costUsd;

    /// <summary>Usage of the structured-output repair calls made for this request (each also its own ledger event).</summary>
    public readonly TokenUsage RepairUsage => _repairUsage;

    /// <summary>Cost of the repair calls.</summary>
    public readonly decimal RepairCostUsd => _repairCostUsd;

    /// <summary>Repair calls sent.</summary>
    public readonly int Repairs => _repairs;

    /// <summary>The ledger status for <see cref="Kind"/>; <paramref name="clientGone"/> decides a request nobody reported on.</summary>
    public readonly string Status(bool clientGone) => _kind switch
    {
        OutcomeKind.Completed => _cacheHit ? UsageStatus.CacheHit : UsageStatus.Ok,
        OutcomeKind.SchemaInvalid => UsageStatus.SchemaInvalid,
        OutcomeKind.UpstreamFailed => UsageStatus.UpstreamError,
        OutcomeKind.Aborted => UsageStatus.ClientAborted,
        OutcomeKind.Rejected => UsageStatus.Rejected,
        _ => clientGone ? UsageStatus.ClientAborted : UsageStatus.Ok,
    };

    // ------------------------------------------------------------------ transitions

    /// <summary>
    /// The gateway answered with <paramref name="error"/> before or instead of an upstream answer: upstream kinds
    /// (unavailable, timeout, auth, upstream error) are <see cref="OutcomeKind.UpstreamFailed"/>, the rest
    /// <see cref="OutcomeKind.Rejected"/>.
    /// </summary>
    public void GatewayError(GatewayError error)
    {
        var code = GatewayErrors.Describe(error).Code;
        Report(IsUpstream(error) ? OutcomeKind.UpstreamFailed : OutcomeKind.Rejected, code);
    }

    /// <summary>The request's answer was delivered (or is being delivered) normally.</summary>
    public void Completed() => Report(OutcomeKind.Completed, null);

    /// <summary>The answer came from the team's response cache (ledger status <c>cache_hit</c>): nothing was forwarded or billed.</summary>
    public void ServedFromCache()
    {
        _cacheHit = true;
        Report(OutcomeKind.Completed, null);
    }

    /// <summary>True when the answer was served from the response cache.</summary>
    public readonly bool IsCacheHit => _cacheHit;

    /// <summary>The upstream failed; <paramref name="code"/> is the stable code when one applies.</summary>
    public void UpstreamFailed(string? code) => Report(OutcomeKind.UpstreamFailed, code);

    /// <summary>The client went away; the error code reported so far (if any) is kept.</summary>
    public void Aborted() => Report(OutcomeKind.Aborted, null);

    /// <summary>
    /// The answer failed its schema. <paramref name="blocking"/> (policy <c>onFailure: error</c>): the client got an
    /// error instead of the answer; otherwise the answer was delivered marked invalid and only the code is kept.
    /// </summary>
    public void SchemaFailed(bool blocking)
    {
        var code = GatewayErrors.Describe(Core.Errors.GatewayError.SchemaValidationFailed).Code;
        if (blocking)
        {
            Report(OutcomeKind.SchemaInvalid, code);
        }
        else if (_kind <= OutcomeKind.Completed)
        {
            _errorCode = code;
        }
    }

    /// <summary>Records the usage billed for the request's own upstream call (once; later reports replace it).</summary>
    public void Metered(TokenUsage usage, bool estimated)
    {
        _usage = usage;
        _estimated = estimated;
        _costUsd = null;
    }

    /// <summary>Marks the first response byte written to the client (the first mark wins).</summary>
    public void FirstByte(double elapsedMs) => _ttftMs ??= elapsedMs;

    /// <summary>Adds one repair call's usage and cost: the one place repair costs are summed.</summary>
    public void AddRepair(TokenUsage usage, decimal costUsd)
    {
        _repairUsage += usage;
        _repairCostUsd += costUsd;
        _repairs++;
    }

    internal void CacheCost(decimal costUsd) => _costUsd = costUsd;

    private void Report(OutcomeKind kind, string? code)
    {
        if (kind > _kind)
        {
            _kind = kind;
            _errorCode = code ?? _errorCode;
        }
        else if (kind == _kind && code is not null)
        {
            _errorCode ??= code;
        }
    }

    private static bool IsUpstream(GatewayError error) =>
        error is Core.Errors.GatewayError.UpstreamUnavailable or Core.Errors.GatewayError.UpstreamTimeout
            or Core.Errors.GatewayError.ProviderAuthFailed or Core.Errors.GatewayError.UpstreamError
            or Core.Errors.GatewayError.InternalError;
}
