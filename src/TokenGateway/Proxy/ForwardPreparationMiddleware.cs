using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;
using TokenGateway.Core.Translation;
using TokenGateway.Proxy.Translation;
using TokenGateway.Telemetry;

namespace TokenGateway.Proxy;

/// <summary>
/// Last gateway stage before YARP forwards: asks OpenAI streams for usage, sends the canonical model name, and
/// serializes the rewritten body exactly once (untouched bodies go out byte-identical) with a correct Content-Length.
/// A request for a model of the other API is translated here, after optimization (issue #16; a refused field → 400).
/// </summary>
internal sealed class ForwardPreparationMiddleware(RequestDelegate next, IRequestTokenCounter counter)
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

        ReadOnlyMemory<byte> bytes;
        if (exchange.IsTranslated && exchange.Dialect == LlmDialect.AnthropicCountTokens)
        {
            return CountLocallyAsync(context, exchange, request, card);
        }

        if (exchange.IsTranslated)
        {
            // After optimization and the output cap: the body actually sent is the optimized body, translated.
            if (Translate(exchange, request, card, out var refused) is not { } translated)
            {
                return exchange.FailAsync(context, GatewayError.InvalidRequest,
                    $"The model '{card.Name}' is served through the other API. " + refused!.ErrorMessage, refused.Param);
            }

            bytes = translated;
        }
        else
        {
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

            // The original bytes when no stage changed the body, else the one serialization of the rewritten body.
            bytes = request.GetBytesToSend();
        }

        var headers = context.Response.Headers;
        headers["x-tokengateway-prompt-tokens-original"] = exchange.InputTokensReceived.ToString(CultureInfo.InvariantCulture);
        headers["x-tokengateway-prompt-tokens-sent"] = exchange.InputTokensSent.ToString(CultureInfo.InvariantCulture);

        // Both are array-backed; a successful TryGetArray always yields a non-null Array.
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

    /// <summary>
    /// Translates the optimized body for the provider and counts what it will bill: the translated body (sent) and the
    /// client's original body translated (received), both in the provider's dialect with the served model's tokenizer,
    /// so the savings are those of the optimizer on the body actually sent. Null when the translator refused a field.
    /// </summary>
    private ReadOnlyMemory<byte>? Translate(LlmExchange exchange, LlmRequest request, ModelCard card, out RequestTranslation? refused)
    {
        refused = null;
        var provider = exchange.Provider!; // set with the upstream dialect by LlmParseMiddleware
        var options = ProviderDialects.OptionsFor(provider.Type);
        var translation = DialectTranslator.TranslateRequest(exchange.Dialect, exchange.UpstreamDialect, request.Body, options);
        if (!translation.Succeeded)
        {
            refused = translation;
            return null;
        }

        var translated = new TranslatedRequest(translation.Body!, translation.ClientIncludeUsage); // Succeeded: Body is set
        var bytes = translated.Serialize(card.Name);
        var anatomySent = exchange.InputAnatomy;
        var sent = Count(exchange.UpstreamDialect, bytes, card, out var translatedAnatomy) is { } counted
            ? counted
            : exchange.InputTokensSent;
        if (translatedAnatomy is not null)
        {
            anatomySent = translatedAnatomy;
        }

        var received = sent;
        if (exchange.InputTokensReceived != exchange.InputTokensSent)
        {
            // The optimizer changed the prompt: what the client's own body would have cost at this provider.
            received = CountOriginal(exchange, request, card, options) ?? sent + (exchange.InputTokensReceived - exchange.InputTokensSent);
        }

        exchange.SetTranslated(translated, received, sent, anatomySent);
        return bytes;
    }

    /// <summary>
    /// <c>/v1/messages/count_tokens</c> for a model of an OpenAI API, which has no count endpoint: the body is translated
    /// as a Messages request would be and counted with the served model's tokenizer; free, like Anthropic's.
    /// </summary>
    private async Task CountLocallyAsync(HttpContext context, LlmExchange exchange, LlmRequest request, ModelCard card)
    {
        var translation = DialectTranslator.TranslateRequest(LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat, request.Body,
            ProviderDialects.OptionsFor(exchange.Provider!.Type));
        if (!translation.Succeeded)
        {
            await exchange.FailAsync(context, GatewayError.InvalidRequest,
                $"The model '{card.Name}' is served through the other API. " + translation.ErrorMessage, translation.Param);
            return;
        }

        var count = Count(LlmDialect.OpenAIChat, JsonSerializer.SerializeToUtf8Bytes(translation.Body, LlmRequestParser.WriteOptions), card, out _) ?? exchange.InputTokensReceived;
        exchange.Outcome.Metered(default, estimated: false); // counting is free
        exchange.Outcome.Completed();
        var answer = JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["input_tokens"] = count });
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = answer.Length;
        await context.Response.Body.WriteAsync(answer, context.RequestAborted);
    }

    private int? CountOriginal(LlmExchange exchange, LlmRequest request, ModelCard card, TranslationOptions options)
    {
        if (JsonNode.Parse(request.OriginalBytes.Span) is not JsonObject original)
        {
            return null;
        }

        original["model"] = card.Name;
        var translation = DialectTranslator.TranslateRequest(exchange.Dialect, exchange.UpstreamDialect, original, options);
        return translation.Body is { } body
            ? Count(exchange.UpstreamDialect, JsonSerializer.SerializeToUtf8Bytes(body, LlmRequestParser.WriteOptions), card, out _)
            : null;
    }

    private int? Count(LlmDialect dialect, ReadOnlyMemory<byte> bytes, ModelCard card, out TokenAnatomy? anatomy)
    {
        anatomy = null;
        if (!LlmRequestParser.TryParse(dialect, bytes, out var parsed, out _))
        {
            return null;
        }

        using (parsed)
        {
            var count = counter.CountInputTokens(parsed!, card, out var counted); // TryParse succeeded
            anatomy = counted;
            return count;
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
