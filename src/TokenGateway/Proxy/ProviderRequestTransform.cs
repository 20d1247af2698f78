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

        if (ApplyProviderHeaders(headers, provider, exchange) is { } azure)
        {
            context.Path = azure.Path;
            context.Query.Collection.Clear();
            context.Query.Collection["api-version"] = azure.ApiVersion;
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Adds the provider's credential in its header style and the headers it requires; for Azure returns the
    /// deployment path and api-version the request must go to. Shared by the proxy and the gateway's own calls
    /// (structured-output repairs).
    /// </summary>
    public static (string Path, string ApiVersion)? ApplyProviderHeaders(System.Net.Http.Headers.HttpHeaders headers, ResolvedProvider provider, LlmExchange exchange)
    {
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

                return null;
            case ProviderType.AzureOpenAI:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("api-key", key);
                }

                var surface = exchange.Dialect == LlmDialect.OpenAIEmbeddings ? "embeddings" : "chat/completions";
                return ($"/openai/deployments/{Uri.EscapeDataString(exchange.Model!.Name)}/{surface}", provider.Options.ApiVersion);
            default:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
                }

                if (exchange.Dialect.IsAnthropic() && !headers.Contains("anthropic-version"))
                {
                    headers.TryAddWithoutValidation("anthropic-version", provider.Options.AnthropicVersion);
                }

                return null;
        }
    }

    /// <summary>True for client headers that must never reach a provider (credentials, cookies, gateway controls).</summary>
    public static bool IsStripped(string name) => _strippedHeaders.Contains(name, StringComparer.OrdinalIgnoreCase);
}
