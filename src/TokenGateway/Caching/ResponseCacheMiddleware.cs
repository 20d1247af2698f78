using System.Buffers;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Hosting;
using TokenGateway.Proxy;
using TokenGateway.Telemetry;

namespace TokenGateway.Caching;

/// <summary>
/// The per-team exact response cache, in front of forwarding (after the body to send is final): a hit is answered here
/// (JSON with a fresh id, or the dialect's SSE replay), a miss forwards and stores the complete answer the client
/// received. Concurrent identical misses make one upstream call; the others wait for it, bounded by the request deadline.
/// </summary>
/// <remarks>
/// Only complete, successful answers are stored: the outcome must be <c>ok</c> with no error code (no upstream error,
/// abort, truncation, schema failure, client disconnect), served by the requested model (no fallback), and the captured
/// answer must end normally (<see cref="AnswerCompleteness"/>). A leader whose answer is not stored throws
/// <see cref="AnswerNotStoredException"/> out of the cache factory, so nothing is cached and each waiter forwards its own
/// request instead.
/// </remarks>
internal sealed partial class ResponseCacheMiddleware(
    RequestDelegate next, ResponseCacheStore store, CostCalculator costs, GatewayMetrics metrics, IOptionsMonitor<GatewayOptions> gateway,
    ResponseCacheClock clock, ILogger<ResponseCacheMiddleware> logger)
{
    public const string Header = "x-tokengateway-cache";

    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var settings = exchange.Policy?.Cache;
        if (settings is not { Enabled: true })
        {
            return next(context); // the fast path: teams without the cache pay nothing
        }

        var requested = context.Request.Headers[Header].ToString();
        if (string.Equals(requested, "off", StringComparison.OrdinalIgnoreCase) || !IsCacheable(exchange.Request!, settings))
        {
            context.Response.Headers[Header] = "bypass";
            metrics.CacheResult(exchange.TeamId, "bypass");
            return next(context);
        }

        var key = ResponseCacheKey.Compute(exchange.TeamId!, exchange.Route, exchange.Model!.Name, exchange.Request!.Body);
        return string.Equals(requested, "refresh", StringComparison.OrdinalIgnoreCase)
            ? MissAsync(context, exchange, settings, key)
            : LookupAsync(context, exchange, settings, key);
    }

    /// <summary>Generation dialects only; with <c>requireDeterministic</c>, only <c>temperature: 0</c> or seeded requests.</summary>
    internal static bool IsCacheable(LlmRequest request, ResponseCacheSettings settings)
    {
        if (request.Dialect is not (LlmDialect.OpenAIChat or LlmDialect.OpenAIResponses or LlmDialect.AnthropicMessages))
        {
            return false;
        }

        var body = request.Body;
        if (body["background"] is JsonValue background && background.TryGetValue<bool>(out var b) && b)
        {
            return false; // a background Responses job answers "queued", not the answer
        }

        if (!settings.RequireDeterministic)
        {
            return true;
        }

        var zeroTemperature = body["temperature"] is JsonValue t && t.TryGetValue<double>(out var temperature) && temperature == 0;
        return zeroTemperature || (body["seed"] is JsonValue seed && seed.GetValueKind() == JsonValueKind.Number);
    }

    private async Task LookupAsync(HttpContext context, LlmExchange exchange, ResponseCacheSettings settings, string key)
    {
        var lookup = new Lookup(this, context, exchange, settings);
        CachedAnswer answer;
        try
        {
            var pending = store.GetOrCreateAsync(key, lookup, static (l, _) => l.RunLeaderAsync(), settings.Ttl).AsTask();
            try
            {
                answer = await pending.WaitAsync(gateway.CurrentValue.RemainingFor(exchange.ElapsedMs), context.RequestAborted);
            }
            catch (TimeoutException) when (lookup.IsLeader)
            {
                answer = await pending; // the leader's own pipeline enforces the deadline; never write over it
            }
        }
        catch (Exception ex) when (lookup.IsLeader)
        {
            if (ex is AnswerNotStoredException)
            {
                return; // the leader's response is written; its answer was not storable
            }

            ExceptionDispatchInfo.Capture(ex).Throw();
            throw; // unreachable
        }
        catch (AnswerNotStoredException)
        {
            // The request we waited for failed or was not storable: forward our own (and store it if it is).
            LogLeaderNotStored(logger, exchange.RequestId);
            await MissAsync(context, exchange, settings, key);
            return;
        }
        catch (TimeoutException)
        {
            await exchange.FailAsync(context, GatewayError.UpstreamTimeout,
                "The identical request this one waited for did not finish within the gateway's request deadline. Retry later.");
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            exchange.Outcome.Aborted();
            return;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The leader failed in a way of its own (its client left, a gateway error): forward our own request.
            LogLeaderFailed(logger, exchange.RequestId, ex.GetType().Name);
            await MissAsync(context, exchange, settings, key);
            return;
        }

        if (!lookup.IsLeader)
        {
            await ServeHitAsync(context, exchange, answer);
        }
    }

    /// <summary>Forwards the request, captures the answer and stores it when it is complete (a <c>refresh</c> replaces the entry).</summary>
    private async Task MissAsync(HttpContext context, LlmExchange exchange, ResponseCacheSettings settings, string key)
    {
        if (await ForwardAndCaptureAsync(context, exchange, settings) is { } answer)
        {
            try
            {
                await store.SetAsync(key, answer, settings.Ttl);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogStoreFailed(logger, ex, exchange.RequestId); // the client has its answer; the cache is best effort
            }
        }
    }

    /// <summary>Runs the rest of the pipeline with a capture; returns the answer when it may be stored.</summary>
    private async Task<CachedAnswer?> ForwardAndCaptureAsync(HttpContext context, LlmExchange exchange, ResponseCacheSettings settings)
    {
        context.Response.Headers[Header] = "miss";
        metrics.CacheResult(exchange.TeamId, "miss");
        var capture = new ResponseCapture(exchange.Dialect, Math.Min(settings.MaxEntryBytes, store.MaximumPayloadBytes));
        context.Features.Set(capture);
        await next(context);

        ref var outcome = ref exchange.Outcome;
        var storable = outcome.Kind == OutcomeKind.Completed && !outcome.IsCacheHit && outcome.ErrorCode is null
            && !context.RequestAborted.IsCancellationRequested
            && context.Response.StatusCode is >= 200 and < 300
            && outcome.Usage is { } usage
            && ReferenceEquals(exchange.ServedModel, exchange.Model);
        return storable ? capture.TryBuild(exchange.Model!.Name, outcome.Usage!.Value, clock.Time.GetUtcNow()) : null;
    }

    private async Task ServeHitAsync(HttpContext context, LlmExchange exchange, CachedAnswer answer)
    {
        if (JsonNode.Parse(answer.Body.Span) is not JsonObject json)
        {
            await MissAsync(context, exchange, exchange.Policy!.Cache, ResponseCacheKey.Compute(exchange.TeamId!, exchange.Route, exchange.Model!.Name, exchange.Request!.Body));
            return;
        }

        FreshIdentity(exchange.Dialect, json, clock.Time.GetUtcNow());
        var wouldBeCost = ResponseCacheSavings.Cost(costs, exchange.Model!,
            ResponseCacheSavings.WouldBeUsage(exchange.InputTokensSent, answer.Usage.OutputTokens));
        exchange.SetServedFromCache(answer.Usage.OutputTokens, wouldBeCost);
        exchange.Outcome.ServedFromCache();
        if (exchange.Lease is { } lease)
        {
            await lease.ReleaseAsync(CancellationToken.None); // a hit costs nothing: give the reservation back at once
        }

        metrics.CacheResult(exchange.TeamId, "hit");
        metrics.CacheSaved(exchange.TeamId, exchange.Model?.Name, wouldBeCost);

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.Headers[Header] = "hit";
        response.Headers["x-tokengateway-prompt-tokens-sent"] = "0";
        response.Headers["x-tokengateway-cache-age"] = Math.Max(0, (long)(clock.Time.GetUtcNow() - answer.StoredAt).TotalSeconds).ToString(CultureInfo.InvariantCulture);
        LlmResponseHandler.SetCostHeader(response, 0m);

        var output = new ArrayBufferWriter<byte>(answer.Body.Length + 256);
        if (exchange.Request!.Stream)
        {
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            SseReplay.Write(exchange.Dialect, json, includeUsage: exchange.ClientRequestedUsage, output);
        }
        else
        {
            response.ContentType = "application/json";
            using var writer = new Utf8JsonWriter(output);
            json.WriteTo(writer);
            writer.Flush();
            response.ContentLength = output.WrittenCount;
        }

        exchange.Outcome.FirstByte(exchange.ElapsedMs);
        try
        {
            await response.Body.WriteAsync(output.WrittenMemory, context.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            exchange.Outcome.Aborted();
        }
    }

    /// <summary>
    /// A hit is a new response: chat completions and Anthropic messages get a fresh id (and chat a fresh <c>created</c>).
    /// A Responses answer keeps its id: the provider stored that response, so <c>previous_response_id</c> chaining from a
    /// hit keeps working (a made-up id would be unknown to the provider).
    /// </summary>
    internal static void FreshIdentity(LlmDialect dialect, JsonObject json, DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[12];
        RandomNumberGenerator.Fill(random);
        var suffix = Convert.ToHexStringLower(random);
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                json["id"] = "chatcmpl-tgc" + suffix;
                json["created"] = now.ToUnixTimeSeconds();
                break;
            case LlmDialect.AnthropicMessages:
                json["id"] = "msg_tgc" + suffix;
                break;
        }
    }

    /// <summary>One lookup's state: the first caller of a key runs its own pipeline as the cache factory.</summary>
    private sealed class Lookup(ResponseCacheMiddleware owner, HttpContext context, LlmExchange exchange, ResponseCacheSettings settings)
    {
        private int _leader;

        public bool IsLeader => Volatile.Read(ref _leader) == 1;

        public async ValueTask<CachedAnswer> RunLeaderAsync()
        {
            Volatile.Write(ref _leader, 1);
            return await owner.ForwardAndCaptureAsync(context, exchange, settings) ?? throw new AnswerNotStoredException();
        }
    }

    [LoggerMessage(2600, LogLevel.Debug, "Request {RequestId} waited for an identical request whose answer was not stored; forwarding its own")]
    private static partial void LogLeaderNotStored(ILogger logger, string requestId);

    [LoggerMessage(2601, LogLevel.Debug, "Request {RequestId} waited for an identical request that failed ({Reason}); forwarding its own")]
    private static partial void LogLeaderFailed(ILogger logger, string requestId, string reason);

    [LoggerMessage(2602, LogLevel.Warning, "Storing the answer of request {RequestId} in the response cache failed")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string requestId);
}

/// <summary>Thrown out of the cache factory when the leader's answer must not be stored (nothing is cached).</summary>
internal sealed class AnswerNotStoredException() : Exception("The answer is not stored in the response cache.");
