using TokenGateway.Core.Dialects;
using TokenGateway.Providers;
using Yarp.ReverseProxy.Transforms;

namespace TokenGateway.Proxy;

/// <summary>
/// Swaps the caller's credential for the provider's, adapts the path for Azure, and strips headers that must not
/// reach a provider. Runs after YARP copied the client's headers.
/// </summary>
internal static class ProviderRequestTransform
{
    private static readonly string[] _strippedHeaders =
    [
        "Authorization", "x-api-key", "api-key", "Cookie", "Accept-Encoding", "Proxy-Authorization",
        "x-tokengateway-optimize", "x-tokengateway-schema",
    ];

    public static ValueTask ApplyAsync(RequestTransformContext context)
    {
        var exchange = context.HttpContext.Features.Get<LlmExchange>();
        var provider = exchange?.Provider;
        if (exchange is null || provider is null)
        {
            return ValueTask.CompletedTask;
        }

        var headers = context.ProxyRequest.Headers;
        foreach (var name in _strippedHeaders)
        {
            headers.Remove(name);
        }

        // Identity encoding keeps the response meterable without decompressing (reliability matrix D10).
        headers.TryAddWithoutValidation("Accept-Encoding", "identity");
        headers.TryAddWithoutValidation("x-tokengateway-request-id", exchange.RequestId);

        var key = provider.ApiKey;
        switch (provider.Type)
        {
            case ProviderType.Anthropic:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("x-api-key", key);
                }

                if (!headers.Contains("anthropic-version"))
                {
                    headers.TryAddWithoutValidation("anthropic-version", provider.Options.AnthropicVersion);
                }

                break;
            case ProviderType.AzureOpenAI:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("api-key", key);
                }

                var surface = exchange.Dialect == LlmDialect.OpenAIEmbeddings ? "embeddings" : "chat/completions";
                context.Path = $"/openai/deployments/{Uri.EscapeDataString(exchange.Model!.Name)}/{surface}";
                context.Query.Collection.Clear();
                context.Query.Collection["api-version"] = provider.Options.ApiVersion;
                break;
            default:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
                }

                if (exchange.Dialect.IsAnthropic() && !headers.Contains("anthropic-version"))
                {
                    headers.TryAddWithoutValidation("anthropic-version", provider.Options.AnthropicVersion);
                }

                break;
        }

        return ValueTask.CompletedTask;
    }
}
