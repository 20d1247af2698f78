using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Streaming;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Proxy;

namespace TokenGateway.StructuredOutput;

/// <summary>
/// Validates structured answers on their way back: free local repairs first, then up to <c>maxRepairs</c> repair calls;
/// the client gets its dialect's normal envelope with the repaired answer and usage covering every attempt, a 502
/// <c>schema_validation_failed</c> with the errors, or (policy <c>passthrough</c>) the invalid answer marked by a header.
/// Buffered streams are replayed as SSE; streamed answers are validated at the end.
/// </summary>
internal sealed partial class StructuredOutputResponseHook(
    StructuredOutputRepairClient repairs, ExchangeCompletion completion, ILogger<StructuredOutputResponseHook> logger) : IResponseBodyHook
{
    public const string RepairedHeader = "x-tokengateway-schema-repaired";
    public const string LocalFixesHeader = "x-tokengateway-schema-local-fixes";
    public const string InvalidHeader = "x-tokengateway-schema-invalid";
    public const string RepairRefusedHeader = "x-tokengateway-schema-repair-refused";

    public ISseTransform? CreateStreamTransform(HttpContext http, LlmExchange exchange)
    {
        var feature = http.Features.Get<StructuredOutputFeature>();
        return feature is null || feature.ReplayAsSse
            ? null
            : new GuardTransform(new StreamingSchemaGuard(exchange.Dialect, feature.Enforced.Target, feature.Compiled), feature.Policy, exchange, logger);
    }

    public async ValueTask<ReadOnlyMemory<byte>?> OnBufferedBodyAsync(HttpContext http, LlmExchange exchange, ReadOnlyMemory<byte> body)
    {
        var feature = http.Features.Get<StructuredOutputFeature>();
        if (feature is null)
        {
            return body;
        }

        JsonObject? response;
        try
        {
            response = JsonNode.Parse(body.Span) as JsonObject;
        }
        catch (JsonException)
        {
            response = null;
        }

        var target = feature.Enforced.Target;
        if (response is null || !AnswerEnvelope.TryExtract(exchange.Dialect, target, response, out var answer))
        {
            // No answer to validate (refusal, another tool, unparseable envelope): deliver as the provider sent it.
            return await DeliverAsync(http, exchange, feature, response, body);
        }

        var modified = false;
        var validation = feature.Compiled.Validate(answer);
        if (!validation.IsValid && LocalJsonRepair.TryRepair(answer) is { } local)
        {
            var repaired = feature.Compiled.Validate(local.Text);
            validation = repaired;
            answer = local.Text;
            if (repaired.IsValid)
            {
                AnswerEnvelope.TryReplace(exchange.Dialect, target, response, answer);
                modified = true;
                http.Response.Headers[RepairedHeader] = "0";
                http.Response.Headers[LocalFixesHeader] = string.Join(',', local.Fixes);
            }
        }

        var calls = 0;
        while (!validation.IsValid && calls < feature.Policy.MaxRepairs)
        {
            calls++;
            var repairBody = RepairRequest.Build(exchange.Dialect, exchange.Request!.Body, answer, validation.Errors);
            var attempt = await repairs.SendAsync(http, exchange, repairBody, calls);
            if (attempt.Refused is { } refused)
            {
                // The team's budget (or rate limit) cannot cover another call: keep the verdict so far, say why.
                calls--;
                http.Response.Headers[RepairRefusedHeader] = GatewayErrors.Describe(refused).Code;
                break;
            }

            if (attempt.Response is null)
            {
                break; // the provider failed: keep the first answer's verdict
            }

            AnswerEnvelope.AddUsage(response, attempt.Response);
            modified = true;
            if (!AnswerEnvelope.TryExtract(exchange.Dialect, target, attempt.Response, out var next))
            {
                continue;
            }

            answer = next;
            validation = feature.Compiled.Validate(answer);
            if (!validation.IsValid && LocalJsonRepair.TryRepair(answer) is { } fixedLocally && feature.Compiled.Validate(fixedLocally.Text) is { IsValid: true } ok)
            {
                answer = fixedLocally.Text;
                validation = ok;
            }

            if (validation.IsValid)
            {
                AnswerEnvelope.TryReplace(exchange.Dialect, target, response, answer);
            }
        }

        if (calls > 0)
        {
            http.Response.Headers[RepairedHeader] = calls.ToString(CultureInfo.InvariantCulture);
        }

        if (!validation.IsValid)
        {
            LogAnswerInvalid(logger, exchange.RequestId, calls, validation.Errors.Count);
            var blocking = feature.Policy.OnFailure == SchemaFailureMode.Error;
            exchange.Outcome.SchemaFailed(blocking);
            if (blocking)
            {
                await WriteValidationErrorAsync(http, exchange, validation.Errors);
                return null;
            }

            http.Response.Headers[InvalidHeader] = "true";
        }

        var bytes = modified ? JsonSerializer.SerializeToUtf8Bytes(response, LlmRequestParser.WriteOptions) : body;
        return await DeliverAsync(http, exchange, feature, response, bytes);
    }

    private async ValueTask<ReadOnlyMemory<byte>?> DeliverAsync(
        HttpContext http, LlmExchange exchange, StructuredOutputFeature feature, JsonObject? response, ReadOnlyMemory<byte> bytes)
    {
        if (!feature.ReplayAsSse || response is null)
        {
            return bytes;
        }

        // Buffer mode: the client asked for a stream; replay the validated answer as one.
        SetCostHeader(http, exchange);
        var output = new ArrayBufferWriter<byte>(bytes.Length * 2 + 256);
        SseReplay.Write(exchange.Dialect, response, feature.ClientIncludeUsage, output);
        var r = http.Response;
        r.ContentType = "text/event-stream; charset=utf-8";
        r.ContentLength = null;
        r.Headers.CacheControl = "no-cache";
        exchange.Outcome.FirstByte(exchange.ElapsedMs);
        try
        {
            await r.Body.WriteAsync(output.WrittenMemory, http.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            exchange.Outcome.Aborted();
        }

        return null;
    }

    private async Task WriteValidationErrorAsync(HttpContext http, LlmExchange exchange, IReadOnlyList<SchemaError> errors)
    {
        SetCostHeader(http, exchange);
        var info = GatewayErrors.Describe(GatewayError.SchemaValidationFailed);
        var message = "The model's answer does not satisfy the required JSON schema"
            + (http.Response.Headers.ContainsKey(RepairedHeader) ? " after repair." : ".")
            + " See error.errors for JSON pointers and messages.";
        var list = new JsonArray();
        foreach (var e in errors)
        {
            list.Add(new JsonObject { ["pointer"] = e.Pointer, ["message"] = e.Message });
        }

        var error = new JsonObject { ["message"] = message, ["type"] = exchange.Dialect.IsAnthropic() ? info.AnthropicType : info.OpenAIType };
        JsonObject envelope;
        if (exchange.Dialect.IsAnthropic())
        {
            error["code"] = info.Code;
            error["errors"] = list;
            envelope = new JsonObject { ["type"] = "error", ["error"] = error, ["request_id"] = exchange.RequestId };
        }
        else
        {
            error["param"] = null;
            error["code"] = info.Code;
            error["errors"] = list;
            envelope = new JsonObject { ["error"] = error };
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(envelope);
        var r = http.Response;
        r.StatusCode = info.Status;
        r.ContentType = "application/json";
        r.ContentLength = bytes.Length;
        try
        {
            await r.Body.WriteAsync(bytes, http.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            exchange.Outcome.Aborted();
        }
    }

    private void SetCostHeader(HttpContext http, LlmExchange exchange) => LlmResponseHandler.SetCostHeader(http.Response, completion.TotalCost(exchange));

    [LoggerMessage(2502, LogLevel.Warning, "Structured answer for request {RequestId} is invalid after {Repairs} repair call(s) ({Errors} errors)")]
    private static partial void LogAnswerInvalid(ILogger logger, string requestId, int repairs, int errors);

    private sealed class GuardTransform(StreamingSchemaGuard guard, StructuredOutputPolicy policy, LlmExchange exchange, ILogger logger) : ISseTransform
    {
        public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output) => guard.OnEvent(sseEvent, output);

        public void Complete(IBufferWriter<byte> output)
        {
            guard.Complete(output, errorOnFailure: policy.OnFailure == SchemaFailureMode.Error);
            if (guard.Result is { IsValid: false } invalid)
            {
                LogAnswerInvalid(logger, exchange.RequestId, 0, invalid.Errors.Count);
                exchange.Outcome.SchemaFailed(blocking: policy.OnFailure == SchemaFailureMode.Error);
            }
        }
    }
}
