using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Auth;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;
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
        IPolicyProvider policies, OptimizationPipeline pipeline, IRequestTokenCounter counter)
    {
        var anthropic = context.Request.Headers.ContainsKey("anthropic-version") || context.Request.Query["dialect"] == "anthropic";
        var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
        var identity = await authenticator.AuthenticateAsync(context.Request, context.RequestAborted);
        if (identity is not { } caller)
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InvalidApiKey, "Invalid or missing API key.");
            return;
        }

        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        if (!LlmRequestParser.TryParse(dialect, buffer.ToArray(), out var request, out var error))
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InvalidRequest, error.Message, error.Param);
            return;
        }

        if (!catalog.TryResolve(request!.Model, out var card))
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.ModelNotFound, $"The model '{request.Model}' is not configured.", "model");
            return;
        }

        var effective = await policies.GetAsync(caller.TeamId, caller.KeyId, context.RequestAborted);
        var received = counter.CountInputTokens(request, card);
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
}
