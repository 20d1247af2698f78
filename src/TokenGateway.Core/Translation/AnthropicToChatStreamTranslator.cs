using System.Buffers;
using System.Text.Json;
using TokenGateway.Core.Metering;

using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Translates an Anthropic Messages event stream into OpenAI <c>chat.completion.chunk</c>s, event by event.
/// </summary>
/// <remarks>
/// <para><c>message_start</c> → the role chunk; <c>text_delta</c> → <c>delta.content</c>; <c>thinking_delta</c> →
/// <c>delta.reasoning_content</c>; a <c>tool_use</c> block start → <c>delta.tool_calls[i]</c> with id, name and empty
/// arguments, its <c>input_json_delta</c>s → argument fragments; <c>message_delta</c> → the finish chunk;
/// <c>message_stop</c> → the usage chunk (only when the client asked for <c>include_usage</c>) and <c>[DONE]</c>;
/// <c>error</c> → <c>data: {"error":…}</c>. <c>ping</c>, <c>signature_delta</c> and block stops write nothing.</para>
/// <para>A stream cut before <c>message_stop</c> is left cut: no <c>[DONE]</c> is invented.</para>
/// </remarks>
public sealed class AnthropicToChatStreamTranslator : SseEventTranslator
{
    private readonly bool _includeUsage;
    private readonly long _created;
    private string _id = string.Empty;
    private string _model = string.Empty;
    private ProviderUsageFields _usage;
    private bool _hasUsage;
    private int[] _toolIndexByBlock = [];
    private int _toolCount;

    /// <summary>Creates a translator for one response.</summary>
    /// <param name="includeUsage">The client set <c>stream_options.include_usage</c>.</param>
    /// <param name="created">Unix seconds for every chunk's <c>created</c>.</param>
    public AnthropicToChatStreamTranslator(bool includeUsage, long created)
    {
        _includeUsage = includeUsage;
        _created = created;
    }

    /// <summary>The upstream's usage as metered so far (message_start merged with message_delta), or null.</summary>
    public TokenUsage? Usage => _hasUsage ? _usage.Normalize(Dialects.LlmDialect.AnthropicMessages) : null;

    /// <inheritdoc />
    protected override void TranslateEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        var ev = new AnthropicEvent();
        try
        {
            AnthropicEventReader.Parse(data, ref ev);
        }
        catch (JsonException)
        {
            return; // malformed upstream event: nothing the client could use
        }

        switch (ev.Type)
        {
            case AnthropicEventKind.MessageStart:
                _id = ev.Id ?? _id;
                _model = ev.Model ?? _model;
                if (ev.HasUsage)
                {
                    _usage = ev.Usage;
                    _hasUsage = true;
                }

                var start = BeginChunk(output);
                start.WriteString("role"u8, "assistant"u8);
                start.WriteString("content"u8, ""u8);
                EndChunk(start, output, null);
                break;
            case AnthropicEventKind.BlockStart when ev.BlockType == AnthropicBlock.ToolUse:
                var toolIndex = _toolCount++;
                MapTool(ev.Index, toolIndex);
                var call = BeginChunk(output);
                call.WriteStartArray("tool_calls"u8);
                call.WriteStartObject();
                call.WriteNumber("index"u8, toolIndex);
                WriteRawString(call, "id"u8, ev.ToolId);
                call.WriteString("type"u8, "function"u8);
                call.WriteStartObject("function"u8);
                WriteRawString(call, "name"u8, ev.ToolName);
                call.WriteString("arguments"u8, ""u8);
                call.WriteEndObject();
                call.WriteEndObject();
                call.WriteEndArray();
                EndChunk(call, output, null);
                break;
            case AnthropicEventKind.BlockStart when ev.BlockType == AnthropicBlock.Text && !ev.Text.IsEmpty:
            case AnthropicEventKind.BlockDelta when ev.DeltaType == AnthropicDelta.Text && !ev.Text.IsEmpty:
                var text = BeginChunk(output);
                WriteRawString(text, "content"u8, ev.Text);
                EndChunk(text, output, null);
                break;
            case AnthropicEventKind.BlockDelta when ev.DeltaType == AnthropicDelta.Thinking && !ev.Text.IsEmpty:
                var thinking = BeginChunk(output);
                WriteRawString(thinking, "reasoning_content"u8, ev.Text);
                EndChunk(thinking, output, null);
                break;
            case AnthropicEventKind.BlockDelta when ev.DeltaType == AnthropicDelta.InputJson && !ev.Text.IsEmpty:
                var fragment = BeginChunk(output);
                fragment.WriteStartArray("tool_calls"u8);
                fragment.WriteStartObject();
                fragment.WriteNumber("index"u8, ToolIndex(ev.Index));
                fragment.WriteStartObject("function"u8);
                WriteRawString(fragment, "arguments"u8, ev.Text);
                fragment.WriteEndObject();
                fragment.WriteEndObject();
                fragment.WriteEndArray();
                EndChunk(fragment, output, null);
                break;
            case AnthropicEventKind.MessageDelta:
                if (ev.HasUsage)
                {
                    _usage.MergeFrom(ev.Usage);
                    _hasUsage = true;
                }

                EndChunk(BeginChunk(output), output, DialectMappings.FinishReasonFor(ev.StopReason));
                break;
            case AnthropicEventKind.MessageStop:
                if (_includeUsage)
                {
                    WriteUsageChunk(output);
                }

                output.Write("data: [DONE]\n\n"u8);
                Completed = true;
                break;
            case AnthropicEventKind.Error:
                var writer = BeginEvent(output, default);
                writer.WriteStartObject();
                writer.WriteStartObject("error"u8);
                WriteRawString(writer, "message"u8, ev.ErrorMessage);
                writer.WriteString("type"u8, DialectMappings.OpenAIErrorTypeFor(ev.ErrorType));
                writer.WriteNull("param"u8);
                writer.WriteString("code"u8, ev.ErrorType);
                writer.WriteEndObject();
                writer.WriteEndObject();
                EndEvent(output);
                break;
            default:
                break; // ping, block stops, signature and citation deltas, text/thinking block starts
        }
    }

    private Utf8JsonWriter BeginChunk(IBufferWriter<byte> output)
    {
        var writer = WriteChunkHeader(output);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("delta"u8);
        return writer;
    }

    private void EndChunk(Utf8JsonWriter writer, IBufferWriter<byte> output, string? finishReason)
    {
        writer.WriteEndObject(); // delta
        writer.WriteNull("logprobs"u8);
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason"u8);
        }
        else
        {
            writer.WriteString("finish_reason"u8, finishReason);
        }

        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        EndEvent(output);
    }

    private Utf8JsonWriter WriteChunkHeader(IBufferWriter<byte> output)
    {
        var writer = BeginEvent(output, default);
        writer.WriteStartObject();
        writer.WriteString("id"u8, _id);
        writer.WriteString("object"u8, "chat.completion.chunk"u8);
        writer.WriteNumber("created"u8, _created);
        writer.WriteString("model"u8, _model);
        return writer;
    }

    private void WriteUsageChunk(IBufferWriter<byte> output)
    {
        var writer = WriteChunkHeader(output);
        writer.WriteStartArray("choices"u8);
        writer.WriteEndArray();
        var input = _usage.InputTokens ?? 0;
        var cacheRead = _usage.CacheReadInputTokens ?? 0;
        var cacheWrite = _usage.CacheCreationInputTokens ?? ((_usage.Ephemeral5mInputTokens ?? 0) + (_usage.Ephemeral1hInputTokens ?? 0));
        var prompt = input + cacheRead + cacheWrite;
        var completion = _usage.OutputTokens ?? 0;
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("prompt_tokens"u8, prompt);
        writer.WriteNumber("completion_tokens"u8, completion);
        writer.WriteNumber("total_tokens"u8, prompt + completion);
        writer.WriteStartObject("prompt_tokens_details"u8);
        writer.WriteNumber("cached_tokens"u8, cacheRead);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        EndEvent(output);
    }

    private void MapTool(int blockIndex, int toolIndex)
    {
        if (blockIndex < 0 || blockIndex > 4096)
        {
            return;
        }

        if (blockIndex >= _toolIndexByBlock.Length)
        {
            var grown = new int[Math.Max(blockIndex + 1, _toolIndexByBlock.Length * 2)];
            Array.Fill(grown, -1);
            _toolIndexByBlock.CopyTo(grown, 0);
            _toolIndexByBlock = grown;
        }

        _toolIndexByBlock[blockIndex] = toolIndex;
    }

    private int ToolIndex(int blockIndex) =>
        blockIndex >= 0 && blockIndex < _toolIndexByBlock.Length && _toolIndexByBlock[blockIndex] >= 0
            ? _toolIndexByBlock[blockIndex]
            : Math.Max(0, _toolCount - 1);
}
