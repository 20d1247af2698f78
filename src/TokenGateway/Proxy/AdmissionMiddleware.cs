using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// Resolves the caller's effective policy and reserves the request's worst-case cost and rate-limit quota atomically
/// (<see cref="AdmissionController"/>); rejects with 429/403 in the caller's dialect, or lowers <c>max_tokens</c> to
/// what the budget can still afford. The reservation is settled or released by <see cref="ExchangeCompletion"/>.
/// </summary>
internal sealed class AdmissionMiddleware(RequestDelegate next, IPolicyProvider policies, AdmissionController admission, AdaptiveOutputCaps adaptiveCaps)
{
    public Task InvokeAsync(HttpContext context) => AdmitWithSpanAsync(context).Then(next, context);

    private async ValueTask<bool> AdmitWithSpanAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var request = exchange.Request!; // set by LlmParseMiddleware
        using var span = GatewayActivities.Start(GatewayActivities.AdmissionSpan);
        var admitted = await AdmitAsync(context, exchange, request);
        span?.SetTag("tokengateway.admitted", admitted);
        return admitted;
    }

    /// <summary>False when the request was refused (the error is written).</summary>
    private async ValueTask<bool> AdmitAsync(HttpContext context, LlmExchange exchange, LlmRequest request)
    {
        var policy = await policies.GetAsync(exchange.TeamId!, exchange.KeyId, context.RequestAborted);
        exchange.SetPolicy(policy);

        if (exchange.Dialect == LlmDialect.AnthropicCountTokens)
        {
            // Free to call: only model access applies, no budget or quota is consumed.
            if (!policy.Models.IsAllowed(exchange.Model!.Name, request.Model))
            {
                await exchange.FailAsync(context, GatewayError.PermissionDenied,
                    $"Your team's policy does not allow the model '{exchange.Model.Name}'.", "model");
                return false;
            }

            return true;
        }

        var decision = await admission.AdmitAsync(new AdmissionRequest
        {
            Policy = policy,
            Model = exchange.Model!,
            RequestedModel = request.Model,
            InputTokens = exchange.InputTokensReceived,
            RequestedMaxTokens = request.Dialect == LlmDialect.OpenAIEmbeddings ? null : request.MaxTokens,
            Choices = request.Choices,
            AdaptiveMaxTokens = policy.AdaptiveMaxTokens is { } adaptive && request.Dialect != LlmDialect.OpenAIEmbeddings
                ? adaptiveCaps.CapFor(policy.TeamId, exchange.Model!.Name, adaptive, policy.MaxTokensCap ?? exchange.Model.MaxOutputTokens)
                : null,
        }, context.RequestAborted);

        foreach (var (name, value) in decision.Headers)
        {
            context.Response.Headers[name] = value;
        }

        if (!decision.IsAdmitted)
        {
            if (decision.Error == GatewayError.BudgetExceeded && decision.RetryAfter > TimeSpan.FromMinutes(1))
            {
                // Retry-After runs to the period reset (hours): tell SDKs that honour it not to sleep-and-retry.
                context.Response.Headers["x-should-retry"] = "false";
            }

            await exchange.FailAsync(context, decision.Error ?? GatewayError.BudgetExceeded,
                decision.Message ?? "The request was not admitted by your team's policy.", decision.Error == GatewayError.PermissionDenied ? "model" : null,
                decision.RetryAfter);
            return false;
        }

        if (decision.Lease is { } lease)
        {
            exchange.SetLease(lease);
        }

        if (decision.MaxTokensToSend is { } maxTokens && request.Dialect != LlmDialect.OpenAIEmbeddings)
        {
            request.SetMaxTokens(maxTokens);
        }

        return true;
    }
}
