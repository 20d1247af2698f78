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

    private const byte Cr = (byte)'\r';
    private const byte Lf = (byte)'\n';

    // Incomplete event carried across Process calls.
    private byte[] _pending = [];
    private int _pendingLength;
    private bool _oversize;

    // Line scanner state carried across Process calls.
    private bool _lineHasBytes;
    private bool _prevCr;
    private bool _lfCompletesPrevious;
    private bool _previousWithheld;

    // Multi-line data joined with '\n'.
    private byte[] _scratch = [];

    /// <summary>Complete events seen (forwarded or withheld); blank keep-alive lines are not events.</summary>
    public int EventCount { get; private set; }

    /// <summary>Bytes of the current incomplete event held back until its end arrives.</summary>
    public int BufferedBytes => _pendingLength;

    /// <summary>
    /// Consumes <paramref name="input"/>: every event it completes goes to <paramref name="handler"/> and, when the
    /// handler returns true, to <paramref name="output"/> unchanged. Returns the number of events completed.
    /// </summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output, ISseEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(handler);
        var events = 0;
        var i = 0;
        if (_lfCompletesPrevious && !input.IsEmpty)
        {
            // The previous event ended with a CR that was the last byte of its chunk; an LF here completes that CRLF.
            _lfCompletesPrevious = false;
            if (input[0] == Lf)
            {
                _prevCr = false;
                if (!_previousWithheld)
                {
                    output.Write(input[..1]);
                }

                i = 1;
            }
        }

        var segmentStart = i;
        while (i < input.Length)
        {
            var b = input[i];
            if (b is not (Cr or Lf))
            {
                _prevCr = false;
                _lineHasBytes = true;
                var next = input[i..].IndexOfAny(Cr, Lf);
                if (next < 0)
                {
                    break;
                }

                i += next;
                continue;
            }

            if (b == Lf && _prevCr)
            {
                _prevCr = false; // second half of a CRLF
                i++;
                continue;
            }

            if (_lineHasBytes)
            {
                _lineHasBytes = false;
                _prevCr = b == Cr;
                i++;
                continue;
            }

            // A blank line: the event (or a run of keep-alive blank lines) ends here.
            var end = i + 1;
            _prevCr = false;
            if (b == Cr)
            {
                if (end < input.Length)
                {
                    if (input[end] == Lf)
                    {
                        end++;
                    }
                }
                else
                {
                    _lfCompletesPrevious = true;
                }
            }

            if (Dispatch(input[segmentStart..end], output, handler))
            {
                events++;
            }

            segmentStart = end;
            i = end;
        }

        if (segmentStart < input.Length)
        {
            Hold(input[segmentStart..], output);
        }

        return events;
    }

    /// <summary>Ends the stream: a trailing event without its blank line is handed out and forwarded as-is.</summary>
    public void Complete(IBufferWriter<byte> output, ISseEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(handler);
        _lfCompletesPrevious = false;
        if (_oversize)
        {
            _oversize = false;
            return;
        }

        if (_pendingLength > 0)
        {
            var trailing = _pending.AsSpan(0, _pendingLength);
            if (Handle(trailing, output, handler, out _))
            {
                output.Write(trailing);
            }

            _pendingLength = 0;
        }
    }

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        Return(ref _pending);
        Return(ref _scratch);
        _pendingLength = 0;
    }

    private bool Dispatch(ReadOnlySpan<byte> tail, IBufferWriter<byte> output, ISseEventHandler handler)
    {
        if (_oversize)
        {
            output.Write(tail);
            _oversize = false;
            _previousWithheld = false;
            EventCount++;
            return true;
        }

        ReadOnlySpan<byte> eventBytes;
        if (_pendingLength > 0)
        {
            Append(ref _pending, ref _pendingLength, tail);
            eventBytes = _pending.AsSpan(0, _pendingLength);
        }
        else
        {
            eventBytes = tail; // the whole event is inside this chunk: no copy
        }

        var forward = Handle(eventBytes, output, handler, out var isEvent);
        if (forward)
        {
            output.Write(eventBytes);
        }

        _previousWithheld = !forward;
        _pendingLength = 0;
        return isEvent;
    }

    private void Hold(ReadOnlySpan<byte> partial, IBufferWriter<byte> output)
    {
        if (_oversize)
        {
            output.Write(partial);
            return;
        }

        if (_pendingLength + partial.Length > MaxEventBytes)
        {
            // Give up on this event: forward what we have and pass the rest through until its end.
            output.Write(_pending.AsSpan(0, _pendingLength));
            output.Write(partial);
            _pendingLength = 0;
            _oversize = true;
            return;
        }

        Append(ref _pending, ref _pendingLength, partial);
    }

    /// <summary>Parses one complete event's fields and hands it out; returns true when its bytes are to be forwarded.</summary>
    private bool Handle(ReadOnlySpan<byte> eventBytes, IBufferWriter<byte> output, ISseEventHandler handler, out bool isEvent)
    {
        isEvent = false;
        if (eventBytes.Length > MaxEventBytes)
        {
            isEvent = true;
            EventCount++;
            return true;
        }

        ReadOnlySpan<byte> eventName = default;
        ReadOnlySpan<byte> firstData = default;
        var dataLines = 0;
        var scratchLength = 0;
        var rest = eventBytes;
        while (!rest.IsEmpty)
        {
            var eol = rest.IndexOfAny(Cr, Lf);
            var line = eol < 0 ? rest : rest[..eol];
            if (eol < 0)
            {
                rest = default;
            }
            else
            {
                var skip = rest[eol] == Cr && eol + 1 < rest.Length && rest[eol + 1] == Lf ? 2 : 1;
                rest = rest[(eol + skip)..];
            }

            if (line.IsEmpty)
            {
                continue;
            }

            isEvent = true;
            if (line[0] == (byte)':')
            {
                continue; // comment
            }

            var colon = line.IndexOf((byte)':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? default : line[(colon + 1)..];
            if (!value.IsEmpty && value[0] == (byte)' ')
            {
                value = value[1..];
            }

            if (field.SequenceEqual("data"u8))
            {
                if (dataLines == 0)
                {
                    firstData = value;
                }
                else
                {
                    if (dataLines == 1)
                    {
                        Append(ref _scratch, ref scratchLength, firstData);
                    }

                    Append(ref _scratch, ref scratchLength, "\n"u8);
                    Append(ref _scratch, ref scratchLength, value);
                }

                dataLines++;
            }
            else if (field.SequenceEqual("event"u8))
            {
                eventName = value;
            }
        }

        if (!isEvent)
        {
            return true; // blank keep-alive lines
        }

        EventCount++;
        var data = dataLines > 1 ? _scratch.AsSpan(0, scratchLength) : firstData;
        return handler.OnEvent(new SseEvent(eventBytes, eventName, data, dataLines), output);
    }

    private static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> bytes)
    {
        EnsureCapacity(ref buffer, length + bytes.Length);
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
    }

    private static void EnsureCapacity(ref byte[] buffer, int required)
    {
        if (required <= buffer.Length)
        {
            return;
        }

        var grown = ArrayPool<byte>.Shared.Rent(Math.Max(required, Math.Max(256, buffer.Length * 2)));
        buffer.CopyTo(grown, 0);
        Return(ref buffer);
        buffer = grown;
    }

    private static void Return(ref byte[] buffer)
    {
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        buffer = [];
    }
}
