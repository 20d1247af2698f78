using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Base of the stream translators: frames upstream server-sent-event bytes into events (push-based, like
/// <see cref="Metering.SseStreamMeter"/>) and hands each complete event to <see cref="TranslateEvent"/>, which writes
/// the caller's dialect straight to the output.
/// </summary>
/// <remarks>
/// Holds at most one incomplete event (the tail of the input that has not reached its blank line); everything else
/// flows through as soon as it arrives. Line endings CRLF, LF and CR are accepted. Not thread-safe: one per response.
/// </remarks>
public abstract class SseEventTranslator : IDisposable
{
    /// <summary>Events larger than this are dropped instead of being buffered without bound.</summary>
    public const int MaxEventBytes = 8 * 1024 * 1024;

    private static readonly JsonWriterOptions _writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private byte[] _line = [];
    private int _lineLength;
    private byte[] _eventName = [];
    private int _eventNameLength;
    private byte[] _data = [];
    private int _dataLength;
    private int _dataLines;
    private bool _prevCr;
    private bool _oversize;
    private byte[] _scratch = [];
    private Utf8JsonWriter? _writer;

    /// <summary>Events translated so far.</summary>
    public int EventCount { get; private set; }

    /// <summary>True once the upstream's normal end was seen and the caller's normal end written.</summary>
    public bool Completed { get; protected set; }

    /// <summary>Bytes of the incomplete event held until its end arrives.</summary>
    public int BufferedBytes => _lineLength + _dataLength + _eventNameLength;

    /// <summary>Consumes upstream bytes; writes the translated events completed by them. Returns that event count.</summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var before = EventCount;
        while (!input.IsEmpty)
        {
            if (_prevCr)
            {
                _prevCr = false;
                if (input[0] == (byte)'\n')
                {
                    input = input[1..]; // second half of a CRLF split across chunks
                    continue;
                }
            }

            var eol = input.IndexOfAny((byte)'\r', (byte)'\n');
            if (eol < 0)
            {
                Append(ref _line, ref _lineLength, input);
                break;
            }

            ReadOnlySpan<byte> line;
            if (_lineLength > 0)
            {
                Append(ref _line, ref _lineLength, input[..eol]);
                line = _line.AsSpan(0, _lineLength);
            }
            else
            {
                line = input[..eol];
            }

            if (input[eol] == (byte)'\r')
            {
                if (eol + 1 < input.Length)
                {
                    if (input[eol + 1] == (byte)'\n')
                    {
                        eol++;
                    }
                }
                else
                {
                    _prevCr = true;
                }
            }

            OnLine(line, output);
            _lineLength = 0;
            input = input[(eol + 1)..];
        }

        if (_lineLength > MaxEventBytes)
        {
            _lineLength = 0;
            _oversize = true;
        }

        return EventCount - before;
    }

    /// <summary>The upstream ended: a trailing event without its blank line is translated. No end is invented for a cut stream.</summary>
    public void Complete(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_lineLength > 0)
        {
            OnLine(_line.AsSpan(0, _lineLength), output);
            _lineLength = 0;
        }

        OnLine([], output);
    }

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Returns pooled buffers.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        Return(ref _line);
        Return(ref _eventName);
        Return(ref _data);
        Return(ref _scratch);
        _writer?.Dispose();
        _writer = null;
    }

    /// <summary>Translates one complete event: its <c>event:</c> name (may be empty) and its <c>data:</c> lines joined by LF.</summary>
    protected abstract void TranslateEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, IBufferWriter<byte> output);

    /// <summary>Starts one output event: writes its <c>event:</c> line when named and the <c>data: </c> prefix; returns the JSON writer.</summary>
    protected Utf8JsonWriter BeginEvent(IBufferWriter<byte> output, ReadOnlySpan<byte> eventName)
    {
        if (!eventName.IsEmpty)
        {
            output.Write("event: "u8);
            output.Write(eventName);
            output.Write("\n"u8);
        }

        output.Write("data: "u8);
        if (_writer is null)
        {
            _writer = new Utf8JsonWriter(output, _writerOptions);
        }
        else
        {
            _writer.Reset(output);
        }

        return _writer;
    }

    /// <summary>Ends the event started by <see cref="BeginEvent"/>.</summary>
    protected void EndEvent(IBufferWriter<byte> output)
    {
        _writer!.Flush(); // BeginEvent created it
        output.Write("\n\n"u8);
    }

    /// <summary>
    /// Writes a string property from the raw (still escaped) bytes of a JSON string token: no unescape and re-escape,
    /// the text reaches the client byte for byte as the upstream encoded it.
    /// </summary>
    protected void WriteRawString(Utf8JsonWriter writer, ReadOnlySpan<byte> propertyName, ReadOnlySpan<byte> rawEscaped)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WritePropertyName(propertyName);
        var length = rawEscaped.Length + 2;
        if (_scratch.Length < length)
        {
            Return(ref _scratch);
            _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(256, length));
        }

        _scratch[0] = (byte)'"';
        rawEscaped.CopyTo(_scratch.AsSpan(1));
        _scratch[length - 1] = (byte)'"';
        writer.WriteRawValue(_scratch.AsSpan(0, length), skipInputValidation: true);
    }

    private void OnLine(ReadOnlySpan<byte> line, IBufferWriter<byte> output)
    {
        if (line.IsEmpty)
        {
            if (_dataLines > 0 && !_oversize)
            {
                EventCount++;
                TranslateEvent(_eventName.AsSpan(0, _eventNameLength), _data.AsSpan(0, _dataLength), output);
            }

            _oversize = false;
            _eventNameLength = 0;
            _dataLength = 0;
            _dataLines = 0;
            return;
        }

        if (line[0] == (byte)':' || _oversize)
        {
            return; // comment (keep-alive), or the rest of an event too large to translate
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
            if (_dataLines++ > 0)
            {
                Append(ref _data, ref _dataLength, "\n"u8);
            }

            Append(ref _data, ref _dataLength, value);
            if (_dataLength > MaxEventBytes)
            {
                _oversize = true;
                _dataLength = 0;
            }
        }
        else if (field.SequenceEqual("event"u8))
        {
            _eventNameLength = 0;
            Append(ref _eventName, ref _eventNameLength, value);
        }
    }

    private static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> bytes)
    {
        if (length + bytes.Length > buffer.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(length + bytes.Length, Math.Max(256, buffer.Length * 2)));
            buffer.AsSpan(0, length).CopyTo(grown);
            Return(ref buffer);
            buffer = grown;
        }

        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
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
