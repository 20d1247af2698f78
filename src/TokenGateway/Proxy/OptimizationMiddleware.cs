using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Optimization;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// Runs the token-optimization stages configured by the caller's policy (skipped for one request with
/// <c>x-tokengateway-optimize: off</c>, except the output cap, which is a team limit) and records the tokens sent and
/// the savings per stage for the headers and the ledger.
/// </summary>
internal sealed class OptimizationMiddleware(RequestDelegate next, OptimizationPipeline pipeline, OptimizationPolicies policies)
{
    public const string OptOutHeader = "x-tokengateway-optimize";

    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var effective = exchange.Policy!; // set by AdmissionMiddleware
        var policy = policies.For(effective).Resolve(exchange.Model!.Name, exchange.Route);
        if (string.Equals(context.Request.Headers[OptOutHeader], "off", StringComparison.OrdinalIgnoreCase))
        {
            policy = policy with { Enabled = false };
        }

        using (var span = GatewayActivities.Start(GatewayActivities.OptimizationSpan))
        {
            var result = pipeline.Run(exchange.Request!, exchange.Model!, policy,
                new OutputLimits(effective.DefaultMaxTokens, effective.MaxTokensCap, 0), exchange.InputTokensReceived);
            exchange.SetOptimized(result.TokensSent, result.Stages);
            span?.SetTag("tokengateway.input_tokens.sent", result.TokensSent);
        }

        return next(context);
    }
}

/// <summary>Parses each policy's raw <c>optimization</c> section once and caches it by section instance.</summary>
internal sealed class OptimizationPolicies
{
    private readonly ConditionalWeakTable<JsonObject, ScopedOptimizationPolicy> _parsed = [];

    public ScopedOptimizationPolicy For(EffectivePolicy policy)
    {
        if (policy.Optimization is not { } section)
        {
            return ScopedOptimizationPolicy.Default;
        }

        // Errors were reported when the policy was written; unknown fields are ignored here.
        return _parsed.GetValue(section, static s => ScopedOptimizationPolicy.Parse(s, out _));
    }
}
