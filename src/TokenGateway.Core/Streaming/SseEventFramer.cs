using System.Buffers;

namespace TokenGateway.Core.Streaming;

/// <summary>
/// Frames a server-sent-event byte stream into events once, for every consumer (metering, the schema guard, later
/// transforms): fed whatever bytes arrived, it hands each complete event — raw bytes, <c>event</c> name and joined
/// <c>data</c> — to an <see cref="ISseEventHandler"/>, forwards it byte-identical when the handler says so, and keeps
/// only the incomplete tail.
/// </summary>
/// <remarks>
/// <para>Push-based on purpose. <c>System.Net.ServerSentEvents.SseParser</c> is pull-based over a <see cref="Stream"/>
/// and yields re-materialised items without their original bytes, so a pass-through tap built on it would have to
/// re-serialize every event (not byte-identical) and would own the read loop that the response handler owns.</para>
/// <para>Invariants: the concatenated output and the events handed out are the same for any split of the input.
/// Line endings CRLF, LF and CR are recognised as in the WHATWG event-stream grammar (a CRLF split across two chunks
/// included); several <c>data:</c> lines are joined with <c>\n</c>; comment lines (<c>:</c>…) are part of their event;
/// runs of blank lines between events (keep-alives) are forwarded and are not events. An event larger than
/// <see cref="MaxEventBytes"/> is passed through unparsed and not handed out. The complete-event fast path copies
/// nothing; only a tail split across reads is buffered. Nothing here throws on upstream data. Not thread-safe: one
/// instance per stream.</para>
/// </remarks>
public sealed class SseEventFramer : IDisposable
{
    /// <summary>Events larger than this are passed through unparsed instead of being buffered.</summary>
    public const int MaxEventBytes = 8 * 1024 * 1024;

    private SseEventFraming _framing;

    /// <summary>Creates a framer for one stream.</summary>
    /// <param name="passThrough">
    /// True (a tap: metering, the schema guard): the framer forwards what the handler does not withhold, blank
    /// keep-alive lines and oversize events, byte-identical. False (a transform that writes its own events, e.g. a
    /// dialect translator): the framer writes nothing itself; only the handler writes to the output, and oversize
    /// events are dropped.
    /// </param>
    public SseEventFramer(bool passThrough = true) => _framing = new SseEventFraming(passThrough);

    /// <summary>Complete events seen (forwarded or withheld); blank keep-alive lines are not events.</summary>
    public int EventCount { get; private set; }

    /// <summary>Bytes of the current incomplete event held back until its end arrives.</summary>
    public int BufferedBytes => _framing.BufferedBytes;

    /// <summary>
    /// Consumes <paramref name="input"/>: every event it completes goes to <paramref name="handler"/> and, when the
    /// handler returns true, to <paramref name="output"/> unchanged. Returns the number of events completed.
    /// </summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output, ISseEventHandler handler)
    {
        var events = _framing.Process(input, output, handler);
        EventCount += events;
        return events;
    }

    /// <summary>Ends the stream: a trailing event without its blank line is handed out and forwarded as-is.</summary>
    public void Complete(IBufferWriter<byte> output, ISseEventHandler handler) => EventCount += _framing.Complete(output, handler);

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose() => _framing.Dispose();
}
