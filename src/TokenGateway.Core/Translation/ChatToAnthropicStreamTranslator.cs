using System.Buffers;
using System.Text.Json;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Translates an OpenAI <c>chat.completion.chunk</c> stream into Anthropic Messages events, chunk by chunk.
/// </summary>
/// <remarks>
/// <para>The first chunk → <c>message_start</c> (usage zero: OpenAI reports usage only at the end);
/// <c>delta.content</c> → a text block; <c>delta.reasoning_content</c>/<c>reasoning</c> → a thinking block (empty
/// signature); <c>delta.tool_calls[i]</c> with an id → a new <c>tool_use</c> block, its argument fragments →
/// <c>input_json_delta</c>s. A block is stopped when another kind starts or at <c>finish_reason</c>. The usage chunk
/// (the upstream request always sets <c>include_usage</c>) → <c>message_delta</c> with the stop reason and the full
/// usage, then <c>message_stop</c>. A stream that ends with <c>[DONE]</c> but no usage chunk gets
/// <c>message_delta</c> without input figures.</para>
/// <para>A stream cut before <c>[DONE]</c> is left cut: no <c>message_stop</c> is invented.</para>
/// </remarks>
public sealed class ChatToAnthropicStreamTranslator : SseEventTranslator
{
    private const int NoBlock = -1;

    private bool _started;
    private int _nextBlock;
    private int _openBlock = NoBlock;
    private OpenKind _openKind;
    private int[] _blockByTool = [];
    private string? _stopReason;
    private ProviderUsageFields _usage;
    private bool _hasUsage;

    /// <summary>The upstream's usage once its usage chunk arrived, or null.</summary>
    public TokenUsage? Usage => _hasUsage ? _usage.Normalize(Dialects.LlmDialect.OpenAIChat) : null;

    /// <inheritdoc />
    protected override void TranslateEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        if (Completed)
        {
            return;
        }

        if (data.SequenceEqual("[DONE]"u8))
        {
            if (_started)
            {
                Finish(output);
            }

            return;
        }

        try
        {
            TranslateChunk(data, output);
        }
        catch (JsonException)
        {
            // malformed upstream chunk: nothing the client could use
        }
    }

    private void TranslateChunk(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return;
        }

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
            if (isChoices && reader.TokenType == JsonTokenType.StartArray)
            {
                var depth = reader.CurrentDepth;
                var first = true;
                while (reader.Read() && reader.CurrentDepth > depth)
                {
                    if (reader.TokenType == JsonTokenType.StartObject && first)
                    {
                        first = false; // n is refused on translated requests: one choice
                        EnsureStarted(data, output);
                        ReadChoice(ref reader, output);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                _usage = ProviderUsageFields.Read(ref reader);
                _hasUsage = _usage.Any;
            }
            else if (isError && reader.TokenType == JsonTokenType.StartObject)
            {
                WriteError(ref reader, output);
                return;
            }
            else
            {
                reader.Skip();
            }
        }

        if (_hasUsage && _stopReason is not null)
        {
            Finish(output);
        }
    }

    private void ReadChoice(ref Utf8JsonReader reader, IBufferWriter<byte> output)
    {
        var depth = reader.CurrentDepth;
        string? finish = null;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isDelta = reader.ValueTextEquals("delta"u8);
            var isFinish = reader.ValueTextEquals("finish_reason"u8);
            reader.Read();
            if (isDelta && reader.TokenType == JsonTokenType.StartObject)
            {
                ReadDelta(ref reader, output);
            }
            else if (isFinish && reader.TokenType == JsonTokenType.String)
            {
                finish = reader.GetString();
            }
            else
            {
                reader.Skip();
            }
        }

        if (finish is not null)
        {
            CloseBlock(output);
            _stopReason = DialectMappings.StopReasonFor(finish);
        }
    }

    private void ReadDelta(ref Utf8JsonReader reader, IBufferWriter<byte> output)
    {
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8);
            var isReasoning = reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8);
            var isTools = reader.ValueTextEquals("tool_calls"u8);
            reader.Read();
            if ((isText || isReasoning) && reader.TokenType == JsonTokenType.String)
            {
                if (reader.ValueSpan.IsEmpty)
                {
                    continue;
                }

                var kind = isText ? OpenKind.Text : OpenKind.Thinking;
                if (_openKind != kind)
                {
                    StartBlock(output, kind, default, default);
                }

                var writer = BeginEvent(output, "content_block_delta"u8);
                writer.WriteStartObject();
                writer.WriteString("type"u8, "content_block_delta"u8);
                writer.WriteNumber("index"u8, _openBlock);
                writer.WriteStartObject("delta"u8);
                writer.WriteString("type"u8, isText ? "text_delta"u8 : "thinking_delta"u8);
                WriteRawString(writer, isText ? "text"u8 : "thinking"u8, reader.ValueSpan);
                writer.WriteEndObject();
                writer.WriteEndObject();
                EndEvent(output);
            }
            else if (isTools && reader.TokenType == JsonTokenType.StartArray)
            {
                var arrayDepth = reader.CurrentDepth;
                while (reader.Read() && reader.CurrentDepth > arrayDepth)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        ReadToolCall(ref reader, output);
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

    private void ReadToolCall(ref Utf8JsonReader reader, IBufferWriter<byte> output)
    {
        var depth = reader.CurrentDepth;
        var index = 0;
        ReadOnlySpan<byte> id = default;
        ReadOnlySpan<byte> name = default;
        ReadOnlySpan<byte> arguments = default;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isIndex = reader.ValueTextEquals("index"u8);
            var isId = reader.ValueTextEquals("id"u8);
            var isFunction = reader.ValueTextEquals("function"u8);
            reader.Read();
            if (isIndex && reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var i))
            {
                index = Math.Clamp(i, 0, 4096);
            }
            else if (isId && reader.TokenType == JsonTokenType.String)
            {
                id = reader.ValueSpan;
            }
            else if (isFunction && reader.TokenType == JsonTokenType.StartObject)
            {
                var functionDepth = reader.CurrentDepth;
                while (reader.Read() && reader.CurrentDepth > functionDepth)
                {
                    if (reader.TokenType != JsonTokenType.PropertyName)
                    {
                        continue;
                    }

                    var isName = reader.ValueTextEquals("name"u8);
                    var isArguments = reader.ValueTextEquals("arguments"u8);
                    reader.Read();
                    if (isName && reader.TokenType == JsonTokenType.String)
                    {
                        name = reader.ValueSpan;
                    }
                    else if (isArguments && reader.TokenType == JsonTokenType.String)
                    {
                        arguments = reader.ValueSpan;
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

        if (!id.IsEmpty)
        {
            StartBlock(output, OpenKind.Tool, id, name);
            MapTool(index, _openBlock);
        }

        if (arguments.IsEmpty)
        {
            return;
        }

        var block = index < _blockByTool.Length && _blockByTool[index] >= 0 ? _blockByTool[index] : _openBlock;
        if (block == NoBlock)
        {
            return; // arguments for a call whose start (id) never came: nothing to attach them to
        }

        var writer = BeginEvent(output, "content_block_delta"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "content_block_delta"u8);
        writer.WriteNumber("index"u8, block);
        writer.WriteStartObject("delta"u8);
        writer.WriteString("type"u8, "input_json_delta"u8);
        WriteRawString(writer, "partial_json"u8, arguments);
        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);
    }

    private void EnsureStarted(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        if (_started)
        {
            return;
        }

        _started = true;
        ReadOnlySpan<byte> id = default;
        ReadOnlySpan<byte> model = default;
        var reader = new Utf8JsonReader(data);
        reader.Read();
        while (reader.Read() && reader.CurrentDepth > 0)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isId = reader.ValueTextEquals("id"u8);
            var isModel = reader.ValueTextEquals("model"u8);
            reader.Read();
            if (isId && reader.TokenType == JsonTokenType.String)
            {
                id = reader.ValueSpan;
            }
            else if (isModel && reader.TokenType == JsonTokenType.String)
            {
                model = reader.ValueSpan;
            }
            else
            {
                reader.Skip();
            }
        }

        var writer = BeginEvent(output, "message_start"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "message_start"u8);
        writer.WriteStartObject("message"u8);
        WriteRawString(writer, "id"u8, id);
        writer.WriteString("type"u8, "message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        WriteRawString(writer, "model"u8, model);
        writer.WriteStartArray("content"u8);
        writer.WriteEndArray();
        writer.WriteNull("stop_reason"u8);
        writer.WriteNull("stop_sequence"u8);
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("input_tokens"u8, 0);
        writer.WriteNumber("output_tokens"u8, 0);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);
    }

    private void StartBlock(IBufferWriter<byte> output, OpenKind kind, ReadOnlySpan<byte> id, ReadOnlySpan<byte> name)
    {
        CloseBlock(output);
        _openBlock = _nextBlock++;
        _openKind = kind;
        var writer = BeginEvent(output, "content_block_start"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "content_block_start"u8);
        writer.WriteNumber("index"u8, _openBlock);
        writer.WriteStartObject("content_block"u8);
        switch (kind)
        {
            case OpenKind.Text:
                writer.WriteString("type"u8, "text"u8);
                writer.WriteString("text"u8, ""u8);
                break;
            case OpenKind.Thinking:
                writer.WriteString("type"u8, "thinking"u8);
                writer.WriteString("thinking"u8, ""u8);
                writer.WriteString("signature"u8, ""u8);
                break;
            default:
                writer.WriteString("type"u8, "tool_use"u8);
                WriteRawString(writer, "id"u8, id);
                WriteRawString(writer, "name"u8, name);
                writer.WriteStartObject("input"u8);
                writer.WriteEndObject();
                writer.WriteStartObject("caller"u8); // current Anthropic answers say who invoked the tool
                writer.WriteString("type"u8, "direct"u8);
                writer.WriteEndObject();
                break;
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);
    }

    private void CloseBlock(IBufferWriter<byte> output)
    {
        if (_openBlock == NoBlock)
        {
            return;
        }

        var writer = BeginEvent(output, "content_block_stop"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "content_block_stop"u8);
        writer.WriteNumber("index"u8, _openBlock);
        writer.WriteEndObject();
        EndEvent(output);
        _openBlock = NoBlock;
        _openKind = OpenKind.None;
    }

    private void MapTool(int toolIndex, int block)
    {
        if (toolIndex >= _blockByTool.Length)
        {
            var grown = new int[Math.Max(toolIndex + 1, _blockByTool.Length * 2)];
            Array.Fill(grown, NoBlock);
            _blockByTool.CopyTo(grown, 0);
            _blockByTool = grown;
        }

        _blockByTool[toolIndex] = block;
    }

    private void Finish(IBufferWriter<byte> output)
    {
        CloseBlock(output);
        var writer = BeginEvent(output, "message_delta"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "message_delta"u8);
        writer.WriteStartObject("delta"u8);
        writer.WriteString("stop_reason"u8, _stopReason ?? "end_turn");
        writer.WriteNull("stop_sequence"u8);
        writer.WriteEndObject();
        writer.WriteStartObject("usage"u8);
        if (_hasUsage)
        {
            var prompt = _usage.PromptTokens ?? _usage.InputTokens ?? 0;
            var cached = _usage.CachedTokens ?? 0;
            writer.WriteNumber("input_tokens"u8, Math.Max(0, prompt - cached));
            writer.WriteNumber("cache_creation_input_tokens"u8, 0);
            writer.WriteNumber("cache_read_input_tokens"u8, cached);
        }

        writer.WriteNumber("output_tokens"u8, _usage.CompletionTokens ?? _usage.OutputTokens ?? 0);
        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);

        writer = BeginEvent(output, "message_stop"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "message_stop"u8);
        writer.WriteEndObject();
        EndEvent(output);
        Completed = true;
    }

    private void WriteError(ref Utf8JsonReader reader, IBufferWriter<byte> output)
    {
        ReadOnlySpan<byte> message = default;
        string? type = null;
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isMessage = reader.ValueTextEquals("message"u8);
            var isType = reader.ValueTextEquals("type"u8);
            reader.Read();
            if (isMessage && reader.TokenType == JsonTokenType.String)
            {
                message = reader.ValueSpan;
            }
            else if (isType && reader.TokenType == JsonTokenType.String)
            {
                type = reader.GetString();
            }
            else
            {
                reader.Skip();
            }
        }

        var writer = BeginEvent(output, "error"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "error"u8);
        writer.WriteStartObject("error"u8);
        writer.WriteString("type"u8, type switch
        {
            "invalid_request_error" => "invalid_request_error",
            "rate_limit_error" or "tokens" or "requests" => "rate_limit_error",
            _ => "api_error",
        });
        WriteRawString(writer, "message"u8, message);
        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);
        Completed = true; // an error ends the stream
    }

    private enum OpenKind
    {
        None,
        Text,
        Thinking,
        Tool,
    }
}
