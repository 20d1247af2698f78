using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Hosting;
using TokenGateway.Providers;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.Proxy;

/// <summary>
/// Buffers the body once under the size cap, parses it once into an <see cref="LlmRequest"/>, resolves the model
/// card and reassigns the request to that model's provider cluster.
/// </summary>
internal sealed class LlmParseMiddleware(
    RequestDelegate next, IOptionsMonitor<GatewayOptions> options, ModelCatalog catalog, CostCalculator costs, ProviderRegistry providers,
    IProxyStateLookup proxyState)
{
    public Task InvokeAsync(HttpContext context) => ParseAsync(context).Then(next, context);

    /// <summary>False when the request was refused (the error is written).</summary>
    private async ValueTask<bool> ParseAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var dialect = exchange.Dialect;
        var cap = options.CurrentValue.MaxRequestBodyBytes;
        RequestBodyLimits.SetLimit(context, cap); // raise Kestrel's server-wide default (1 MiB) to this route's cap

        if (!IsJson(context.Request.ContentType))
        {
            await exchange.FailAsync(context, GatewayError.InvalidRequest,
                "Content-Type must be application/json.", "content-type");
            return false;
        }

        if (context.Request.ContentLength > cap)
        {
            // Rejected from the header alone: the body is never read.
            await RejectTooLargeAsync(context, exchange, cap);
            return false;
        }

        PooledBody? body;
        try
        {
            body = await ReadBodyAsync(context.Request.BodyReader, cap, context.RequestAborted);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            body = null; // Kestrel's per-request limit (cap + 1, RequestBodyLimits.SetLimit) was crossed mid-chunk
        }

        if (body is null)
        {
            await RejectTooLargeAsync(context, exchange, cap);
            return false;
        }

        // The pooled body and the parse metadata live until the response is done (the body is forwarded from them).
        context.Response.RegisterForDispose(body);
        if (!LlmRequestParser.TryParseBorrowed(dialect, body.Memory, out var request, out var parseError))
        {
            await exchange.FailAsync(context, GatewayError.InvalidRequest, parseError.Message, parseError.Param);
            return false;
        }

        context.Response.RegisterForDispose(request!);
        exchange.SetRequest(request!);
        if (!catalog.TryResolve(request!.Model, out var card))
        {
            await exchange.FailAsync(context, GatewayError.ModelNotFound,
                $"The model '{Truncate(request.Model)}' does not exist or is not configured on this gateway. GET /v1/models lists the models your key may use.",
                "model");
            return false;
        }

        exchange.SetModel(card);
        if (!costs.CanServe(card))
        {
            // Never silently free: an unpriced model is refused unless Pricing:UnpricedModelPolicy charges a ceiling.
            await exchange.FailAsync(context, GatewayError.ModelNotPriced,
                $"The model '{card.Name}' has no price in the catalogue, and this gateway refuses unpriced models.", "model");
            return false;
        }

        if (!providers.TryGet(card.Provider, out var provider) || !proxyState.TryGetCluster(provider.Id, out var cluster))
        {
            await exchange.FailAsync(context, GatewayError.UpstreamUnavailable,
                $"The provider for model '{card.Name}' is not configured.");
            return false;
        }

        if (!provider.HasCredential && provider.Type != ProviderType.OpenAICompatible)
        {
            await exchange.FailAsync(context, GatewayError.UpstreamUnavailable,
                $"The provider '{provider.Id}' for model '{card.Name}' has no API key configured on the gateway (environment variable {provider.Options.ApiKeyEnv}).");
            return false;
        }

        if (Translation.ProviderDialects.Upstream(dialect, provider.Type, card.Name) is not { } upstream)
        {
            await exchange.FailAsync(context, GatewayError.InvalidRequest,
                $"The model '{card.Name}' is served by a provider of the other API, and {exchange.Route} has no translation to it. "
                + "Use /v1/chat/completions or /v1/messages for this model, or a model of this API.", "model");
            return false;
        }

        exchange.SetUpstreamDialect(upstream);
        exchange.SetProvider(provider);
        context.ReassignProxyRequest(cluster);
        return true;
    }

    private static Task RejectTooLargeAsync(HttpContext context, LlmExchange exchange, long cap)
    {
        // The rest of an oversized body is not read; close the connection rather than drain it.
        context.Response.Headers.Connection = "close";
        return exchange.FailAsync(context, GatewayError.RequestTooLarge,
            $"The request body exceeds the gateway's limit of {cap} bytes. Send less context, or ask the operator to raise Gateway:MaxRequestBodyBytes.");
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null
        && (contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
            || (contentType.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && contentType.Contains("+json", StringComparison.OrdinalIgnoreCase)));

    private static string Truncate(string value) => value.Length <= 100 ? value : value[..100] + "…";

    /// <summary>Reads the whole body, or returns null as soon as it exceeds <paramref name="cap"/> bytes.</summary>
    private static async Task<PooledBody?> ReadBodyAsync(PipeReader reader, long cap, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (buffer.Length > cap)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                return null;
            }

            if (result.IsCompleted)
            {
                var body = new PooledBody((int)buffer.Length);
                buffer.CopyTo(body.Array);
                reader.AdvanceTo(buffer.End);
                return body;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}

/// <summary>A request body in an array rented from the shared pool; returned when the response is done.</summary>
internal sealed class PooledBody(int length) : IDisposable
{
    private byte[]? _array = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));

    public byte[] Array => _array ?? throw new ObjectDisposedException(nameof(PooledBody));

    public ReadOnlyMemory<byte> Memory => Array.AsMemory(0, length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _array, null) is { } array)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
