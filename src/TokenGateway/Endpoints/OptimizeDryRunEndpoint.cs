using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Auth;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
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
        AdmissionController admission, IOptionsMonitor<GatewayOptions> options, CostCalculator costs)
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
        var scoped = effective.Optimization.Resolve(card.Name, route);
        var limits = new OutputLimits(effective.DefaultMaxTokens, effective.MaxTokensCap, 0);
        var original = (JsonObject)request.Body.DeepClone();
        var result = pipeline.Run(request, card, scoped, limits, received);
        var cost = EstimateCost(dialect, original, request, card, result, pipeline, counter, costs, scoped, limits);

        var response = new JsonObject
        {
            ["body"] = JsonNode.Parse(request.GetBytesToSend().Span),
            ["tokensReceived"] = result.TokensReceived,
            ["tokensSent"] = result.TokensSent,
            ["stages"] = new JsonArray(result.Stages.Select(s => (JsonNode)new JsonObject { ["name"] = s.Name, ["tokensSaved"] = s.TokensSaved }).ToArray()),
            ["cost"] = cost.Priced
                ? new JsonObject
                {
                    ["priced"] = true,
                    ["beforeUsd"] = cost.BeforeUsd,
                    ["afterUsd"] = cost.AfterUsd,
                    ["beforeCachedUsd"] = cost.BeforeCachedUsd,
                    ["afterCachedUsd"] = cost.AfterCachedUsd,
                }
                : new JsonObject { ["priced"] = false, ["note"] = $"no catalogue price for '{card.Name}'" },
            ["cache"] = new JsonObject
            {
                ["previousTurn"] = cost.Turn > 1,
                ["before"] = CacheUse(cost.CacheBefore),
                ["after"] = CacheUse(cost.CacheAfter),
                ["prefixBrokenAt"] = cost.PrefixBrokenAt,
            },
        };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString(LlmRequestParser.WriteOptions), context.RequestAborted);
    }

    /// <summary>
    /// Input dollars at catalogue prices before and after optimization, and with the provider's prompt cache: the
    /// request that produced the body's latest assistant turn (its messages up to there) is optimized the same way
    /// and taken as the cache's previous turn, so a stage that rewrites an earlier turn shows as a broken prefix.
    /// </summary>
    private static RequestCostEstimate EstimateCost(LlmDialect dialect, JsonObject original, LlmRequest request, ModelCard card,
        OptimizationResult result, OptimizationPipeline pipeline, IRequestTokenCounter counter, CostCalculator costs,
        OptimizationPolicy policy, OutputLimits limits)
    {
        var model = new ConversationCostModel(counter, costs);
        if (ConversationCostModel.PreviousTurn(dialect, original) is { } previousBody &&
            LlmRequestParser.TryParse(dialect, JsonSerializer.SerializeToUtf8Bytes(previousBody, LlmRequestParser.WriteOptions), out var previous, out _))
        {
            using (previous)
            {
                var previousOriginal = (JsonObject)previous!.Body.DeepClone();
                var previousResult = pipeline.Run(previous, card, policy, limits);
                model.Add(dialect, previousOriginal, previous.Body, card, previousResult.TokensReceived, previousResult.TokensSent);
            }
        }

        return model.Add(dialect, original, request.Body, card, result.TokensReceived, result.TokensSent);
    }

    private static JsonObject CacheUse(PromptCacheUse use) => new()
    {
        ["sharedPrefixTokens"] = use.SharedPrefixTokens,
        ["readTokens"] = use.ReadTokens,
        ["writeTokens"] = use.WriteTokens,
    };

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
