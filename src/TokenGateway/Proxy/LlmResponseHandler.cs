using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Translation;
using TokenGateway.Core.Tokenization;
using TokenGateway.Hosting;
using TokenGateway.Proxy.Translation;
using Yarp.ReverseProxy.Transforms;

namespace TokenGateway.Proxy;

/// <summary>
/// Copies the upstream response to the client itself (YARP's body copy is suppressed) so that usage is metered on
/// the way: SSE streams flow event by event through <see cref="SseStreamMeter"/> and are flushed per read; JSON
/// bodies are buffered (bounded) so the cost can be sent as a header before the body.
/// </summary>
internal sealed partial class LlmResponseHandler(
    IOptionsMonitor<GatewayOptions> options, ITokenizerRegistry tokenizers, ExchangeCompletion completion, IEnumerable<IResponseBodyHook> hooks,
    TimeProvider time, Resilience.CircuitBreakerRegistry breakers, ILogger<LlmResponseHandler> logger)
{
    private readonly IResponseBodyHook[] _hooks = [.. hooks];

    private const int ReadBufferSize = 16 * 1024;

    /// <summary>Ledger error code of a stream cut at <c>Gateway:RequestDeadline</c>.</summary>
    public const string RequestDeadlineExceeded = "request_deadline_exceeded";

    public async ValueTask HandleAsync(ResponseTransformContext context)
    {
        var http = context.HttpContext;
        var exchange = http.Features.Get<LlmExchange>();
        var upstream = context.ProxyResponse;
        if (exchange is null || upstream is null)
        {
            return; // no response: LlmExchangeMiddleware maps the forwarder error
        }

        context.SuppressResponseBody = true;
        if (exchange.Attempts is { } attempts && attempts.OnResponse(upstream, time.GetUtcNow()))
        {
            // A retryable failure with attempts left: nothing is copied and the client response stays unstarted;
            // ResilienceMiddleware resets the status and makes the next attempt.
            return;
        }

        // Only the provider's allowlisted headers reach the client (YARP's copy-everything is off for LLM routes).
        exchange.UpstreamProvider?.Headers.CopyResponseHeaders(upstream, http.Response);
        var isSse = string.Equals(upstream.Content.Headers.ContentType?.MediaType, "text/event-stream", StringComparison.OrdinalIgnoreCase);
        var status = (int)upstream.StatusCode;

        if (status is < 200 or >= 300)
        {
            // Nothing was generated, so nothing is billed. A provider's JSON error passes through with its status;
            // the rest is mapped (UpstreamErrorAsync).
            exchange.Outcome.Metered(default, estimated: false);
            await UpstreamErrorAsync(http, exchange, upstream, status);
            return;
        }

        if (isSse)
        {
            await StreamAsync(http, exchange, upstream);
        }
        else
        {
            await CopyBufferedAsync(http, exchange, upstream, meterUsage: true);
        }
    }

    private async Task StreamAsync(HttpContext http, LlmExchange exchange, HttpResponseMessage upstream)
    {
        var response = http.Response;
        response.Headers.ContentLength = null; // events may be removed (the usage chunk the client did not ask for)
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();

        // One framing per stream: the meter frames the events and hands those it forwards to the transform, if any.
        // A translated stream is metered in the provider's dialect (its usage is the truth) and written in the client's.
        using var translator = exchange.IsTranslated ? CreateTranslator(exchange) : null;
        var transform = translator ?? CreateTransform(http, exchange);
        using var meter = new SseStreamMeter(exchange.UpstreamDialect, suppressUsageOnlyChunk: !exchange.IsTranslated && !exchange.ClientRequestedUsage, transform);
        using var output = new PooledBufferWriter(ReadBufferSize);
        var buffer = ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        var gateway = options.CurrentValue;
        var idle = gateway.UpstreamIdleTimeout;
        using var idleCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var upstreamFailed = false;
        var clientGone = false;
        var deadlineHit = false;
        var deadlineArmed = false;
        try
        {
            await using var source = await upstream.Content.ReadAsStreamAsync(http.RequestAborted);
            while (true)
            {
                int read;
                try
                {
                    // The idle timeout, or the request's total deadline when that comes first (same timer, no allocation).
                    var remaining = gateway.RemainingFor(exchange.ElapsedMs);
                    deadlineArmed = remaining < idle;
                    idleCts.CancelAfter(deadlineArmed ? remaining : idle);
                    read = await source.ReadAsync(buffer, idleCts.Token);
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
                {
                    clientGone = http.RequestAborted.IsCancellationRequested;
                    upstreamFailed = !clientGone;
                    deadlineHit = upstreamFailed && deadlineArmed && idleCts.IsCancellationRequested;
                    if (deadlineHit)
                    {
                        LogDeadlineExceeded(logger, exchange.RequestId, gateway.RequestDeadline);
                    }
                    else if (upstreamFailed)
                    {
                        LogUpstreamStreamFailed(logger, exchange.RequestId, ex.GetType().Name);
                    }

                    break;
                }

                if (read == 0)
                {
                    meter.Complete(output);
                    transform?.Complete(output);
                }
                else
                {
                    meter.Process(buffer.AsSpan(0, read), output);
                }

                if (output.WrittenCount > 0)
                {
                    try
                    {
                        exchange.Outcome.FirstByte(exchange.ElapsedMs);
                        await response.Body.WriteAsync(output.WrittenMemory, http.RequestAborted);
                        await response.Body.FlushAsync(http.RequestAborted);
                    }
                    catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
                    {
                        clientGone = true;
                        break;
                    }

                    output.ResetWrittenCount();
                }

                if (read == 0)
                {
                    break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        // Without provider usage (stream cut, abandoned, or sent without it) this bills what was delivered, once.
        var streamUsage = UsageEstimator.ForStream(meter, exchange.InputTokensSent, tokenizers, exchange.ServedModel!.Tokenizer);
        ref var outcome = ref exchange.Outcome;
        outcome.Metered(streamUsage.Usage, streamUsage.Estimated);
        if (clientGone)
        {
            outcome.Aborted();
        }
        else if (upstreamFailed || (!meter.SawTerminalEvent && meter.Usage is null))
        {
            if (upstreamFailed && !deadlineHit && exchange.Attempts is { Count: > 0 } attempts && exchange.UpstreamProvider is { } provider)
            {
                // The attempt's breakers counted the 200 headers; the cut (or stall) after them is a failure too.
                var cut = new Core.Resilience.AttemptResult(
                    idleCts.IsCancellationRequested ? Core.Resilience.AttemptOutcomeKind.BodyIdleTimeout : Core.Resilience.AttemptOutcomeKind.BodyReset,
                    ClientReceivedBytes: true);
                breakers.Report(provider.Id, attempts.Current.DestinationId, Core.Resilience.CircuitScopes.Key(provider.Id, attempts.Current.KeyIndex), cut);
            }

            // The client must see an abnormal end (no clean chunked terminator), never a truncated "success".
            outcome.UpstreamFailed(deadlineHit ? RequestDeadlineExceeded : null);
            http.Abort();
        }
        else
        {
            // A schema failure reported by a stream transform outranks this (precedence), whichever was reported first.
            outcome.Completed();
        }
    }

    /// <summary>
    /// A non-2xx upstream answer: 401/403 means the gateway's own provider key was refused, which the client must not
    /// mistake for its key being bad (502 <c>upstream_auth_failed</c>, logged as an error, the key never shown); a
    /// redirect is never followed (502 <c>upstream_error</c>); a JSON error passes through with its status and body; any
    /// other body (an HTML page from a load balancer) becomes the dialect's envelope with <c>upstream_error</c> and the
    /// provider's status (issue #12 item 10).
    /// </summary>
    private Task UpstreamErrorAsync(HttpContext http, LlmExchange exchange, HttpResponseMessage upstream, int status)
    {
        var provider = exchange.UpstreamProvider!; // a response exists only for a forwarded request
        if (status is 401 or 403)
        {
            LogProviderAuthFailed(logger, provider.Id, status, provider.Options.ApiKeyEnv ?? "(none)", exchange.RequestId);
            return exchange.FailAsync(http, Core.Errors.GatewayError.ProviderAuthFailed,
                $"The provider '{provider.Id}' refused the gateway's credential (HTTP {status}). This is a gateway configuration problem, not your key; the operator has been alerted in the gateway log.");
        }

        exchange.Outcome.UpstreamFailed("upstream_" + status.ToString(CultureInfo.InvariantCulture));
        if (status < 400)
        {
            LogUpstreamRedirect(logger, provider.Id, status, exchange.RequestId);
            return GatewayErrorWriter.WriteAsync(http, exchange.Dialect, Core.Errors.GatewayError.UpstreamError,
                $"The provider '{provider.Id}' answered HTTP {status} (a redirect), which the gateway does not follow.", requestId: exchange.RequestId);
        }

        return CopyBufferedAsync(http, exchange, upstream, meterUsage: false);
    }

    private async Task CopyBufferedAsync(HttpContext http, LlmExchange exchange, HttpResponseMessage upstream, bool meterUsage)
    {
        var cap = options.CurrentValue.MaxResponseBodyBytes;
        // Sized from Content-Length when the provider sends one (+1 so the end is seen without growing).
        var expected = upstream.Content.Headers.ContentLength is { } length && length < cap ? (int)length + 1 : ReadBufferSize;
        using var body = new PooledBufferWriter(expected);
        try
        {
            await using var source = await upstream.Content.ReadAsStreamAsync(http.RequestAborted);
            while (true)
            {
                var memory = body.GetMemory(Math.Min(ReadBufferSize, expected));
                var read = await source.ReadAsync(memory, http.RequestAborted);
                if (read == 0)
                {
                    break;
                }

                body.Advance(read);
                if (body.WrittenCount > cap)
                {
                    exchange.Outcome.UpstreamFailed("response_too_large");
                    http.Abort();
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
        {
            if (http.RequestAborted.IsCancellationRequested)
            {
                exchange.Outcome.Aborted();
                return;
            }

            // Nothing was sent yet: the client gets a clean 502, never partial JSON (reliability matrix C4).
            LogUpstreamStreamFailed(logger, exchange.RequestId, ex.GetType().Name);
            http.Response.Headers.ContentLength = null;
            http.Response.Headers.ContentType = default;
            await exchange.FailAsync(http, Core.Errors.GatewayError.UpstreamUnavailable,
                "The provider closed the connection before the response was complete. Retry later.");
            return;
        }

        if (meterUsage)
        {
            // count_tokens answers are recognised and billed nothing; a body without usage is estimated. A translated
            // answer is metered as the provider sent it.
            var metered = UsageEstimator.ForBody(exchange.UpstreamDialect, body.WrittenSpan, exchange.InputTokensSent, tokenizers, exchange.ServedModel!.Tokenizer);
            exchange.Outcome.Metered(metered.Usage, metered.Estimated);
            exchange.Outcome.Completed();
        }

        var toWrite = body.WrittenMemory;
        var isJson = IsJson(upstream.Content.Headers.ContentType?.MediaType, body.WrittenSpan);
        var translatedBody = false;
        if (exchange.IsTranslated && (meterUsage || isJson))
        {
            // The provider's answer or error envelope in the client's dialect; the status and Retry-After are kept.
            if (TranslateBody(exchange, body.WrittenSpan, meterUsage, (int)upstream.StatusCode) is not { } translated)
            {
                var status = meterUsage ? StatusCodes.Status502BadGateway : (int)upstream.StatusCode;
                http.Response.Headers.ContentLength = null;
                if (meterUsage)
                {
                    // Billed as the provider metered it; the client got no answer.
                    LogUntranslatableAnswer(logger, exchange.RequestId, exchange.UpstreamProvider!.Id);
                    exchange.Outcome.UpstreamFailed("upstream_error");
                }

                await GatewayErrorWriter.WriteAsync(http, exchange.Dialect, Core.Errors.GatewayError.UpstreamError,
                    $"The provider '{exchange.UpstreamProvider!.Id}' answered HTTP {(int)upstream.StatusCode} with a body that cannot be translated to this API.",
                    requestId: exchange.RequestId, status: status);
                return;
            }

            toWrite = translated;
            http.Response.ContentType = "application/json";
            if (meterUsage)
            {
                SetCostHeader(http.Response, completion.TotalCost(exchange));
            }

            meterUsage = false; // the structured-output hooks do not run on translated requests (docs/translation.md)
            translatedBody = true;
        }

        if (!meterUsage && !translatedBody && !isJson)
        {
            // An error page, not a provider error: the SDK gets its own envelope (and the provider's status, so its
            // retry logic still applies); the page itself is not passed on.
            var status = (int)upstream.StatusCode;
            http.Response.Headers.ContentLength = null;
            await GatewayErrorWriter.WriteAsync(http, exchange.Dialect, Core.Errors.GatewayError.UpstreamError,
                $"The provider '{exchange.UpstreamProvider!.Id}' answered HTTP {status} with a non-JSON body. Retry later.", requestId: exchange.RequestId, status: status);
            return;
        }

        if (meterUsage)
        {
            foreach (var hook in _hooks)
            {
                if (await hook.OnBufferedBodyAsync(http, exchange, toWrite) is not { } next)
                {
                    return; // the hook wrote the response itself
                }

                toWrite = next;
            }

            SetCostHeader(http.Response, completion.TotalCost(exchange));
        }

        // No Content-Length: the body goes out chunked, so the client sees the answer complete only when the response
        // ends, after LlmExchangeMiddleware has journaled its usage event and settled its reservation. With a length
        // the client could have the whole answer while the event was still unwritten, and a replica killed in that
        // window would lose a request the client saw succeed (ReplicaKillTests, issue #14).
        http.Response.ContentLength = null;
        exchange.Outcome.FirstByte(exchange.ElapsedMs);
        try
        {
            await http.Response.Body.WriteAsync(toWrite, http.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            exchange.Outcome.Aborted();
        }
    }

    /// <summary>Sets <c>x-tokengateway-cost-usd</c> to the request's total cost (see <see cref="ExchangeCompletion.TotalCost"/>).</summary>
    internal static void SetCostHeader(HttpResponse response, decimal? totalCost)
    {
        if (totalCost is { } cost)
        {
            response.Headers["x-tokengateway-cost-usd"] = cost.ToString("0.##########", CultureInfo.InvariantCulture);
        }
    }

    private TranslatingSseTransform CreateTranslator(LlmExchange exchange) =>
        new(DialectTranslator.CreateStreamTranslator(exchange.Dialect, exchange.UpstreamDialect,
            exchange.Translated?.ClientIncludeUsage ?? true, time.GetUtcNow().ToUnixTimeSeconds()));

    /// <summary>
    /// The provider's JSON answer (<paramref name="answer"/>) or error envelope translated for the client, or null when
    /// it is not the provider's shape or cannot be represented in the client's dialect.
    /// </summary>
    private byte[]? TranslateBody(LlmExchange exchange, ReadOnlySpan<byte> body, bool answer, int status)
    {
        JsonObject? parsed;
        try
        {
            parsed = JsonNode.Parse(body) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }

        if (parsed is null)
        {
            return null;
        }

        var translated = answer
            ? DialectTranslator.TranslateAnswer(exchange.Dialect, exchange.UpstreamDialect, parsed, time.GetUtcNow().ToUnixTimeSeconds(), out _)
            : DialectTranslator.TranslateError(exchange.Dialect, exchange.UpstreamDialect, parsed, status);
        return translated is null ? null : JsonSerializer.SerializeToUtf8Bytes(translated, LlmRequestParser.WriteOptions);
    }

    private ISseTransform? CreateTransform(HttpContext http, LlmExchange exchange)
    {
        ISseTransform? single = null;
        List<ISseTransform>? several = null;
        foreach (var hook in _hooks)
        {
            if (hook.CreateStreamTransform(http, exchange) is not { } t)
            {
                continue;
            }

            if (single is null)
            {
                single = t;
            }
            else
            {
                (several ??= [single]).Add(t);
            }
        }

        return several is null ? single : new SseTransformChain([.. several]);
    }

    /// <summary>True for a JSON media type whose body starts like JSON (a JSON error the SDK can parse).</summary>
    private static bool IsJson(string? mediaType, ReadOnlySpan<byte> body)
    {
        if (mediaType is null || !mediaType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var trimmed = body.TrimStart(" \t\r\n"u8);
        return !trimmed.IsEmpty && trimmed[0] is (byte)'{' or (byte)'[';
    }

    [LoggerMessage(2304, LogLevel.Warning, "Request {RequestId}: the answer of provider {Provider} cannot be translated to the client's API; answered 502")]
    private static partial void LogUntranslatableAnswer(ILogger logger, string requestId, string provider);

    [LoggerMessage(2303, LogLevel.Warning, "Request {RequestId} reached the request deadline ({Deadline}); the stream is cut and billed for what was delivered")]
    private static partial void LogDeadlineExceeded(ILogger logger, string requestId, TimeSpan deadline);

    [LoggerMessage(2301, LogLevel.Error,
        "Provider {Provider} refused the gateway's credential with HTTP {Status}: check the provider key in environment variable {ApiKeyEnv} (request {RequestId})")]
    private static partial void LogProviderAuthFailed(ILogger logger, string provider, int status, string apiKeyEnv, string requestId);

    [LoggerMessage(2302, LogLevel.Warning, "Provider {Provider} answered a redirect (HTTP {Status}) for request {RequestId}; not followed")]
    private static partial void LogUpstreamRedirect(ILogger logger, string provider, int status, string requestId);

    [LoggerMessage(2300, LogLevel.Warning, "Upstream response body failed for request {RequestId}: {Reason}")]
    private static partial void LogUpstreamStreamFailed(ILogger logger, string requestId, string reason);
}
