using TokenGateway.Auth;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Models;
using TokenGateway.Proxy;

namespace TokenGateway.Endpoints;

/// <summary><c>GET /v1/models</c>: the catalogue models this key may use, in OpenAI's or Anthropic's list shape.</summary>
internal static class ModelsEndpoint
{
    public static IEndpointRouteBuilder MapModelsEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/models", ListAsync);
        return endpoints;
    }

    private static async Task ListAsync(HttpContext context, VirtualKeyAuthenticator authenticator, ModelCatalog catalog, IPolicyProvider policies)
    {
        var anthropic = context.Request.Headers.ContainsKey("anthropic-version");
        var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
        var identity = await authenticator.AuthenticateAsync(context.Request, context.RequestAborted);
        if (identity is not { } caller)
        {
            await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InvalidApiKey, "Invalid or missing API key.");
            return;
        }

        var policy = await policies.GetAsync(caller.TeamId, caller.KeyId, context.RequestAborted);
        var models = catalog.Models.Where(card => policy.Models.IsAllowed(card.Name)).ToList();

        if (anthropic)
        {
            await context.Response.WriteAsJsonAsync(new
            {
                data = models.Select(m => new { type = "model", id = m.Name, display_name = m.Name, created_at = "2025-01-01T00:00:00Z" }),
                has_more = false,
                first_id = models.FirstOrDefault()?.Name,
                last_id = models.LastOrDefault()?.Name,
            }, context.RequestAborted);
            return;
        }

        await context.Response.WriteAsJsonAsync(new
        {
            @object = "list",
            data = models.Select(m => new { id = m.Name, @object = "model", created = 1_735_689_600, owned_by = m.Provider }),
        }, context.RequestAborted);
    }
}
