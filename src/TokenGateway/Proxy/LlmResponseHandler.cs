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
    TimeProvider time, Resilience.CircuitBreakerRegistry breakers, Upstream.UpstreamInvoker invoker, Core.Budgets.AdmissionController admission,
    CostCalculator costs, IUsageLedger ledger, ILogger<LlmResponseHandler> logger)
{
    private readonly IResponseBodyHook[] _hooks = [.. hooks];

    private const int ReadBufferSize = 16 * 1024;

    /// <summary>How long a failed stream's error event gets to be read before the connection is reset.</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromMilliseconds(100);

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
        // Stream continuation (issue #13): Anthropic streams of teams that opted in, when no transform rewrites the events.
        var splicer = transform is null && exchange.Dialect == Core.Dialects.LlmDialect.AnthropicMessages
            && exchange.Attempts is { Count: > 0 } planned && planned.Settings.ContinueStreams
            ? new Core.Resilience.AnthropicStreamSplicer()
            : null;
        var meter = new SseStreamMeter(exchange.UpstreamDialect, suppressUsageOnlyChunk: !exchange.IsTranslated && !exchange.ClientRequestedUsage, (Core.Streaming.ISseEventHandler?)splicer ?? transform);
        using var output = new PooledBufferWriter(ReadBufferSize);
        var buffer = ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        var end = StreamEnd.Completed;
        var meterBilled = false; // the last stream's usage was billed as its own attempt event (continuation refused after)
        try
        {
            end = await PumpAsync(http, exchange, upstream, meter, transform, output, buffer);
            while (end is StreamEnd.UpstreamFailed or StreamEnd.IdleTimeout && splicer is not null)
            {
                var next = await TryContinueAsync(http, exchange, meter, splicer, end);
                if (next.Response is null || next.Meter is null)
                {
                    meterBilled = next.CutBilled;
                    break;
                }

                meter.Dispose();
                meter = next.Meter;
                using (next.Response)
                {
                    end = await PumpAsync(http, exchange, next.Response, meter, transform: null, output, buffer);
                }
            }

            if (end == StreamEnd.Completed && exchange.Attempts is { CurrentIsGuarded: false, Count: > 0 } continued)
            {
                // A continuation attempt that finished the answer: its own destination's and key's breakers see it once.
                RecordContinuationOutcome(exchange, continued, Core.Resilience.AttemptResult.Status(StatusCodes.Status200OK));
            }

            Finish(http, exchange, meter, end, output, meterBilled);
            if (output.WrittenCount > 0)
            {
                // The stream error event: best effort, the connection is aborted right after it.
                try
                {
                    await response.Body.WriteAsync(output.WrittenMemory, http.RequestAborted);
                    await response.Body.FlushAsync(http.RequestAborted);
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
                {
                    // The client is gone already; the abort below is all that is left.
                }

                output.ResetWrittenCount();
            }

            if (end != StreamEnd.Completed && end != StreamEnd.ClientGone || (!meter.SawTerminalEvent && meter.Usage is null && end != StreamEnd.ClientGone))
            {
                // The client must see an abnormal end (no clean chunked terminator), never a truncated "success". The
                // abort resets the connection, and a reset discards what the peer has not read yet: the error event
                // gets a moment to be read first.
                try
                {
                    await Task.Delay(AbortGrace, http.RequestAborted); // network time: the wall clock
                }
                catch (OperationCanceledException)
                {
                    // The client went away first.
                }

                http.Abort();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            meter.Dispose();
        }
    }

    /// <summary>How one upstream stream ended.</summary>
    private enum StreamEnd
    {
        Completed,
        ClientGone,
        UpstreamFailed,
        IdleTimeout,
        DeadlineHit,
    }

    /// <summary>Copies one upstream stream through the meter (and transform) to the client, flushing per read.</summary>
    private async Task<StreamEnd> PumpAsync(
        HttpContext http, LlmExchange exchange, HttpResponseMessage upstream, SseStreamMeter meter, ISseTransform? transform, PooledBufferWriter output, byte[] buffer)
    {
        var gateway = options.CurrentValue;
        var idle = exchange.Attempts is { Count: > 0 } attempts ? attempts.Settings.IdleTimeout : gateway.UpstreamIdleTimeout;
        using var idleCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
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
                    if (http.RequestAborted.IsCancellationRequested)
                    {
                        return StreamEnd.ClientGone;
                    }

                    if (deadlineArmed && idleCts.IsCancellationRequested)
                    {
                        LogDeadlineExceeded(logger, exchange.RequestId, gateway.RequestDeadline);
                        return StreamEnd.DeadlineHit;
                    }

                    LogUpstreamStreamFailed(logger, exchange.RequestId, idleCts.IsCancellationRequested ? "idle timeout" : ex.GetType().Name);
                    return idleCts.IsCancellationRequested ? StreamEnd.IdleTimeout : StreamEnd.UpstreamFailed;
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
                        await http.Response.Body.WriteAsync(output.WrittenMemory, http.RequestAborted);
                        await http.Response.Body.FlushAsync(http.RequestAborted);
                    }
                    catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
                    {
                        return StreamEnd.ClientGone;
                    }

                    output.ResetWrittenCount();
                }

                if (read == 0)
                {
                    return StreamEnd.Completed;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            // The body could not even be opened.
            LogUpstreamStreamFailed(logger, exchange.RequestId, ex.GetType().Name);
            return http.RequestAborted.IsCancellationRequested ? StreamEnd.ClientGone : StreamEnd.UpstreamFailed;
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return StreamEnd.ClientGone;
        }
    }

    /// <summary>
    /// Records the last stream's outcome: usage billed from what was delivered when the provider sent none (once),
    /// and, for a stream that failed after its first byte, the cut reported to the attempt's breakers and the dialect's
    /// stream error event written to <paramref name="output"/> (the caller sends it and aborts the connection).
    /// </summary>
    private void Finish(HttpContext http, LlmExchange exchange, SseStreamMeter meter, StreamEnd end, PooledBufferWriter output, bool meterBilled)
    {
        ref var outcome = ref exchange.Outcome;
        if (meterBilled)
        {
            outcome.Metered(default, estimated: false); // billed as the cut attempt's own event already
        }
        else
        {
            // Without provider usage (stream cut, abandoned, or sent without it) this bills what was delivered, once.
            var streamUsage = UsageEstimator.ForStream(meter, exchange.InputTokensSent, tokenizers, exchange.ServedModel!.Tokenizer);
            outcome.Metered(streamUsage.Usage, streamUsage.Estimated);
        }
        if (end == StreamEnd.ClientGone)
        {
            outcome.Aborted();
            return;
        }

        var failed = end != StreamEnd.Completed;
        if (!failed && (meter.SawTerminalEvent || meter.Usage is not null))
        {
            // A schema failure reported by a stream transform outranks this (precedence), whichever was reported first.
            outcome.Completed();
            return;
        }

        if (end is StreamEnd.UpstreamFailed or StreamEnd.IdleTimeout && exchange.Attempts is { Count: > 0 } attempts
            && attempts.Result is not { ClientReceivedBytes: true })
        {
            // The 200 headers looked like a success; the cut (or stall) after them makes the attempt a failure, counted
            // once. (A cut that was offered to the continuation planner was recorded there already.)
            RecordBodyFailure(exchange, attempts, CutResult(end, toolCall: false));
        }

        var deadline = end == StreamEnd.DeadlineHit;
        var code = deadline ? RequestDeadlineExceeded : end == StreamEnd.IdleTimeout ? StreamErrorEvent.IdleTimeoutCode : StreamErrorEvent.Code;
        outcome.UpstreamFailed(code);
        StreamErrorEvent.Write(output, exchange.Dialect, code,
            deadline
                ? "The request reached the gateway's deadline before the provider finished; the answer is incomplete."
                : "The provider's stream was interrupted before the answer was complete; the answer is incomplete. Retry the request.",
            meter.EventCount - meter.SuppressedEventCount);
    }

    /// <summary>
    /// A stream cut after its first byte, for a team with <c>continueStreams</c> (issue #13): asks the planner for a
    /// continuation; when it plans one, bills the cut attempt as its own usage event (on its own reservation, so the
    /// budget check covers the re-sent prefix), sends the request again with the text delivered so far as an assistant
    /// prefill, and returns the new stream's meter (splicing into the client stream) and response. Null when the stream
    /// must end with the stream error instead (tool call in flight, attempts or deadline spent, budget refused).
    /// </summary>
    private async Task<(SseStreamMeter? Meter, HttpResponseMessage? Response, bool CutBilled)> TryContinueAsync(
        HttpContext http, LlmExchange exchange, SseStreamMeter meter, Core.Resilience.AnthropicStreamSplicer splicer, StreamEnd end)
    {
        if (exchange.Attempts is not { Count: > 0 } attempts || exchange.UpstreamProvider is not { } provider || exchange.Request is not { } request
            || exchange.ServedModel is not { } model)
        {
            return default;
        }

        var result = CutResult(end, toolCall: !splicer.CanContinue);
        var billedCut = false;
        while (true)
        {
            var cut = attempts.Current;
            RecordBodyFailure(exchange, attempts, result);
            var decision = attempts.ReportCut(result);
            if (decision.Step != Core.Resilience.PlanStep.Attempt)
            {
                LogContinuationRefused(logger, exchange.RequestId, decision.Detail ?? "after_first_byte");
                return (null, null, billedCut);
            }

            if (billedCut)
            {
                // A continuation attempt that failed before its first event: nothing of it reached the client or was billed.
                if (exchange.TeamId is not null)
                {
                    ledger.Record(UsageEventFactory.ForSupersededAttempt(exchange, cut, result, exchange.StartedAt, exchange.ElapsedMs));
                }
            }
            else if (!await BillCutAttemptAsync(http, exchange, meter, splicer, cut, end, model))
            {
                attempts.AbortPlanned("budget");
                LogContinuationRefused(logger, exchange.RequestId, "budget");
                return default;
            }

            billedCut = true;
            var delivered = splicer.DeliveredText.TrimEnd(); // Anthropic refuses a prefill ending in whitespace
            var maxTokens = request.MaxTokens is { } max ? max - (int)Math.Min(int.MaxValue, splicer.PriorOutputTokens) : (int?)null;
            if (maxTokens is <= 0)
            {
                attempts.AbortPlanned("max_tokens_delivered");
                LogContinuationRefused(logger, exchange.RequestId, "max_tokens_delivered");
                return (null, null, true);
            }

            var next = decision.Attempt;
            attempts.Begin(next);
            LogContinuing(logger, exchange.RequestId, next.Number, delivered.Length);
            if (next.Delay > TimeSpan.Zero)
            {
                await Task.Delay(next.Delay, time, http.RequestAborted);
            }

            var body = ContinuationBody(request, delivered, maxTokens);
            var settings = attempts.Settings;
            var remaining = options.CurrentValue.RemainingFor(exchange.ElapsedMs);
            var (response, failure) = await invoker.SendStreamingAsync(http, exchange, body,
                exchange.RequestId + "_attempt" + next.Number.ToString(CultureInfo.InvariantCulture), next.DestinationId,
                remaining < settings.ResponseHeadersTimeout ? remaining : settings.ResponseHeadersTimeout);
            if (response is not null && (int)response.StatusCode is >= 200 and < 300
                && string.Equals(response.Content.Headers.ContentType?.MediaType, "text/event-stream", StringComparison.OrdinalIgnoreCase))
            {
                attempts.Report(Core.Resilience.AttemptResult.Status((int)response.StatusCode));
                // x-tokengateway-attempts left with the headers (the attempts up to the first byte): the continued stream
                // says the full count in an SSE comment before its message_stop, which every SSE parser skips.
                splicer.TrailerComment = AttemptsComment + attempts.Count.ToString(CultureInfo.InvariantCulture);
                return (new SseStreamMeter(exchange.Dialect, suppressUsageOnlyChunk: false, splicer), response, true);
            }

            // No usable answer: nothing of it reached the client; the planner decides whether to continue elsewhere.
            result = response is null
                ? new Core.Resilience.AttemptResult(failure, ClientReceivedBytes: true)
                : new Core.Resilience.AttemptResult(Core.Resilience.AttemptOutcomeKind.Response, (int)response.StatusCode, ClientReceivedBytes: true);
            response?.Dispose();
            if (failure == Core.Resilience.AttemptOutcomeKind.ClientAborted && response is null)
            {
                attempts.ReportCut(result);
                return (null, null, true);
            }

            end = StreamEnd.UpstreamFailed;
        }
    }

    /// <summary>
    /// Bills the cut attempt as its own usage event: what it delivered (the provider's usage when it sent any, else
    /// estimated), on a reservation of its own sized for the prefix the continuation re-sends (its input and delivered
    /// output, as input) plus its delivered output, so admission refuses when the budget cannot take the continuation.
    /// False when refused: the stream then ends with the error and the request's own lease bills the cut attempt.
    /// </summary>
    private async Task<bool> BillCutAttemptAsync(
        HttpContext http, LlmExchange exchange, SseStreamMeter meter, Core.Resilience.AnthropicStreamSplicer splicer, Core.Resilience.PlannedAttempt cut,
        StreamEnd end, Core.Models.ModelCard model)
    {
        var billed = UsageEstimator.ForStream(meter, exchange.InputTokensSent, tokenizers, model.Tokenizer);
        Core.Budgets.AdmissionLease? lease = null;
        if (exchange.Policy is { } policy)
        {
            var admitted = await admission.AdmitAsync(new Core.Budgets.AdmissionRequest
            {
                Policy = policy,
                Model = model,
                RequestedModel = model.Name,
                InputTokens = (int)Math.Min(int.MaxValue, (long)billed.Usage.InputTokens + billed.Usage.OutputTokens),
                RequestedMaxTokens = Math.Max(1, billed.Usage.OutputTokens),
            }, http.RequestAborted);
            if (!admitted.IsAdmitted)
            {
                return false;
            }

            lease = admitted.Lease;
        }

        var cost = costs.TryCalculate(model, billed.Usage, out var c) ? c : 0m;
        if (exchange.TeamId is not null) // journaled before the settle, as every usage event (ExchangeCompletion)
        {
            ledger.Record(UsageEventFactory.ForContinuedAttempt(exchange, cut, exchange.StartedAt, billed.Usage, billed.Estimated, cost,
                end == StreamEnd.IdleTimeout ? StreamErrorEvent.IdleTimeoutCode : StreamErrorEvent.Code));
        }

        if (lease is not null)
        {
            await lease.SettleAsync(cost, billed.Usage, CancellationToken.None);
        }

        splicer.BeginContinuation(billed.Usage.InputTokens, billed.Usage.OutputTokens);
        return true;
    }

    /// <summary>The request once more, its answer so far as an assistant prefill, <c>max_tokens</c> lowered by what was delivered.</summary>
    private static ReadOnlyMemory<byte> ContinuationBody(Core.Dialects.LlmRequest request, string delivered, int? maxTokens)
    {
        var body = (System.Text.Json.Nodes.JsonObject)request.Body.DeepClone();
        if (maxTokens is { } max)
        {
            body[request.MaxTokensField] = max;
        }

        if (delivered.Length > 0 && body["messages"] is System.Text.Json.Nodes.JsonArray messages)
        {
            if (messages.Count > 0 && messages[^1] is System.Text.Json.Nodes.JsonObject last && last["role"]?.GetValue<string>() == "assistant")
            {
                // The client prefilled already: the delivered text follows its prefill.
                switch (last["content"])
                {
                    case System.Text.Json.Nodes.JsonValue text when text.TryGetValue<string>(out var prefix):
                        last["content"] = prefix + delivered;
                        break;
                    case System.Text.Json.Nodes.JsonArray blocks:
                        blocks.Add(new System.Text.Json.Nodes.JsonObject { ["type"] = "text", ["text"] = delivered });
                        break;
                    default:
                        last["content"] = delivered;
                        break;
                }
            }
            else
            {
                messages.Add(new System.Text.Json.Nodes.JsonObject { ["role"] = "assistant", ["content"] = delivered });
            }
        }

        return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(body);
    }

    /// <summary>The SSE comment carrying the full attempt count of a continued stream (see <see cref="TryContinueAsync"/>).</summary>
    public const string AttemptsComment = ResilienceMiddleware.AttemptsHeader + ": ";

    /// <summary>
    /// Records a failure learnt after an attempt's headers (a cut, an idle body) once: the attempt the middleware runs
    /// through its breakers records it when that execution returns; a continuation attempt, sent by this handler outside
    /// it, is reported on its own destination's and key's breakers here.
    /// </summary>
    private void RecordBodyFailure(LlmExchange exchange, UpstreamAttempts attempts, in Core.Resilience.AttemptResult failure)
    {
        if (!attempts.DeferBreakerFailure(failure))
        {
            RecordContinuationOutcome(exchange, attempts, failure);
        }
    }

    private void RecordContinuationOutcome(LlmExchange exchange, UpstreamAttempts attempts, in Core.Resilience.AttemptResult result)
    {
        if (exchange.UpstreamProvider is { } provider)
        {
            breakers.Record(provider.Id, attempts.Current.DestinationId, Core.Resilience.CircuitScopes.Key(provider.Id, attempts.Current.KeyIndex), result);
        }
    }

    private static Core.Resilience.AttemptResult CutResult(StreamEnd end, bool toolCall) => new(
        end == StreamEnd.IdleTimeout ? Core.Resilience.AttemptOutcomeKind.BodyIdleTimeout : Core.Resilience.AttemptOutcomeKind.BodyReset,
        ClientReceivedBytes: true, ToolCallInFlight: toolCall);

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

    /// <summary>
    /// Waits for a body read that did not complete at once, at most <paramref name="timeout"/> (else
    /// <see cref="TimeoutException"/>: the provider sent nothing for that long). The abandoned read ends when the caller
    /// disposes the body stream; its exception is observed here so it never surfaces as an unobserved task exception.
    /// </summary>
    private static async Task<int> WaitIdleAsync(Task<int> read, TimeSpan timeout, CancellationToken aborted)
    {
        try
        {
            return await read.WaitAsync(timeout, aborted);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            _ = read.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    private async Task CopyBufferedAsync(HttpContext http, LlmExchange exchange, HttpResponseMessage upstream, bool meterUsage)
    {
        var cap = options.CurrentValue.MaxResponseBodyBytes;
        // Sized from Content-Length when the provider sends one (+1 so the end is seen without growing).
        var expected = upstream.Content.Headers.ContentLength is { } length && length < cap ? (int)length + 1 : ReadBufferSize;
        using var body = new PooledBufferWriter(expected);
        // The idle timeout between body chunks (issue #13), or the request's deadline when that comes first.
        var gateway = options.CurrentValue;
        var idle = exchange.Attempts is { Count: > 0 } planned ? planned.Settings.IdleTimeout : gateway.UpstreamIdleTimeout;
        try
        {
            await using var source = await upstream.Content.ReadAsStreamAsync(http.RequestAborted);
            while (true)
            {
                var memory = body.GetMemory(Math.Min(ReadBufferSize, expected));
                // A read the connection's buffer already holds (a small answer arrives with its headers) completes at
                // once and arms no timer; only a read that has to wait is bounded by the idle timeout (issue #17: no
                // linked token source and timer per request on the happy path).
                var pending = source.ReadAsync(memory, http.RequestAborted);
                int read;
                if (pending.IsCompleted)
                {
                    read = pending.Result;
                }
                else
                {
                    var remaining = gateway.RemainingFor(exchange.ElapsedMs);
                    read = await WaitIdleAsync(pending.AsTask(), remaining < idle ? remaining : idle, http.RequestAborted);
                }

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
        catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException or TimeoutException)
        {
            if (http.RequestAborted.IsCancellationRequested)
            {
                exchange.Outcome.Aborted();
                return;
            }

            // Nothing was sent yet: another attempt may still answer (the buffered request is replayed); else the
            // client gets a clean 502, never partial JSON (reliability matrix C4).
            var timedOut = ex is TimeoutException;
            LogUpstreamStreamFailed(logger, exchange.RequestId, timedOut ? "idle timeout" : ex.GetType().Name);
            if (meterUsage && exchange.Attempts is { Count: > 0 } attempts && exchange.UpstreamProvider is { } provider)
            {
                var failure = new Core.Resilience.AttemptResult(
                    timedOut ? Core.Resilience.AttemptOutcomeKind.BodyIdleTimeout : Core.Resilience.AttemptOutcomeKind.BodyReset);
                RecordBodyFailure(exchange, attempts, failure);
                if (attempts.ReportCut(failure).Step == Core.Resilience.PlanStep.Attempt)
                {
                    return; // ResilienceMiddleware makes the next attempt; the client response is still unstarted
                }
            }

            http.Response.Headers.ContentLength = null;
            http.Response.Headers.ContentType = default;
            await exchange.FailAsync(http, timedOut ? Core.Errors.GatewayError.UpstreamTimeout : Core.Errors.GatewayError.UpstreamUnavailable,
                timedOut
                    ? "The provider stopped sending the response before it was complete (idle timeout). Retry later."
                    : "The provider closed the connection before the response was complete. Retry later.");
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

    [LoggerMessage(2305, LogLevel.Information, "Request {RequestId}: stream cut after its first byte; continuing on attempt {Attempt} with {PrefillChars} characters of prefill")]
    private static partial void LogContinuing(ILogger logger, string requestId, int attempt, int prefillChars);

    [LoggerMessage(2306, LogLevel.Information, "Request {RequestId}: stream cut after its first byte is not continued ({Reason}); it ends with the stream error")]
    private static partial void LogContinuationRefused(ILogger logger, string requestId, string reason);

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
