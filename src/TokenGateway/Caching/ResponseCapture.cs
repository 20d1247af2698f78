using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Streaming;
using TokenGateway.Proxy;

namespace TokenGateway.Caching;

/// <summary>
/// The request feature that asks <see cref="ResponseCaptureHook"/> to keep a copy of the answer the client receives:
/// the buffered JSON body, or the stream's events as they pass (a tee; nothing is held back from the client).
/// </summary>
internal sealed class ResponseCapture(LlmDialect dialect, int maxBytes)
{
    private byte[]? _body;

    public LlmDialect Dialect { get; } = dialect;

    public int MaxBytes { get; } = maxBytes;

    public StreamedAnswerAccumulator? Stream { get; private set; }

    public void CaptureBody(ReadOnlySpan<byte> body) => _body = body.Length <= MaxBytes ? body.ToArray() : null;

    public StreamedAnswerAccumulator StartStream() => Stream = new StreamedAnswerAccumulator(Dialect, MaxBytes * 4L);

    /// <summary>The complete answer to store, or null (nothing captured, truncated, failed or too large).</summary>
    public CachedAnswer? TryBuild(string model, TokenUsage billed, DateTimeOffset now)
    {
        byte[]? bytes;
        if (_body is { } body)
        {
            JsonObject? json;
            try
            {
                json = JsonNode.Parse(body) as JsonObject;
            }
            catch (JsonException)
            {
                return null;
            }

            bytes = json is not null && AnswerCompleteness.IsComplete(Dialect, json) ? body : null;
        }
        else if (Stream?.Build(billed) is { } built)
        {
            bytes = JsonSerializer.SerializeToUtf8Bytes(built);
        }
        else
        {
            bytes = null;
        }

        return bytes is null || bytes.Length > MaxBytes ? null : new CachedAnswer(Dialect, model, bytes, billed, now);
    }
}

/// <summary>
/// Keeps the copy a <see cref="ResponseCapture"/> asks for. Registered after every other response hook, so it sees the
/// answer exactly as the client gets it (after structured-output repairs); it never changes a byte.
/// </summary>
internal sealed class ResponseCaptureHook : IResponseBodyHook
{
    public ValueTask<ReadOnlyMemory<byte>?> OnBufferedBodyAsync(HttpContext http, LlmExchange exchange, ReadOnlyMemory<byte> body)
    {
        http.Features.Get<ResponseCapture>()?.CaptureBody(body.Span);
        return new(body);
    }

    public ISseTransform? CreateStreamTransform(HttpContext http, LlmExchange exchange) =>
        http.Features.Get<ResponseCapture>() is { } capture ? new Tee(capture.StartStream()) : null;

    private sealed class Tee(StreamedAnswerAccumulator accumulator) : ISseTransform
    {
        public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
        {
            accumulator.OnEvent(sseEvent);
            return true;
        }

        public void Complete(IBufferWriter<byte> output)
        {
        }
    }
}
