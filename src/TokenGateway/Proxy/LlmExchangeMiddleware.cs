using System.Buffers.Binary;
using System.Security.Cryptography;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Telemetry;
using Yarp.ReverseProxy.Forwarder;

namespace TokenGateway.Proxy;

/// <summary>
/// Outermost stage of the proxy pipeline: gives the request its id, maps forwarding failures to the dialect's
/// 502/504, and — in a finally block, so on every exit path exactly once — settles and records the usage event.
/// </summary>
internal sealed partial class LlmExchangeMiddleware(
    RequestDelegate next, ExchangeCompletion completion, GatewayMetrics metrics, TimeProvider time, ILogger<LlmExchangeMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        LlmDialects.TryFromPath(path, out var dialect);
        var exchange = new LlmExchange(RequestIds.New(), dialect, path, time.GetUtcNow());
        context.Features.Set(exchange);
        context.Response.Headers["x-tokengateway-request-id"] = exchange.RequestId;
        using var span = GatewayActivities.Start(GatewayActivities.RequestSpan);
        metrics.RequestStarted();

        try
        {
            await next(context);
            await MapForwarderErrorAsync(context, exchange);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            exchange.Outcome.Aborted();
        }
        catch (Exception ex)
        {
            LogUnhandled(logger, ex, exchange.RequestId);
            exchange.Outcome.GatewayError(GatewayError.InternalError);
            if (!context.Response.HasStarted)
            {
                await GatewayErrorWriter.WriteAsync(context, dialect, GatewayError.InternalError,
                    $"The gateway failed to process the request (request id {exchange.RequestId}).", requestId: exchange.RequestId);
            }
            else
            {
                context.Abort();
            }
        }
        finally
        {
            metrics.RequestEnded();
            await completion.CompleteAsync(context, exchange);
        }
    }

    private async Task MapForwarderErrorAsync(HttpContext context, LlmExchange exchange)
    {
        var error = context.Features.Get<IForwarderErrorFeature>();
        if (error is null)
        {
            return;
        }

        if (error.Error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled
            or ForwarderError.ResponseBodyCanceled or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeResponseCanceled
            || context.RequestAborted.IsCancellationRequested)
        {
            exchange.Outcome.Aborted();
            return;
        }

        // The provider of the attempt that failed last (a fallback's after a fallback), not the requested model's.
        var tried = exchange.UpstreamProvider?.Id;
        LogForwarderError(logger, error.Error, tried, exchange.RequestId);
        if (context.Response.HasStarted)
        {
            // Headers and some bytes already went out: the client must see an abnormal end, never a clean one.
            exchange.Outcome.UpstreamFailed(null);
            context.Abort();
            return;
        }

        var timedOut = error.Error == ForwarderError.RequestTimedOut;
        context.Response.Headers.Clear();
        context.Response.Headers["x-tokengateway-request-id"] = exchange.RequestId;
        if (error.Exception is Providers.EntraIdUnavailableException or { InnerException: Providers.EntraIdUnavailableException })
        {
            // The gateway's own credential failed (issue #16): the client's key is fine, as with a provider 401.
            await exchange.FailAsync(context, GatewayError.ProviderAuthFailed,
                $"The gateway could not obtain a Microsoft Entra ID token for the provider '{tried}'. This is a gateway configuration problem, not your key; the operator has been alerted in the gateway log.");
            return;
        }

        context.Response.Headers["x-tokengateway-request-id"] = exchange.RequestId;
        if (exchange.Attempts is { Count: > 0 } attempts)
        {
            context.Response.Headers[ResilienceMiddleware.AttemptsHeader] = attempts.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        await exchange.FailAsync(context,
            timedOut ? GatewayError.UpstreamTimeout : GatewayError.UpstreamUnavailable,
            timedOut
                ? $"The provider '{tried}' did not respond in time. Retry later."
                : $"The provider '{tried}' could not be reached. Retry later.");
    }

    [LoggerMessage(2200, LogLevel.Error, "Unhandled error in request {RequestId}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(2201, LogLevel.Warning, "Forwarding to {Provider} failed with {Error} (request {RequestId})")]
    private static partial void LogForwarderError(ILogger logger, ForwarderError error, string? provider, string requestId);
}

/// <summary>Request ids: sortable by time, unique, and safe to show.</summary>
/// <summary>
/// Request ids: <c>req_</c> + 32 hex digits laid out like a UUIDv7 (48-bit Unix milliseconds, then 80 random bits),
/// so ids sort by time and never repeat across restarts.
/// </summary>
/// <remarks>
/// <see cref="Guid.CreateVersion7()"/> reads the kernel's random source once per id (a system call on Linux);
/// this takes the random bits from a per-thread block filled by the user-space CSPRNG 64 ids at a time.
/// </remarks>
internal static class RequestIds
{
    private const int RandomBytesPerId = 10;
    private const int IdsPerBlock = 64;

    [ThreadStatic]
    private static byte[]? t_block;

    [ThreadStatic]
    private static int t_next;

    public static string New()
    {
        var block = t_block ??= new byte[RandomBytesPerId * IdsPerBlock];
        if (t_next == 0)
        {
            RandomNumberGenerator.Fill(block);
        }

        Span<byte> id = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(id[..8], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 16);
        block.AsSpan(t_next * RandomBytesPerId, RandomBytesPerId).CopyTo(id[6..]);
        t_next = (t_next + 1) % IdsPerBlock;

        Span<char> text = stackalloc char[36];
        "req_".CopyTo(text);
        Convert.TryToHexStringLower(id, text[4..], out _);
        return new string(text);
    }
}
