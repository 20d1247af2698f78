using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TokenGateway.Core.Metering;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// Last gateway stage before YARP forwards: asks OpenAI streams for usage, sends the canonical model name, and
/// serializes the rewritten body exactly once (untouched bodies go out byte-identical) with a correct Content-Length.
/// </summary>
internal sealed class ForwardPreparationMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var request = exchange.Request!; // set by LlmParseMiddleware, which short-circuits otherwise
        var card = exchange.Model!;

        if (!string.Equals(request.Model, card.Name, StringComparison.Ordinal))
        {
            request.Body["model"] = card.Name;
            request.MarkModified();
        }

        // OpenAI's prompt cache is per organization (the gateway's): scope it to the team (issue #15, docs/caching.md).
        // "x-tokengateway-optimize: off" promises the client's bytes as sent, so it forgoes the scope.
        if (exchange.InputTokensSent >= Core.Caching.PromptCacheScope.MinCacheablePromptTokens
            && exchange.Provider?.Type is not Providers.ProviderType.Anthropic && exchange.TeamId is { } team
            && !string.Equals(context.Request.Headers[OptimizationMiddleware.OptOutHeader], "off", StringComparison.OrdinalIgnoreCase))
        {
            Core.Caching.PromptCacheScope.Apply(request, team, exchange.InputTokensSent);
        }

        // True when the gateway had to ask for usage itself: the usage-only chunk is then hidden from the client.
        exchange.SetClientRequestedUsage(!StreamUsageRequest.ForceIncludeUsage(request));

        var headers = context.Response.Headers;
        headers["x-tokengateway-prompt-tokens-original"] = exchange.InputTokensReceived.ToString(CultureInfo.InvariantCulture);
        headers["x-tokengateway-prompt-tokens-sent"] = exchange.InputTokensSent.ToString(CultureInfo.InvariantCulture);

        // The original bytes when no stage changed the body, else the one serialization of the rewritten body.
        // Both are array-backed; a successful TryGetArray always yields a non-null Array.
        var bytes = request.GetBytesToSend();
        context.Request.Body = MemoryMarshal.TryGetArray(bytes, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(bytes.ToArray(), writable: false);
        context.Request.ContentLength = bytes.Length;

        // The forwarder's HTTP client span (which carries traceparent upstream) and the response copy nest under it.
        var parent = Activity.Current;
        var span = GatewayActivities.Start(GatewayActivities.UpstreamSpan);
        if (span is null)
        {
            return next(context); // no listener records spans: no async frame needed around the forwarder
        }

        span.SetTag("server.address", exchange.Provider?.Id);
        try
        {
            return ForwardInSpanAsync(context, span);
        }
        finally
        {
            // This method is synchronous, so starting the span made it current for the caller too; it belongs to the
            // forwarding task's flow only (the completion in LlmExchangeMiddleware must see the request span).
            Activity.Current = parent;
        }
    }

    private async Task ForwardInSpanAsync(HttpContext context, Activity span)
    {
        using (span)
        {
            await next(context);
        }
    }
}
