using System.Diagnostics;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Providers;

namespace TokenGateway.Proxy;

/// <summary>
/// Everything the stages of one LLM request share: set once per request as an HttpContext feature (like YARP's
/// <c>IReverseProxyFeature</c>), never through string keys in <c>HttpContext.Items</c>.
/// </summary>
internal sealed class LlmExchange
{
    public LlmExchange(string requestId, LlmDialect dialect, string route, DateTimeOffset startedAt)
    {
        RequestId = requestId;
        Dialect = dialect;
        Route = route;
        StartedAt = startedAt;
        StartTimestamp = Stopwatch.GetTimestamp();
    }

    public string RequestId { get; }
    public LlmDialect Dialect { get; }
    public string Route { get; }
    public DateTimeOffset StartedAt { get; }
    public long StartTimestamp { get; }

    // Set by authentication.
    public string? TeamId { get; set; }
    public string? KeyId { get; set; }

    // Set by parsing and routing.
    public LlmRequest? Request { get; set; }
    public ModelCard? Model { get; set; }
    public ResolvedProvider? Provider { get; set; }

    // Set by admission: the effective policy and the budget/quota reservation to settle or release.
    public EffectivePolicy? Policy { get; set; }
    public AdmissionLease? Lease { get; set; }

    // Set by metering and optimization (pre-flight counts; counted once).
    public int InputTokensReceived { get; set; }
    public int InputTokensSent { get; set; }
    public IReadOnlyList<StageSaving> Stages { get; set; } = [];

    /// <summary>False when the gateway added <c>stream_options.include_usage</c> and must hide the usage chunk.</summary>
    public bool ClientRequestedUsage { get; set; } = true;

    // Outcome, set by the response handler or by the stage that rejected the request.
    public TokenUsage? Usage { get; set; }
    public bool Estimated { get; set; }
    public string? Status { get; set; }
    public string? ErrorCode { get; set; }
    public double? TtftMs { get; set; }
    public decimal? CostUsd { get; set; }

    // Structured-output repair calls: recorded as their own ledger events, billed to the team with this request.
    public TokenUsage RepairUsage { get; set; }
    public decimal RepairCostUsd { get; set; }

    public double ElapsedMs => Stopwatch.GetElapsedTime(StartTimestamp).TotalMilliseconds;
}

internal static class LlmExchangeExtensions
{
    public static LlmExchange GetLlmExchange(this HttpContext context) =>
        context.Features.Get<LlmExchange>() ?? throw new InvalidOperationException("The LLM exchange feature is not set.");
}
