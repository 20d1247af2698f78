using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Base of the stream translators: upstream server-sent-event bytes are framed into events by the one SSE framing
/// (<see cref="SseEventFramer"/>'s, held inline; the same as metering's and the schema guard's) and each complete
/// event carrying data goes to <see cref="TranslateEvent"/>, which writes the caller's dialect straight to the output.
/// </summary>
/// <remarks>
/// The framer runs without pass-through: nothing of the upstream's bytes reaches the output except what
/// <see cref="TranslateEvent"/> writes (keep-alive blank lines, comment-only events and events larger than
/// <see cref="MaxEventBytes"/> are dropped). Holds at most one incomplete event; everything else flows through as soon
/// as it arrives. Line endings CRLF, LF and CR are accepted. Not thread-safe: one per response.
/// </remarks>
public abstract class SseEventTranslator : IDisposable, ISseEventHandler
{
    /// <summary>Events larger than this are dropped instead of being buffered without bound.</summary>
    public const int MaxEventBytes = SseEventFramer.MaxEventBytes;

    private static readonly JsonWriterOptions _writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private SseEventFraming _framing = new(passThrough: false); // held inline: no framer object per stream
    private byte[] _scratch = []; // raw-string quoting; a plain pooled array (no length kept) keeps the translator as small as before
    private Utf8JsonWriter? _writer;

    /// <summary>Events translated so far.</summary>
    public int EventCount { get; private set; }

    /// <summary>True once the upstream's normal end was seen and the caller's normal end written.</summary>
    public bool Completed { get; protected set; }

    /// <summary>Bytes of the incomplete event held until its end arrives.</summary>
    public int BufferedBytes => _framing.BufferedBytes;

    /// <summary>Consumes upstream bytes; writes the translated events completed by them. Returns that event count.</summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        var before = EventCount;
        _framing.Process(input, output, this);
        return EventCount - before;
    }

    /// <summary>The upstream ended: a trailing event without its blank line is translated. No end is invented for a cut stream.</summary>
    public void Complete(IBufferWriter<byte> output) => _framing.Complete(output, this);

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

        _framing.Dispose();
        if (_scratch.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = [];
        }

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
            if (_scratch.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_scratch);
            }

            _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(256, length)); // nothing to keep: no copy
        }

        _scratch[0] = (byte)'"';
        rawEscaped.CopyTo(_scratch.AsSpan(1));
        _scratch[length - 1] = (byte)'"';
        writer.WriteRawValue(_scratch.AsSpan(0, length), skipInputValidation: true);
    }

    /// <summary>Translates one framed event; the framer forwards nothing of it (it runs without pass-through).</summary>
    bool ISseEventHandler.OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
    {
        if (sseEvent.HasData)
        {
            EventCount++;
            TranslateEvent(sseEvent.Name, sseEvent.Data, output);
        }

        return false;
    }
}
