using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Simulator.Endpoints;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the LLM simulator's OpenAI-, Azure OpenAI- and Anthropic-compatible routes.</summary>
public static class SimulatorEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps every simulator route under <paramref name="prefix"/> (e.g. <c>""</c> or <c>"/sim"</c>): chat completions,
    /// responses, embeddings, models, Azure deployments, Anthropic messages and count_tokens. Requires <c>AddLlmSimulator()</c>.
    /// </summary>
    public static IEndpointConventionBuilder MapLlmSimulator(this IEndpointRouteBuilder endpoints, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var handlers = endpoints.ServiceProvider.GetService<SimulatorEndpoints>()
            ?? throw new InvalidOperationException("Call services.AddLlmSimulator() before endpoints.MapLlmSimulator().");
        var group = endpoints.MapGroup(prefix.TrimEnd('/'));
        group.MapPost("/v1/chat/completions", handlers.ChatCompletionsAsync);
        group.MapPost("/v1/responses", handlers.ResponsesAsync);
        group.MapPost("/v1/embeddings", handlers.EmbeddingsAsync);
        group.MapGet("/v1/models", handlers.ModelsAsync);
        group.MapPost("/openai/deployments/{deployment}/chat/completions", handlers.AzureChatCompletionsAsync);
        group.MapPost("/openai/deployments/{deployment}/embeddings", handlers.AzureEmbeddingsAsync);
        group.MapPost("/v1/messages", handlers.MessagesAsync);
        group.MapPost("/v1/messages/count_tokens", handlers.CountTokensAsync);
        return group;
    }
}
