using System.Buffers;
using System.Text;
using System.Text.Json;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Streaming;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>
/// The response tap for server-sent-event streams: passes upstream bytes through event by event while reading the
/// provider's usage and the text actually delivered.
/// </summary>
/// <remarks>
/// <para>Framing is <see cref="SseEventFramer"/>'s (one framing for every consumer: LF, CRLF and CR line endings,
/// multi-line data joined with <c>\n</c>, comments, no rescans); the meter is the first <see cref="ISseEventHandler"/>
/// on the stream and hands each event it forwards to an optional downstream handler (the structured-output schema
/// guard), so the events are framed once and metered and guarded from the same bytes.</para>
/// <para>Invariants: the concatenated output and the metered usage are the same for any split of the input; malformed
/// input is passed through and ignored for metering; nothing here throws on upstream data. Not thread-safe: one
/// instance per response.</para>
/// </remarks>
public sealed class SseStreamMeter : IDisposable, ISseEventHandler
{
    /// <summary>Events larger than this are passed through unparsed (and not metered) instead of being buffered.</summary>
    public const int MaxEventBytes = SseEventFramer.MaxEventBytes;

    private static readonly JsonReaderOptions _jsonOptions = new() { MaxDepth = 128 };

    private readonly LlmDialect _dialect;
    private readonly bool _suppressUsageOnlyChunk;
    private SseEventFraming _framing; // default: the pass-through tap, held inline (no framer object per stream)
    private readonly ISseEventHandler? _downstream;

    // UTF-8 of the text and tool-argument deltas that reached the client.
    private PooledByteBuffer _text;
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
    /// <param name="downstream">
    /// Sees every event the meter forwards, after metering, and decides whether it reaches the client (e.g. the schema
    /// guard holds the terminal event). Null: every non-suppressed event is forwarded.
    /// </param>
    public SseStreamMeter(LlmDialect dialect, bool suppressUsageOnlyChunk, ISseEventHandler? downstream = null)
    {
        _dialect = dialect;
        _suppressUsageOnlyChunk = suppressUsageOnlyChunk && dialect == LlmDialect.OpenAIChat;
        _downstream = downstream;
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
    public int BufferedBytes => _framing.BufferedBytes;

    /// <summary>
    /// Consumes <paramref name="input"/> and appends to <paramref name="output"/> every complete event the client
    /// should see, byte-identical. Returns the number of events completed by this call; the host flushes when it is
    /// greater than zero.
    /// </summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        var events = _framing.Process(input, output, this);
        EventCount += events;
        return events;
    }

    /// <summary>Ends the stream: a trailing event without its blank line is metered and emitted as-is.</summary>
    public void Complete(IBufferWriter<byte> output) => EventCount += _framing.Complete(output, this);

    /// <summary>Tokens of the text, refusal, reasoning and tool-call deltas delivered so far, under <paramref name="encoding"/>.</summary>
    public int DeliveredOutputTokens(ITokenizerRegistry tokenizers, string encoding)
    {
        ArgumentNullException.ThrowIfNull(tokenizers);
        ArgumentNullException.ThrowIfNull(encoding);
        if (_text.Length == 0)
        {
            return 0;
        }

        if (_countedTextLength == _text.Length && string.Equals(_countedEncoding, encoding, StringComparison.Ordinal))
        {
            return _countedTokens;
        }

        var chars = ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(_text.Length));
        try
        {
            var n = Encoding.UTF8.GetChars(_text.Written, chars);
            _countedTokens = tokenizers.Count(encoding, chars.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }

        _countedTextLength = _text.Length;
        _countedEncoding = encoding;
        return _countedTokens;
    }

    /// <summary>The delivered text as UTF-8 (for tests and diagnostics).</summary>
    internal ReadOnlySpan<byte> DeliveredTextUtf8 => _text.Written;

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        _framing.Dispose();
        _text.Dispose();
    }

    // ------------------------------------------------------------------ events

    /// <summary>Meters one framed event; forwards it (to the downstream handler, then the client) unless it is suppressed.</summary>
    bool ISseEventHandler.OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
    {
        if (sseEvent.HasData && MeterData(sseEvent.Name, sseEvent.Data))
        {
            SuppressedEventCount++;
            return false;
        }

        return _downstream is null || _downstream.OnEvent(sseEvent, output);
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

        var textMark = _text.Length;
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
            _text.Truncate(textMark); // malformed: passed through, ignored for metering
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
        var textMark = _text.Length;
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
            _text.Truncate(textMark);
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
        var textMark = _text.Length;
        var kind = AnthropicEventKind.Other;
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
                kind = AnthropicEventKinds.Classify(ref reader);
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

        if (!kind.CarriesContent())
        {
            _text.Truncate(textMark);
        }

        switch (kind)
        {
            case AnthropicEventKind.MessageStart when messageUsage.Any:
                _startFields = messageUsage;
                _hasStartUsage = true;
                break;
            case AnthropicEventKind.MessageDelta when deltaUsage.Any:
                // message_delta usage is cumulative; newer API versions repeat input and cache fields there.
                var merged = _startFields;
                merged.MergeFrom(deltaUsage);
                _finalFields = merged;
                _hasFinalUsage = true;
                break;
            case AnthropicEventKind.MessageStop:
                SawTerminalEvent = true;
                break;
            case AnthropicEventKind.Error:
                SawErrorEvent = true;
                break;
            default:
                break;
        }

        return false;
    }


    // ------------------------------------------------------------------ text

    private void AppendText(ref Utf8JsonReader reader)
    {
        var raw = reader.ValueSpan;
        if (!reader.ValueIsEscaped)
        {
            _text.Append(raw);
            return;
        }

        // Unescaped text is never longer than its escaped form.
        _text.Advance(reader.CopyString(_text.GetSpan(raw.Length)));
    }

    private enum ResponsesKind
    {
        Other,
        TextDelta,
        Terminal,
        Error,
    }
}
