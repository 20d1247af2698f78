using TokenGateway.Core.Dialects;
using TokenGateway.Proxy.Upstream;
using Yarp.ReverseProxy.Transforms;

namespace TokenGateway.Proxy;

/// <summary>
/// The proxy path's request transform: forwards only the client headers the provider's allowlist names (YARP's own
/// header copy is off for LLM routes), swaps the caller's credential for the provider's and adapts the path for
/// Azure, with the same rules as the gateway's own calls (<see cref="UpstreamHeaders"/>).
/// </summary>
internal static class ProviderRequestTransform
{
    public static ValueTask ApplyAsync(RequestTransformContext context)
    {
        var entraId = context.HttpContext.Features.Get<LlmExchange>()?.UpstreamProvider?.EntraId;
        var apply = Apply(context);
        return entraId is null ? apply : AddEntraIdAsync(context, entraId);
    }

    /// <summary>Azure OpenAI with Entra ID: the cached token as <c>Authorization: Bearer</c> (no api-key is sent).</summary>
    private static async ValueTask AddEntraIdAsync(RequestTransformContext context, Providers.EntraIdTokenSource entraId)
    {
        var authorization = await entraId.GetAuthorizationAsync(context.HttpContext.RequestAborted);
        context.ProxyRequest.Headers.Remove("Authorization");
        context.ProxyRequest.Headers.TryAddWithoutValidation("Authorization", authorization);
    }

    private static ValueTask Apply(RequestTransformContext context)
    {
        var exchange = context.HttpContext.Features.Get<LlmExchange>();
        var provider = exchange?.UpstreamProvider;
        if (exchange is null || provider is null)
        {
            return ValueTask.CompletedTask;
        }

        if (exchange.Attempts is { ConnectTimeoutOverride: { } connect })
        {
            // A model's or team's own connect timeout (the gateway default needs no per-request state).
            context.ProxyRequest.Options.Set(Resilience.ConnectTimeoutHttpClientFactory.ConnectTimeoutKey, connect);
        }

        provider.Headers.CopyRequestHeaders(context.HttpContext.Request.Headers, context,
            static (c, name, values) => RequestTransform.AddHeader(c, name, values));
        if (exchange.IsTranslated)
        {
            // A translated request goes to the provider's own route (issue #16); Azure's deployment path is set below.
            context.Path = Translation.ProviderDialects.PathOf(exchange.UpstreamDialect);
            if (!exchange.UpstreamDialect.IsAnthropic())
            {
                context.ProxyRequest.Headers.Remove("anthropic-version"); // the Anthropic client's header means nothing to an OpenAI API
            }
        }

        if (!string.IsNullOrEmpty(provider.Options.PathPrefix))
        {
            context.Path = provider.Options.MapPath(context.Path); // e.g. Gemini's /v1beta/openai root
        }

        if (UpstreamHeaders.ApplyGatewayHeaders(context.ProxyRequest.Headers, provider, exchange, exchange.RequestId) is { } azure)
        {
            context.Path = azure.Path;
            context.Query.Collection.Clear();
            context.Query.Collection["api-version"] = azure.ApiVersion;
        }

        return ValueTask.CompletedTask;
    }
}
