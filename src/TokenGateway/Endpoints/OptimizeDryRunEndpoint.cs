using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Auth;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;
using TokenGateway.Hosting;
using Microsoft.Extensions.Options;
using TokenGateway.Proxy;

namespace TokenGateway.Endpoints;

/// <summary>
/// <c>POST /v1/tokengateway/optimize</c>: runs the caller's optimization policy over a chat-completions or messages body
/// and returns the rewritten body with tokens before/after and savings per stage. Nothing is forwarded or billed.
/// </summary>
internal static class OptimizeDryRunEndpoint
{
    public static IEndpointRouteBuilder MapOptimizeDryRun(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/tokengateway/optimize", HandleAsync);
        return endpoints;
    }

    private static async Task HandleAsync(HttpContext context, VirtualKeyAuthenticator authenticator, ModelCatalog catalog,
        IPolicyProvider policies, OptimizationPipeline pipeline, IRequestTokenCounter counter,
        AdmissionController admission, IOptionsMonitor<GatewayOptions> options)
    {
        var anthropic = context.Request.Headers.ContainsKey("anthropic-version") || context.Request.Query["dialect"] == "anthropic";
        var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
        var identity = await authenticator.AuthenticateAsync(context.Request, context.RequestAborted);
        if (identity is not { } caller)
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InvalidApiKey, "Invalid or missing API key.");
            return;
        }

        // The same body cap as the LLM routes: refused from Content-Length when it says so, else while reading.
        var cap = options.CurrentValue.MaxRequestBodyBytes;
        RequestBodyLimits.SetLimit(context, cap);
        var body = context.Request.ContentLength > cap ? null : await RequestBodyLimits.ReadCappedAsync(context.Request.BodyReader, cap, context.RequestAborted);
        if (body is null)
        {
            context.Response.Headers.Connection = "close"; // the rest of the body is not read
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.RequestTooLarge,
                $"The request body exceeds the gateway's limit of {cap} bytes.");
            return;
        }

        if (!LlmRequestParser.TryParse(dialect, body, out var request, out var error))
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InvalidRequest, error.Message, error.Param);
            return;
        }

        if (!catalog.TryResolve(request!.Model, out var card))
        {
            var shown = request.Model.Length <= 100 ? request.Model : request.Model[..100] + "…";
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.ModelNotFound, $"The model '{shown}' is not configured.", "model");
            return;
        }

        var effective = await policies.GetAsync(caller.TeamId, caller.KeyId, context.RequestAborted);
        var received = counter.CountInputTokens(request, card);
        if (!await AdmitRateAsync(context, dialect, admission, effective, card, received))
        {
            return;
        }

        var route = dialect == LlmDialect.AnthropicMessages ? "/v1/messages" : "/v1/chat/completions";
        var result = pipeline.Run(request, card, effective.Optimization.Resolve(card.Name, route),
            new OutputLimits(effective.DefaultMaxTokens, effective.MaxTokensCap, 0), received);

        var response = new JsonObject
        {
            ["body"] = JsonNode.Parse(request.GetBytesToSend().Span),
            ["tokensReceived"] = result.TokensReceived,
            ["tokensSent"] = result.TokensSent,
            ["stages"] = new JsonArray(result.Stages.Select(s => (JsonNode)new JsonObject { ["name"] = s.Name, ["tokensSaved"] = s.TokensSaved }).ToArray()),
        };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString(LlmRequestParser.WriteOptions), context.RequestAborted);
    }

    /// <summary>
    /// The team's (and key's) per-minute limits, as on the LLM routes: a dry run takes one request from the
    /// requests-per-minute bucket and must fit the tokens-per-minute bucket; its tokens are given back at once
    /// (nothing is sent) and no budget is reserved or charged. False when refused (429 written).
    /// </summary>
    private static async Task<bool> AdmitRateAsync(HttpContext context, LlmDialect dialect, AdmissionController admission,
        EffectivePolicy policy, ModelCard card, int inputTokens)
    {
        if (policy.TeamRate.IsUnlimited && policy.KeyRate is not { IsUnlimited: false })
        {
            return true;
        }

        var rateOnly = policy with
        {
            TeamBudget = policy.TeamBudget with { UsdMicros = null, Tokens = null },
            KeyBudget = null,
            Models = ModelAccess.AllowAll,
            DefaultMaxTokens = null,
            MaxTokensCap = null,
        };
        var decision = await admission.AdmitAsync(new AdmissionRequest
        {
            Policy = rateOnly,
            Model = card,
            InputTokens = inputTokens,
            RequestedMaxTokens = 0,
        }, context.RequestAborted);
        foreach (var (name, value) in decision.Headers)
        {
            context.Response.Headers[name] = value;
        }

        if (decision.Lease is { } lease)
        {
            await lease.ReleaseAsync(CancellationToken.None);
            return true;
        }

        await GatewayErrorWriter.WriteAsync(context, dialect, decision.Error ?? GatewayError.RateLimited,
            decision.Message ?? "Your team's rate limit is reached.", null, decision.RetryAfter);
        return false;
    }
}
