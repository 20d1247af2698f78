using System.Buffers;

namespace TokenGateway.Proxy;

/// <summary>
/// A hook into <see cref="LlmResponseHandler"/>: sees a successful buffered JSON body after metering and before it is
/// written, and may wrap an SSE stream in a transform. Hooks run in registration order.
/// </summary>
internal interface IResponseBodyHook
{
    /// <summary>
    /// Called with a metered 2xx JSON body. Returns the bytes to write (the same or replaced; headers may be set), or
    /// null when the hook wrote the response itself.
    /// </summary>
    ValueTask<ReadOnlyMemory<byte>?> OnBufferedBodyAsync(HttpContext http, LlmExchange exchange, ReadOnlyMemory<byte> body);

    /// <summary>A transform for this request's SSE output (after metering), or null to leave the stream alone.</summary>
    ISseTransform? CreateStreamTransform(HttpContext http, LlmExchange exchange);
}

/// <summary>Rewrites an SSE stream on its way to the client.</summary>
internal interface ISseTransform
{
    /// <summary>Transforms one chunk of metered output.</summary>
    void Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output);

    /// <summary>Called once when the upstream stream ended normally.</summary>
    void Complete(IBufferWriter<byte> output);
}
