using System.Buffers;
using System.Text;
using System.Text.Json;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>
/// The response tap for server-sent-event streams: passes upstream bytes through event by event while reading the
/// provider's usage and the text actually delivered.
/// </summary>
/// <remarks>
/// <para>Push-based on purpose. <c>System.Net.ServerSentEvents.SseParser</c> is pull-based over a <see cref="Stream"/>
/// and yields re-materialised <c>SseItem&lt;T&gt;</c>s without their original bytes, so a pass-through tap built on
/// it would have to re-serialize every event (not byte-identical: comments, field order, line endings and the
/// <c>id</c>/<c>retry</c> fields would change) and would own the read loop that YARP already owns. This meter is fed
/// whatever bytes arrived, writes complete events unchanged and keeps only the incomplete tail.</para>
/// <para>Invariants: the concatenated output and the metered usage are the same for any split of the input; malformed
/// input is passed through and ignored for metering; nothing here throws on upstream data. Line endings CRLF, LF and
/// CR are recognised as in the WHATWG event-stream grammar. Not thread-safe: one instance per response.</para>
/// </remarks>
public sealed class SseStreamMeter : IDisposable
{
    /// <summary>Events larger than this are passed through unparsed (and not metered) instead of being buffered.</summary>
    public const int MaxEventBytes = 8 * 1024 * 1024;

    private const byte Cr = (byte)'\r';
    private const byte Lf = (byte)'\n';

    private static readonly JsonReaderOptions _jsonOptions = new() { MaxDepth = 128 };

    private readonly LlmDialect _dialect;
    private readonly bool _suppressUsageOnlyChunk;

    // Incomplete event carried across Process calls.
    private byte[] _pending = [];
    private int _pendingLength;
    private bool _oversize;

    // Line scanner state carried across Process calls.
    private bool _lineHasBytes;
    private bool _prevCr;
    private bool _lfCompletesPrevious;
    private bool _previousSuppressed;

    // Multi-line data joined with '\n'.
    private byte[] _scratch = [];

    // UTF-8 of the text and tool-argument deltas that reached the client.
    private byte[] _text = [];
    private int _textLength;
    private int _countedTextLength = -1;
    private int _countedTokens;
    private string? _countedEncoding;

    private ProviderUsageFields _startFields;
    private ProviderUsageFields _finalFields;
    private bool _hasStartUsage;
    private bool _hasFinalUsage;

    /// <summary>Creates a meter for one streamed response of <paramref name="dialect"/>.</summary>
    /// <param name="dialect">The surface the stream comes from.</param>
    /// <param name="suppressUsageOnlyChunk">
    /// True when the gateway forced <c>stream_options.include_usage</c> on an OpenAI chat request whose client did not
    /// ask for it: the usage-only chunk (<c>"choices":[]</c>) is then metered but not forwarded.
    /// </param>
    public SseStreamMeter(LlmDialect dialect, bool suppressUsageOnlyChunk)
    {
        _dialect = dialect;
        _suppressUsageOnlyChunk = suppressUsageOnlyChunk && dialect == LlmDialect.OpenAIChat;
    }

    /// <summary>The provider's final usage once seen (OpenAI usage chunk, <c>response.completed</c>, Anthropic <c>message_delta</c>).</summary>
    public TokenUsage? Usage => _hasFinalUsage ? _finalFields.Normalize(_dialect) : null;

    /// <summary>
    /// The provider-reported input side seen before the end of the stream (Anthropic <c>message_start</c>), or null.
    /// Lets an estimate for a cut stream keep the provider's exact input and cache figures.
    /// </summary>
    public TokenUsage? StartUsage => _hasStartUsage ? _startFields.Normalize(_dialect) : null;

    /// <summary>True once the stream's normal end was seen: <c>[DONE]</c>, <c>response.completed|incomplete|failed</c> or <c>message_stop</c>.</summary>
    public bool SawTerminalEvent { get; private set; }

    /// <summary>True when the upstream sent an in-stream <c>error</c> event.</summary>
    public bool SawErrorEvent { get; private set; }

    /// <summary>Complete events seen (emitted or suppressed); blank keep-alive lines are not events.</summary>
    public int EventCount { get; private set; }

    /// <summary>Events that were withheld from the client (the forced usage-only chunk).</summary>
    public int SuppressedEventCount { get; private set; }

    /// <summary>Bytes of the current incomplete event held back until its end arrives.</summary>
    public int BufferedBytes => _pendingLength;

    /// <summary>
    /// Consumes <paramref name="input"/> and appends to <paramref name="output"/> every complete event the client
    /// should see, byte-identical. Returns the number of events completed by this call; the host flushes when it is
    /// greater than zero.
    /// </summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var events = 0;
        var i = 0;
        if (_lfCompletesPrevious && !input.IsEmpty)
        {
            // The previous event ended with a CR that was the last byte of its chunk; an LF here completes that CRLF.
            _lfCompletesPrevious = false;
            if (input[0] == Lf)
            {
                _prevCr = false;
                if (!_previousSuppressed)
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

            if (Dispatch(input[segmentStart..end], output))
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

    /// <summary>Ends the stream: a trailing event without its blank line is metered and emitted as-is.</summary>
    public void Complete(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _lfCompletesPrevious = false;
        if (_oversize)
        {
            _oversize = false;
            return;
        }

        if (_pendingLength > 0)
        {
            var trailing = _pending.AsSpan(0, _pendingLength);
            var suppress = Meter(trailing, out _);
            if (!suppress)
            {
                output.Write(trailing);
            }

            _pendingLength = 0;
        }
    }

    /// <summary>Tokens of the text, refusal, reasoning and tool-call deltas delivered so far, under <paramref name="encoding"/>.</summary>
    public int DeliveredOutputTokens(ITokenizerRegistry tokenizers, string encoding)
    {
        ArgumentNullException.ThrowIfNull(tokenizers);
        ArgumentNullException.ThrowIfNull(encoding);
        if (_textLength == 0)
        {
            return 0;
        }

        if (_countedTextLength == _textLength && string.Equals(_countedEncoding, encoding, StringComparison.Ordinal))
        {
            return _countedTokens;
        }

        var chars = ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(_textLength));
        try
        {
            var n = Encoding.UTF8.GetChars(_text.AsSpan(0, _textLength), chars);
            _countedTokens = tokenizers.Count(encoding, chars.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }

        _countedTextLength = _textLength;
        _countedEncoding = encoding;
        return _countedTokens;
    }

    /// <summary>The delivered text as UTF-8 (for tests and diagnostics).</summary>
    internal ReadOnlySpan<byte> DeliveredTextUtf8 => _text.AsSpan(0, _textLength);

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        Return(ref _pending);
        Return(ref _scratch);
        Return(ref _text);
        _pendingLength = 0;
        _textLength = 0;
    }

    // ------------------------------------------------------------------ framing

    private bool Dispatch(ReadOnlySpan<byte> tail, IBufferWriter<byte> output)
    {
        if (_oversize)
        {
            output.Write(tail);
            _oversize = false;
            _previousSuppressed = false;
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

        var suppress = Meter(eventBytes, out var isEvent);
        if (!suppress)
        {
            output.Write(eventBytes);
        }

        _previousSuppressed = suppress;
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

    // ------------------------------------------------------------------ event fields

    /// <summary>Meters one complete event; returns true when it must be withheld from the client.</summary>
    private bool Meter(ReadOnlySpan<byte> eventBytes, out bool isEvent)
    {
        isEvent = false;
        if (eventBytes.Length > MaxEventBytes)
        {
            isEvent = true;
            EventCount++;
            return false;
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
            return false; // blank keep-alive lines
        }

        EventCount++;
        if (dataLines == 0)
        {
            return false;
        }

        var data = dataLines == 1 ? firstData : _scratch.AsSpan(0, scratchLength);
        var suppress = MeterData(eventName, data);
        if (suppress)
        {
            SuppressedEventCount++;
        }

        return suppress;
    }

    private bool MeterData(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data)
    {
        if (data.SequenceEqual("[DONE]"u8))
        {
            SawTerminalEvent = true;
            return false;
        }

        if (!eventName.IsEmpty && !IsWorthParsing(eventName))
        {
            return false;
        }

        var textMark = _textLength;
        try
        {
            var reader = new Utf8JsonReader(data, _jsonOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            return _dialect switch
            {
                LlmDialect.OpenAIResponses => MeterResponsesEvent(ref reader),
                LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens => MeterAnthropicEvent(ref reader),
                _ => MeterChatChunk(ref reader),
            };
        }
        catch (JsonException)
        {
            _textLength = textMark; // malformed: passed through, ignored for metering
            return false;
        }
    }

    private bool IsWorthParsing(ReadOnlySpan<byte> eventName)
    {
        if (eventName.SequenceEqual("error"u8))
        {
            SawErrorEvent = true;
            return false;
        }

        if (_dialect == LlmDialect.OpenAIResponses)
        {
            return eventName.EndsWith(".delta"u8)
                || eventName.SequenceEqual("response.completed"u8)
                || eventName.SequenceEqual("response.incomplete"u8)
                || eventName.SequenceEqual("response.failed"u8);
        }

        if (_dialect.IsAnthropic())
        {
            if (eventName.SequenceEqual("message_stop"u8))
            {
                SawTerminalEvent = true;
                return false;
            }

            return eventName.SequenceEqual("message_start"u8)
                || eventName.SequenceEqual("message_delta"u8)
                || eventName.SequenceEqual("content_block_delta"u8)
                || eventName.SequenceEqual("content_block_start"u8);
        }

        return true;
    }

    // ------------------------------------------------------------------ OpenAI chat

    private bool MeterChatChunk(ref Utf8JsonReader reader)
    {
        var choices = 0;
        var fields = default(ProviderUsageFields);
        while (reader.Read() && reader.CurrentDepth > 0)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isChoices = reader.ValueTextEquals("choices"u8);
            var isUsage = reader.ValueTextEquals("usage"u8);
            var isError = reader.ValueTextEquals("error"u8);
            reader.Read();
            if (isError && reader.TokenType == JsonTokenType.StartObject)
            {
                SawErrorEvent = true; // OpenAI reports a mid-stream failure as data: {"error":{…}}
                reader.Skip();
            }
            else if (isChoices && reader.TokenType == JsonTokenType.StartArray)
            {
                var depth = reader.CurrentDepth;
                while (reader.Read() && reader.CurrentDepth > depth)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        choices++;
                        ReadChatChoice(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                fields = ProviderUsageFields.Read(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }

        if (!fields.Any)
        {
            return false;
        }

        _finalFields = fields;
        _hasFinalUsage = true;
        return _suppressUsageOnlyChunk && choices == 0;
    }

    private void ReadChatChoice(ref Utf8JsonReader reader)
    {
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isDelta = reader.ValueTextEquals("delta"u8);
            reader.Read();
            if (isDelta && reader.TokenType == JsonTokenType.StartObject)
            {
                ReadTextProperties(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    /// <summary>
    /// Appends the text-bearing string properties of the current object (content, refusal, reasoning, text,
    /// partial_json, thinking, and tool-call function names and arguments), recursing into tool_calls/function.
    /// </summary>
    private void ReadTextProperties(ref Utf8JsonReader reader)
    {
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8)
                || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("partial_json"u8)
                || reader.ValueTextEquals("thinking"u8) || reader.ValueTextEquals("reasoning_content"u8)
                || reader.ValueTextEquals("reasoning"u8) || reader.ValueTextEquals("name"u8)
                || reader.ValueTextEquals("arguments"u8);
            var isNested = reader.ValueTextEquals("tool_calls"u8) || reader.ValueTextEquals("function"u8)
                || reader.ValueTextEquals("function_call"u8);
            reader.Read();
            if (isText && reader.TokenType == JsonTokenType.String)
            {
                AppendText(ref reader);
            }
            else if (isNested && reader.TokenType == JsonTokenType.StartObject)
            {
                ReadTextProperties(ref reader);
            }
            else if (isNested && reader.TokenType == JsonTokenType.StartArray)
            {
                var arrayDepth = reader.CurrentDepth;
                while (reader.Read() && reader.CurrentDepth > arrayDepth)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        ReadTextProperties(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    // ------------------------------------------------------------------ OpenAI Responses

    private bool MeterResponsesEvent(ref Utf8JsonReader reader)
    {
        var textMark = _textLength;
        var kind = ResponsesKind.Other;
        var fields = default(ProviderUsageFields);
        while (reader.Read() && reader.CurrentDepth > 0)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isType = reader.ValueTextEquals("type"u8);
            var isDelta = reader.ValueTextEquals("delta"u8);
            var isResponse = reader.ValueTextEquals("response"u8);
            reader.Read();
            if (isType && reader.TokenType == JsonTokenType.String)
            {
                kind = ClassifyResponsesType(ref reader);
            }
            else if (isDelta && reader.TokenType == JsonTokenType.String)
            {
                AppendText(ref reader); // kept only if the type turns out to be a text delta
            }
            else if (isResponse && reader.TokenType == JsonTokenType.StartObject)
            {
                fields = ReadNestedUsage(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }

        if (kind != ResponsesKind.TextDelta)
        {
            _textLength = textMark;
        }

        if (kind == ResponsesKind.Terminal)
        {
            SawTerminalEvent = true;
            if (fields.Any)
            {
                _finalFields = fields;
                _hasFinalUsage = true;
            }
        }
        else if (kind == ResponsesKind.Error)
        {
            SawErrorEvent = true;
        }

        return false;
    }

    private static ResponsesKind ClassifyResponsesType(ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("response.completed"u8) || reader.ValueTextEquals("response.incomplete"u8)
            || reader.ValueTextEquals("response.failed"u8))
        {
            return ResponsesKind.Terminal;
        }

        if (reader.ValueTextEquals("error"u8))
        {
            return ResponsesKind.Error;
        }

        // Every *.delta that carries generated text: output_text, refusal, function_call_arguments,
        // reasoning_summary_text, reasoning_text, custom_tool_call_input. Audio deltas are base64, not text.
        if (!reader.ValueIsEscaped && reader.ValueSpan.EndsWith(".delta"u8) && !reader.ValueSpan.StartsWith("response.audio"u8))
        {
            return ResponsesKind.TextDelta;
        }

        return ResponsesKind.Other;
    }

    /// <summary>Reads a nested object (Responses <c>response</c>, Anthropic <c>message</c>) for its <c>usage</c>.</summary>
    private static ProviderUsageFields ReadNestedUsage(ref Utf8JsonReader reader)
    {
        var fields = default(ProviderUsageFields);
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                fields = ProviderUsageFields.Read(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }

        return fields;
    }

    // ------------------------------------------------------------------ Anthropic

    private bool MeterAnthropicEvent(ref Utf8JsonReader reader)
    {
        var textMark = _textLength;
        var kind = AnthropicKind.Other;
        var messageUsage = default(ProviderUsageFields);
        var deltaUsage = default(ProviderUsageFields);
        while (reader.Read() && reader.CurrentDepth > 0)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isType = reader.ValueTextEquals("type"u8);
            var isMessage = reader.ValueTextEquals("message"u8);
            var isText = reader.ValueTextEquals("delta"u8) || reader.ValueTextEquals("content_block"u8);
            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            if (isType && reader.TokenType == JsonTokenType.String)
            {
                kind = ClassifyAnthropicType(ref reader);
            }
            else if (isMessage && reader.TokenType == JsonTokenType.StartObject)
            {
                messageUsage = ReadNestedUsage(ref reader);
            }
            else if (isText && reader.TokenType == JsonTokenType.StartObject)
            {
                ReadTextProperties(ref reader);
            }
            else if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                deltaUsage = ProviderUsageFields.Read(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }

        if (kind != AnthropicKind.ContentBlock)
        {
            _textLength = textMark;
        }

        switch (kind)
        {
            case AnthropicKind.MessageStart when messageUsage.Any:
                _startFields = messageUsage;
                _hasStartUsage = true;
                break;
            case AnthropicKind.MessageDelta when deltaUsage.Any:
                // message_delta usage is cumulative; newer API versions repeat input and cache fields there.
                var merged = _startFields;
                merged.MergeFrom(deltaUsage);
                _finalFields = merged;
                _hasFinalUsage = true;
                break;
            case AnthropicKind.MessageStop:
                SawTerminalEvent = true;
                break;
            case AnthropicKind.Error:
                SawErrorEvent = true;
                break;
            default:
                break;
        }

        return false;
    }

    private static AnthropicKind ClassifyAnthropicType(ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("content_block_delta"u8) || reader.ValueTextEquals("content_block_start"u8))
        {
            return AnthropicKind.ContentBlock;
        }

        if (reader.ValueTextEquals("message_start"u8))
        {
            return AnthropicKind.MessageStart;
        }

        if (reader.ValueTextEquals("message_delta"u8))
        {
            return AnthropicKind.MessageDelta;
        }

        if (reader.ValueTextEquals("message_stop"u8))
        {
            return AnthropicKind.MessageStop;
        }

        return reader.ValueTextEquals("error"u8) ? AnthropicKind.Error : AnthropicKind.Other;
    }

    // ------------------------------------------------------------------ buffers

    private void AppendText(ref Utf8JsonReader reader)
    {
        var raw = reader.ValueSpan;
        if (!reader.ValueIsEscaped)
        {
            Append(ref _text, ref _textLength, raw);
            return;
        }

        // Unescaped text is never longer than its escaped form.
        EnsureCapacity(ref _text, _textLength + raw.Length);
        _textLength += reader.CopyString(_text.AsSpan(_textLength));
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

    private enum ResponsesKind
    {
        Other,
        TextDelta,
        Terminal,
        Error,
    }

    private enum AnthropicKind
    {
        Other,
        ContentBlock,
        MessageStart,
        MessageDelta,
        MessageStop,
        Error,
    }
}
