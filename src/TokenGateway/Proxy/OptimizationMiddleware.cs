using TokenGateway.Core.Budgets;
using TokenGateway.Core.Optimization;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// Runs the token-optimization stages configured by the caller's policy (skipped for one request with
/// <c>x-tokengateway-optimize: off</c>, except the output cap, which is a team limit) and records the tokens sent and
/// the savings per stage for the headers and the ledger.
/// </summary>
internal sealed class OptimizationMiddleware(RequestDelegate next, OptimizationPipeline pipeline)
{
    public const string OptOutHeader = "x-tokengateway-optimize";

    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var effective = exchange.Policy!; // set by AdmissionMiddleware
        var policy = effective.Optimization.Resolve(exchange.Model!.Name, exchange.Route); // typed when the policy was resolved
        if (string.Equals(context.Request.Headers[OptOutHeader], "off", StringComparison.OrdinalIgnoreCase))
        {
            policy = policy with { Enabled = false };
        }

        using (var span = GatewayActivities.Start(GatewayActivities.OptimizationSpan))
        {
            var result = pipeline.Run(exchange.Request!, exchange.Model!, policy,
                new OutputLimits(effective.DefaultMaxTokens, effective.MaxTokensCap, 0), exchange.InputTokensReceived);
            exchange.SetOptimized(result.TokensSent, result.Stages, result.AnatomySent);
            span?.SetTag("tokengateway.input_tokens.sent", result.TokensSent);
        }

        return next(context);
    }
}
