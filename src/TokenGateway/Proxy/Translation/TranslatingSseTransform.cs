using System.Buffers;
using TokenGateway.Core.Streaming;
using TokenGateway.Core.Translation;

namespace TokenGateway.Proxy.Translation;

/// <summary>
/// Puts a stream translator behind the meter: the meter frames the provider's events once and meters them in the
/// provider's dialect, then each event goes to the translator, which writes the client's dialect. Nothing is
/// buffered beyond the event being framed; the provider's bytes themselves never reach the client.
/// </summary>
internal sealed class TranslatingSseTransform(SseEventTranslator translator) : ISseTransform, IDisposable
{
    private readonly ISseEventHandler _handler = translator;

    /// <summary>Translates the event; the translator writes the client's events itself, so the original is never forwarded.</summary>
    public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output) => _handler.OnEvent(sseEvent, output);

    /// <summary>The meter already handed over any trailing event; a cut stream is left cut (no end is invented).</summary>
    public void Complete(IBufferWriter<byte> output)
    {
    }

    public void Dispose() => translator.Dispose();
}
