using System.Buffers;

namespace TokenGateway.Core.Streaming;

/// <summary>
/// One complete server-sent event as framed once by <see cref="SseEventFramer"/>: its bytes exactly as received and
/// its parsed <c>event</c> name and <c>data</c>. Valid only during the handler call that receives it.
/// </summary>
public readonly ref struct SseEvent
{
    /// <summary>Creates an event view.</summary>
    public SseEvent(ReadOnlySpan<byte> raw, ReadOnlySpan<byte> name, ReadOnlySpan<byte> data, int dataLines)
    {
        Raw = raw;
        Name = name;
        Data = data;
        DataLines = dataLines;
    }

    /// <summary>The event's bytes as received, terminating blank line included (what is forwarded unchanged).</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary>The last <c>event:</c> field's value (one leading space removed), or empty.</summary>
    public ReadOnlySpan<byte> Name { get; }

    /// <summary>The <c>data:</c> lines' values joined with <c>\n</c> (one leading space removed from each), or empty.</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>How many <c>data:</c> lines the event had (0 for a comment-only or field-only event).</summary>
    public int DataLines { get; }

    /// <summary>True when the event carried at least one <c>data:</c> line.</summary>
    public bool HasData => DataLines > 0;
}

/// <summary>A consumer of framed events: metering, the schema guard, later transforms.</summary>
public interface ISseEventHandler
{
    /// <summary>
    /// Called once per complete event, in order. Returns true to forward <see cref="SseEvent.Raw"/> unchanged; false
    /// when the event is withheld (suppressed, or held to be written later through <paramref name="output"/>).
    /// </summary>
    bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output);
}
