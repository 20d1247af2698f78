using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Resilience;

/// <summary>
/// Stream continuation for Anthropic messages (issue #13, <c>resilience.continueStreams</c>): watches what one client
/// stream has delivered (text so far, content blocks, whether anything but text was sent) and, after a cut, splices the
/// events of the continuation attempt into the same client stream.
/// </summary>
/// <remarks>
/// <para>While the first attempt streams, every event is forwarded unchanged and only observed. After
/// <see cref="BeginContinuation"/>, the next attempt's events are rewritten so the client sees one message: its
/// <c>message_start</c> is withheld; its first text block continues the text block that was open at the cut (its
/// <c>content_block_start</c> is withheld and its deltas carry the open block's index), later blocks are renumbered
/// after the blocks already sent; the final <c>message_delta</c>'s usage adds the earlier attempts' input and output
/// tokens, so the client's total equals the sum of the attempts' ledger events. One <c>message_stop</c> ends it.</para>
/// <para>A stream is continuable only while every block delivered was text: a tool call (or thinking) in flight
/// cannot be prefilled, so such a cut ends with the stream error instead. Rewriting parses the continuation's
/// events (rare path); observing the first attempt reads each event once with a forward-only reader.</para>
/// </remarks>
public sealed class AnthropicStreamSplicer : ISseEventHandler
{
    private readonly StringBuilder _text = new();
    private int _blocks;
    private int _openIndex = -1;
    private bool _openIsText;
    private bool _nonText;
    private bool _splicing;
    private int _mergeIndex = -1;
    private int _base;
    private bool _mergeRejected;
    private long _priorInput;
    private long _priorOutput;
    private long _attemptInput;

    /// <summary>The text delivered to the client so far, every text block joined (the continuation's prefill).</summary>
    public string DeliveredText => _text.ToString();

    /// <summary>True while every block delivered was text (a tool call or thinking block forbids a continuation).</summary>
    public bool CanContinue => !_nonText;

    /// <summary>Output tokens billed by the earlier attempts of this stream (see <see cref="BeginContinuation"/>).</summary>
    public long PriorOutputTokens => _priorOutput;

    /// <summary>Content blocks started on the client stream so far.</summary>
    public int BlockCount => _blocks;

    /// <summary>
    /// Text written as an SSE comment line (<c>: text</c>, skipped by every SSE parser) right before the continued
    /// stream's <c>message_stop</c>: what the response headers, sent before the cut, could not say (the gateway puts the
    /// full attempt count there). Null writes nothing.
    /// </summary>
    public string? TrailerComment { get; set; }

    /// <summary>
    /// Switches to splicing: the events that follow come from a continuation attempt, after the attempt just cut billed
    /// <paramref name="priorInputTokens"/> input and <paramref name="priorOutputTokens"/> output tokens (added up over
    /// every continuation of the stream).
    /// </summary>
    public void BeginContinuation(long priorInputTokens, long priorOutputTokens)
    {
        _splicing = true;
        _priorInput += priorInputTokens;
        _priorOutput += priorOutputTokens;
        _attemptInput = 0;
        _mergeRejected = false;
        _mergeIndex = _openIndex >= 0 && _openIsText ? _openIndex : -1;
        _base = _mergeIndex >= 0 ? _mergeIndex : _blocks;
    }

    /// <inheritdoc />
    public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
    {
        if (!sseEvent.HasData)
        {
            return true;
        }

        if (!_splicing)
        {
            Observe(sseEvent.Data);
            return true;
        }

        JsonObject? node;
        try
        {
            node = JsonNode.Parse(sseEvent.Data) as JsonObject;
        }
        catch (JsonException)
        {
            node = null;
        }

        var type = node?["type"]?.GetValueKind() == JsonValueKind.String ? node["type"]!.GetValue<string>() : null;
        switch (type)
        {
            case "message_start":
                _attemptInput = ReadLong(node!["message"]?["usage"]?["input_tokens"]);
                return false; // the client already has its message_start
            case "content_block_start":
            {
                var upstream = (int)ReadLong(node!["index"]);
                var isText = node["content_block"]?["type"]?.GetValue<string>() == "text";
                if (upstream == 0 && _mergeIndex >= 0 && !_mergeRejected)
                {
                    if (isText)
                    {
                        return false; // continues the open text block
                    }

                    // Not text where the open text block should go on: close it, number the rest after it.
                    _mergeRejected = true;
                    Write(output, "content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = _mergeIndex });
                    _openIndex = -1;
                    _base = _mergeIndex + 1;
                }

                node["index"] = Map(upstream);
                Write(output, type, node);
                return false;
            }

            case "content_block_delta" or "content_block_stop":
                node!["index"] = Map((int)ReadLong(node["index"]));
                Write(output, type, node);
                return false;
            case "message_delta":
                if (node!["usage"] is JsonObject usage)
                {
                    usage["output_tokens"] = _priorOutput + ReadLong(usage["output_tokens"]);
                    var input = usage["input_tokens"] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? ReadLong(v) : _attemptInput;
                    usage["input_tokens"] = _priorInput + input;
                }

                Write(output, type, node);
                return false;
            case "message_stop" when TrailerComment is { } comment:
                output.Write(": "u8);
                output.Write(Encoding.UTF8.GetBytes(comment));
                output.Write("\n\n"u8);
                return true; // then the message_stop as it is
            default:
                return true; // ping, message_stop, error: as they are
        }
    }

    private int Map(int upstreamIndex) => _mergeIndex >= 0 && !_mergeRejected ? _mergeIndex + upstreamIndex : _base + upstreamIndex;

    private void Write(IBufferWriter<byte> output, string eventName, JsonObject data)
    {
        var json = Encoding.UTF8.GetBytes(data.ToJsonString());
        output.Write("event: "u8);
        output.Write(Encoding.UTF8.GetBytes(eventName));
        output.Write("\ndata: "u8);
        output.Write(json);
        output.Write("\n\n"u8);
        Observe(json);
    }

    /// <summary>Tracks the client-visible state from one event's JSON data.</summary>
    private void Observe(ReadOnlySpan<byte> data)
    {
        var reader = new Utf8JsonReader(data);
        string? type = null;
        var index = -1;
        string? blockType = null;
        string? deltaType = null;
        string? text = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    type = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("index"u8))
                {
                    reader.Read();
                    index = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var i) ? i : -1;
                }
                else if (reader.ValueTextEquals("content_block"u8) || reader.ValueTextEquals("delta"u8))
                {
                    var isBlock = reader.ValueTextEquals("content_block"u8);
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }

                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("type"u8))
                        {
                            reader.Read();
                            var t = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                            if (isBlock)
                            {
                                blockType = t;
                            }
                            else
                            {
                                deltaType = t;
                            }
                        }
                        else if (!isBlock && reader.ValueTextEquals("text"u8))
                        {
                            reader.Read();
                            text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        }
                        else
                        {
                            reader.Read();
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return; // not JSON: nothing to learn (the meter reports malformed streams)
        }

        switch (type)
        {
            case "content_block_start" when index >= 0:
                _blocks = Math.Max(_blocks, index + 1);
                _openIndex = index;
                _openIsText = blockType == "text";
                _nonText |= !_openIsText;
                break;
            case "content_block_delta":
                if (deltaType == "text_delta" && text is not null)
                {
                    _text.Append(text);
                }
                else if (deltaType is not null && deltaType != "text_delta" && deltaType != "citations_delta")
                {
                    _nonText = true; // input_json_delta, thinking_delta, signature_delta: not prefillable
                }

                break;
            case "content_block_stop" when index == _openIndex:
                _openIndex = -1;
                break;
        }
    }

    private static long ReadLong(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) ? l
        : node is JsonValue d && d.GetValueKind() == JsonValueKind.Number && d.TryGetValue<double>(out var x) ? (long)x : 0;
}
