using System.Buffers;

namespace TokenGateway.Core.Streaming;

/// <summary>
/// The SSE framing itself, as a struct so an owner that is already one object per stream (the meter, a translator)
/// holds it inline and framing adds no allocation; <see cref="SseEventFramer"/> is the public face over it, and its
/// remarks state the contract.
/// </summary>
/// <remarks>Held in a non-readonly field and never copied (it owns pooled buffers). Not thread-safe.</remarks>
internal struct SseEventFraming : IDisposable
{
    private const int MaxEventBytes = SseEventFramer.MaxEventBytes;
    private const byte Cr = (byte)'\r';
    private const byte Lf = (byte)'\n';

    private readonly bool _handlerWritesOnly;

    // Incomplete event carried across Process calls.
    private PooledByteBuffer _pending;
    private bool _oversize;

    // Line scanner state carried across Process calls.
    private bool _lineHasBytes;
    private bool _prevCr;
    private bool _lfCompletesPrevious;
    private bool _previousWithheld;

    // Multi-line data joined with '\n'.
    private PooledByteBuffer _scratch;

    /// <summary>Creates framing state; <see langword="default"/> is the pass-through tap (see <see cref="SseEventFramer(bool)"/>).</summary>
    public SseEventFraming(bool passThrough) => _handlerWritesOnly = !passThrough;

    /// <summary>Bytes of the current incomplete event held back until its end arrives.</summary>
    public int BufferedBytes => _pending.Length;

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
                    Forward(input[..1], output);
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

    /// <summary>
    /// Ends the stream: a trailing event without its blank line is handed out and forwarded as-is. Returns the number
    /// of events completed (0 or 1).
    /// </summary>
    public int Complete(IBufferWriter<byte> output, ISseEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(handler);
        _lfCompletesPrevious = false;
        if (_oversize)
        {
            _oversize = false;
            return 0;
        }

        var isEvent = false;
        if (_pending.Length > 0)
        {
            var trailing = _pending.Written;
            if (Handle(trailing, output, handler, out isEvent))
            {
                Forward(trailing, output);
            }

            _pending.Truncate(0);
        }

        return isEvent ? 1 : 0;
    }

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        _pending.Dispose();
        _scratch.Dispose();
    }

    private bool Dispatch(ReadOnlySpan<byte> tail, IBufferWriter<byte> output, ISseEventHandler handler)
    {
        if (_oversize)
        {
            Forward(tail, output);
            _oversize = false;
            _previousWithheld = false;
            return true;
        }

        ReadOnlySpan<byte> eventBytes;
        if (_pending.Length > 0)
        {
            _pending.Append(tail);
            eventBytes = _pending.Written;
        }
        else
        {
            eventBytes = tail; // the whole event is inside this chunk: no copy
        }

        var forward = Handle(eventBytes, output, handler, out var isEvent);
        if (forward)
        {
            Forward(eventBytes, output);
        }

        _previousWithheld = !forward;
        _pending.Truncate(0);
        return isEvent;
    }

    private void Hold(ReadOnlySpan<byte> partial, IBufferWriter<byte> output)
    {
        if (_oversize)
        {
            Forward(partial, output);
            return;
        }

        if (_pending.Length + partial.Length > MaxEventBytes)
        {
            // Give up on this event: forward what we have and pass the rest through until its end.
            Forward(_pending.Written, output);
            Forward(partial, output);
            _pending.Truncate(0);
            _oversize = true;
            return;
        }

        _pending.Append(partial);
    }

    /// <summary>Writes bytes the framer forwards on its own (events the handler lets through, keep-alives, oversize events).</summary>
    private void Forward(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
    {
        if (!_handlerWritesOnly)
        {
            output.Write(bytes);
        }
    }

    /// <summary>Parses one complete event's fields and hands it out; returns true when its bytes are to be forwarded.</summary>
    private bool Handle(ReadOnlySpan<byte> eventBytes, IBufferWriter<byte> output, ISseEventHandler handler, out bool isEvent)
    {
        isEvent = false;
        if (eventBytes.Length > MaxEventBytes)
        {
            isEvent = true;
            return true;
        }

        ReadOnlySpan<byte> eventName = default;
        ReadOnlySpan<byte> firstData = default;
        var dataLines = 0;
        _scratch.Truncate(0);
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
                        _scratch.Append(firstData);
                    }

                    _scratch.Append("\n"u8);
                    _scratch.Append(value);
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

        var data = dataLines > 1 ? _scratch.Written : firstData;
        return handler.OnEvent(new SseEvent(eventBytes, eventName, data, dataLines), output);
    }
}
