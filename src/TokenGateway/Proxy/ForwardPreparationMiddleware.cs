using System.Globalization;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

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

        if (request.Dialect == LlmDialect.OpenAIChat && request.Stream)
        {
            var options = request.Body["stream_options"] as JsonObject;
            var asked = options?["include_usage"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
            exchange.ClientRequestedUsage = asked;
            if (!asked)
            {
                if (options is null)
                {
                    options = new JsonObject();
                    request.Body["stream_options"] = options;
                }

                options["include_usage"] = true;
                request.MarkModified();
            }
        }

        var headers = context.Response.Headers;
        headers["x-tokengateway-prompt-tokens-original"] = exchange.InputTokensReceived.ToString(CultureInfo.InvariantCulture);
        headers["x-tokengateway-prompt-tokens-sent"] = exchange.InputTokensSent.ToString(CultureInfo.InvariantCulture);

        if (request.IsModified)
        {
            var bytes = request.GetBytesToSend();
            context.Request.Body = new ReadOnlyMemoryStream(bytes);
            context.Request.ContentLength = bytes.Length;
        }
        else
        {
            context.Request.Body = new ReadOnlyMemoryStream(request.OriginalBytes);
            context.Request.ContentLength = request.OriginalBytes.Length;
        }

        return next(context);
    }
}

/// <summary>A read-only stream over memory without copying it.</summary>
internal sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> memory) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => memory.Length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, memory.Length - _position);
        memory.Span.Slice(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
