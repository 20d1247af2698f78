using System.Buffers;
using System.Text;
using System.Text.Json;
using TokenGateway.Core.Metering;

using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Translates an Anthropic Messages event stream into OpenAI Responses stream events, event by event, each with its
/// <c>sequence_number</c>.
/// </summary>
/// <remarks>
/// <para><c>message_start</c> → <c>response.created</c> and <c>response.in_progress</c>. A text block →
/// <c>response.output_item.added</c> (a <c>message</c>) and <c>response.content_part.added</c>; its
/// <c>text_delta</c>s → <c>response.output_text.delta</c>; its stop → <c>response.output_text.done</c>,
/// <c>response.content_part.done</c> and <c>response.output_item.done</c>. A <c>tool_use</c> block →
/// <c>response.output_item.added</c> (a <c>function_call</c> whose <c>call_id</c> is the tool_use id); its
/// <c>input_json_delta</c>s → <c>response.function_call_arguments.delta</c>; its stop →
/// <c>response.function_call_arguments.done</c> and <c>response.output_item.done</c>. A thinking block → a
/// <c>reasoning</c> item whose summary is the thinking text (sent with the item's done event). <c>message_stop</c> →
/// <c>response.completed</c> (or <c>response.incomplete</c> when the model hit <c>max_tokens</c> or refused) with the
/// whole response and its usage. <c>error</c> → an <c>error</c> event.</para>
/// <para>The done events and the final response repeat the text of their items, as the Responses API does; that text
/// is the only thing kept, every delta still flows as it arrives. A stream cut before <c>message_stop</c> is left cut.</para>
/// </remarks>
public sealed class AnthropicToResponsesStreamTranslator : SseEventTranslator
{
    private readonly long _created;
    private readonly ArrayBufferWriter<byte> _current = new(256);
    private readonly List<Item> _items = [];
    private int _sequence;
    private string _responseId = "resp_";
    private string _base = string.Empty;
    private string _model = string.Empty;
    private string? _stopReason;
    private ProviderUsageFields _usage;
    private bool _hasUsage;
    private ItemKind _open;
    private string _openId = string.Empty;
    private byte[] _openCallId = [];
    private byte[] _openName = [];

    /// <summary>Creates a translator for one response.</summary>
    /// <param name="created">Unix seconds for the response's <c>created_at</c>.</param>
    public AnthropicToResponsesStreamTranslator(long created) => _created = created;

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
                if (ev.Id is { Length: > 0 } id)
                {
                    _base = id.StartsWith("msg_", StringComparison.Ordinal) ? id[4..] : id;
                    _responseId = "resp_" + _base;
                }

                _model = ev.Model ?? _model;
                if (ev.HasUsage)
                {
                    _usage = ev.Usage;
                    _hasUsage = true;
                }

                WriteResponseEvent(output, "response.created"u8, final: false);
                WriteResponseEvent(output, "response.in_progress"u8, final: false);
                break;
            case AnthropicEventKind.BlockStart:
                StartBlock(ref ev, output);
                break;
            case AnthropicEventKind.BlockDelta when _open == ItemKind.Message && ev.DeltaType == AnthropicDelta.Text && !ev.Text.IsEmpty:
                WriteTextDelta(ev.Text, output);
                break;
            case AnthropicEventKind.BlockDelta when _open == ItemKind.Reasoning && ev.DeltaType == AnthropicDelta.Thinking:
                _current.Write(ev.Text);
                break;
            case AnthropicEventKind.BlockDelta when _open == ItemKind.FunctionCall && ev.DeltaType == AnthropicDelta.InputJson && !ev.Text.IsEmpty:
                _current.Write(ev.Text);
                var fragment = BeginTyped(output, "response.function_call_arguments.delta"u8);
                fragment.WriteString("item_id"u8, _openId);
                fragment.WriteNumber("output_index"u8, _items.Count);
                WriteRawString(fragment, "delta"u8, ev.Text);
                End(fragment, output);
                break;
            case AnthropicEventKind.BlockStop:
                StopBlock(output);
                break;
            case AnthropicEventKind.MessageDelta:
                _stopReason = ev.StopReason ?? _stopReason;
                if (ev.HasUsage)
                {
                    _usage.MergeFrom(ev.Usage);
                    _hasUsage = true;
                }

                break;
            case AnthropicEventKind.MessageStop:
                StopBlock(output); // a block left open by the provider still ends before the response does
                WriteResponseEvent(output, IncompleteReason(_stopReason) is null ? "response.completed"u8 : "response.incomplete"u8, final: true);
                Completed = true;
                break;
            case AnthropicEventKind.Error:
                var error = BeginTyped(output, "error"u8);
                error.WriteString("code"u8, ev.ErrorType);
                WriteRawString(error, "message"u8, ev.ErrorMessage);
                error.WriteNull("param"u8);
                End(error, output);
                break;
            default:
                break; // ping, signature and citation deltas, blocks of server tools
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _items.Clear();
        base.Dispose(disposing);
    }

    /// <summary>The Responses <c>incomplete_details.reason</c> for an Anthropic stop reason; null when the response completed.</summary>
    internal static string? IncompleteReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "max_output_tokens",
        "refusal" => "content_filter",
        _ => null,
    };

    private void StartBlock(ref AnthropicEvent ev, IBufferWriter<byte> output)
    {
        StopBlock(output);
        var index = _items.Count;
        _current.Clear();
        switch (ev.BlockType)
        {
            case AnthropicBlock.Text:
                _open = ItemKind.Message;
                _openId = $"msg_{_base}_{index}";
                var added = BeginTyped(output, "response.output_item.added"u8);
                added.WriteNumber("output_index"u8, index);
                added.WritePropertyName("item"u8);
                WriteItem(added, new Item(ItemKind.Message, _openId, [], [], []), done: false);
                End(added, output);
                var part = BeginTyped(output, "response.content_part.added"u8);
                WritePartAddress(part);
                part.WritePropertyName("part"u8);
                WriteTextPart(part, []);
                End(part, output);
                if (!ev.Text.IsEmpty)
                {
                    WriteTextDelta(ev.Text, output);
                }

                break;
            case AnthropicBlock.Thinking:
                _open = ItemKind.Reasoning;
                _openId = $"rs_{_base}_{index}";
                var reasoning = BeginTyped(output, "response.output_item.added"u8);
                reasoning.WriteNumber("output_index"u8, index);
                reasoning.WritePropertyName("item"u8);
                WriteItem(reasoning, new Item(ItemKind.Reasoning, _openId, [], [], []), done: false);
                End(reasoning, output);
                break;
            case AnthropicBlock.ToolUse:
                _open = ItemKind.FunctionCall;
                _openCallId = ev.ToolId.ToArray();
                _openName = ev.ToolName.ToArray();
                _openId = "fc_" + Encoding.UTF8.GetString(ev.ToolId);
                var call = BeginTyped(output, "response.output_item.added"u8);
                call.WriteNumber("output_index"u8, index);
                call.WritePropertyName("item"u8);
                WriteItem(call, new Item(ItemKind.FunctionCall, _openId, _openCallId, _openName, []), done: false);
                End(call, output);
                break;
            default:
                _open = ItemKind.None; // redacted thinking and server-tool blocks have no Responses equivalent here
                break;
        }
    }

    private void StopBlock(IBufferWriter<byte> output)
    {
        if (_open == ItemKind.None)
        {
            return;
        }

        var index = _items.Count;
        var text = _current.WrittenSpan;
        if (_open == ItemKind.FunctionCall && text.IsEmpty)
        {
            text = "{}"u8; // a tool called without input: its arguments are the empty object
        }

        var item = new Item(_open, _openId, _openCallId, _openName, text.ToArray());
        switch (_open)
        {
            case ItemKind.Message:
                var textDone = BeginTyped(output, "response.output_text.done"u8);
                WritePartAddress(textDone);
                WriteRawString(textDone, "text"u8, item.Text);
                textDone.WriteStartArray("logprobs"u8);
                textDone.WriteEndArray();
                End(textDone, output);
                var partDone = BeginTyped(output, "response.content_part.done"u8);
                WritePartAddress(partDone);
                partDone.WritePropertyName("part"u8);
                WriteTextPart(partDone, item.Text);
                End(partDone, output);
                break;
            case ItemKind.FunctionCall:
                var argumentsDone = BeginTyped(output, "response.function_call_arguments.done"u8);
                argumentsDone.WriteString("item_id"u8, _openId);
                argumentsDone.WriteNumber("output_index"u8, index);
                WriteRawString(argumentsDone, "name"u8, item.Name);
                WriteRawString(argumentsDone, "arguments"u8, item.Text);
                End(argumentsDone, output);
                break;
            default:
                break;
        }

        var done = BeginTyped(output, "response.output_item.done"u8);
        done.WriteNumber("output_index"u8, index);
        done.WritePropertyName("item"u8);
        WriteItem(done, item, done: true);
        End(done, output);
        _items.Add(item);
        _open = ItemKind.None;
        _current.Clear();
    }

    private void WriteTextDelta(ReadOnlySpan<byte> rawText, IBufferWriter<byte> output)
    {
        _current.Write(rawText);
        var delta = BeginTyped(output, "response.output_text.delta"u8);
        WritePartAddress(delta);
        WriteRawString(delta, "delta"u8, rawText);
        delta.WriteStartArray("logprobs"u8);
        delta.WriteEndArray();
        End(delta, output);
    }

    private void WritePartAddress(Utf8JsonWriter writer)
    {
        writer.WriteString("item_id"u8, _openId);
        writer.WriteNumber("output_index"u8, _items.Count);
        writer.WriteNumber("content_index"u8, 0);
    }

    private void WriteTextPart(Utf8JsonWriter writer, ReadOnlySpan<byte> rawText)
    {
        writer.WriteStartObject();
        writer.WriteString("type"u8, "output_text"u8);
        writer.WriteStartArray("annotations"u8);
        writer.WriteEndArray();
        writer.WriteStartArray("logprobs"u8);
        writer.WriteEndArray();
        WriteRawString(writer, "text"u8, rawText);
        writer.WriteEndObject();
    }

    private void WriteItem(Utf8JsonWriter writer, Item item, bool done)
    {
        var status = done ? "completed"u8 : "in_progress"u8;
        writer.WriteStartObject();
        writer.WriteString("id"u8, item.Id);
        switch (item.Kind)
        {
            case ItemKind.Message:
                writer.WriteString("type"u8, "message"u8);
                writer.WriteString("status"u8, status);
                writer.WriteString("role"u8, "assistant"u8);
                writer.WriteStartArray("content"u8);
                if (done)
                {
                    WriteTextPart(writer, item.Text);
                }

                writer.WriteEndArray();
                break;
            case ItemKind.Reasoning:
                writer.WriteString("type"u8, "reasoning"u8);
                writer.WriteStartArray("summary"u8);
                if (done && item.Text.Length > 0)
                {
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "summary_text"u8);
                    WriteRawString(writer, "text"u8, item.Text);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteString("type"u8, "function_call"u8);
                writer.WriteString("status"u8, status);
                WriteRawString(writer, "call_id"u8, item.CallId);
                WriteRawString(writer, "name"u8, item.Name);
                WriteRawString(writer, "arguments"u8, done ? item.Text : []);
                break;
        }

        writer.WriteEndObject();
    }

    private void WriteResponseEvent(IBufferWriter<byte> output, ReadOnlySpan<byte> type, bool final)
    {
        var writer = BeginTyped(output, type);
        writer.WriteStartObject("response"u8);
        writer.WriteString("id"u8, _responseId);
        writer.WriteString("object"u8, "response"u8);
        writer.WriteNumber("created_at"u8, _created);
        var incomplete = final ? IncompleteReason(_stopReason) : null;
        writer.WriteString("status"u8, !final ? "in_progress" : incomplete is null ? "completed" : "incomplete");
        writer.WriteNull("error"u8);
        if (incomplete is null)
        {
            writer.WriteNull("incomplete_details"u8);
        }
        else
        {
            writer.WriteStartObject("incomplete_details"u8);
            writer.WriteString("reason"u8, incomplete);
            writer.WriteEndObject();
        }

        writer.WriteString("model"u8, _model);
        writer.WriteStartArray("output"u8);
        if (final)
        {
            foreach (var item in _items)
            {
                WriteItem(writer, item, done: true);
            }
        }

        writer.WriteEndArray();
        writer.WriteBoolean("parallel_tool_calls"u8, true);
        writer.WriteStartArray("tools"u8);
        writer.WriteEndArray();
        if (final && _hasUsage)
        {
            WriteUsage(writer, _usage);
        }
        else
        {
            writer.WriteNull("usage"u8);
        }

        writer.WriteEndObject();
        End(writer, output);
    }

    /// <summary>Writes Responses <c>usage</c> for Anthropic usage fields: input counts every input token, cached ones included.</summary>
    private static void WriteUsage(Utf8JsonWriter writer, ProviderUsageFields usage)
    {
        var input = usage.InputTokens ?? 0;
        var cacheRead = usage.CacheReadInputTokens ?? 0;
        var cacheWrite = usage.CacheCreationInputTokens ?? ((usage.Ephemeral5mInputTokens ?? 0) + (usage.Ephemeral1hInputTokens ?? 0));
        var prompt = input + cacheRead + cacheWrite;
        var completion = usage.OutputTokens ?? 0;
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("input_tokens"u8, prompt);
        writer.WriteStartObject("input_tokens_details"u8);
        writer.WriteNumber("cached_tokens"u8, cacheRead);
        writer.WriteEndObject();
        writer.WriteNumber("output_tokens"u8, completion);
        writer.WriteStartObject("output_tokens_details"u8);
        writer.WriteNumber("reasoning_tokens"u8, 0);
        writer.WriteEndObject();
        writer.WriteNumber("total_tokens"u8, prompt + completion);
        writer.WriteEndObject();
    }

    /// <summary>Starts an event named <paramref name="type"/> whose data carries the same <c>type</c> and the next sequence number.</summary>
    private Utf8JsonWriter BeginTyped(IBufferWriter<byte> output, ReadOnlySpan<byte> type)
    {
        var writer = BeginEvent(output, type);
        writer.WriteStartObject();
        writer.WriteString("type"u8, type);
        writer.WriteNumber("sequence_number"u8, _sequence++);
        return writer;
    }

    private void End(Utf8JsonWriter writer, IBufferWriter<byte> output)
    {
        writer.WriteEndObject();
        EndEvent(output);
    }

    private enum ItemKind
    {
        None,
        Message,
        Reasoning,
        FunctionCall,
    }

    /// <summary>One finished output item; byte arrays hold JSON-escaped text as the provider sent it.</summary>
    private sealed record Item(ItemKind Kind, string Id, byte[] CallId, byte[] Name, byte[] Text);
}
