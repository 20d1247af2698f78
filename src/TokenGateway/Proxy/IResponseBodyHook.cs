using System.Buffers;
using TokenGateway.Core.Streaming;

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

    /// <summary>A transform for this request's SSE events (after metering), or null to leave the stream alone.</summary>
    ISseTransform? CreateStreamTransform(HttpContext http, LlmExchange exchange);
}

/// <summary>
/// Sees a stream's events on their way to the client, as framed once by the meter (<see cref="ISseEventHandler"/>):
/// forwards, withholds or holds each one, and may write more at the end.
/// </summary>
internal interface ISseTransform : ISseEventHandler
{
    /// <summary>Called once when the upstream stream ended normally (after the meter's trailing event).</summary>
    void Complete(IBufferWriter<byte> output);
}

/// <summary>Several transforms in registration order: an event reaches the next only if the previous one forwarded it.</summary>
internal sealed class SseTransformChain(ISseTransform[] transforms) : ISseTransform
{
    public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
    {
        foreach (var transform in transforms)
        {
            if (!transform.OnEvent(sseEvent, output))
            {
                return false;
            }
        }

        return true;
    }

    public void Complete(IBufferWriter<byte> output)
    {
        foreach (var transform in transforms)
        {
            transform.Complete(output);
        }
    }
}
