using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Validate-at-end streaming: passes SSE events through while collecting the structured answer, holds back the
/// dialect's terminal event (<c>[DONE]</c>, <c>response.completed</c>, <c>message_stop</c>) and, at the end, releases it
/// when the answer is valid or replaces it with an error event in the dialect's format when it is not.
/// </summary>
/// <remarks>
/// An <see cref="ISseEventHandler"/>: on the proxy path it sits behind the meter and sees the events the meter framed
/// (one framing per stream); <see cref="Process"/> frames bytes itself for standalone use. Only the held terminal event
/// is copied.
/// </remarks>
public sealed class StreamingSchemaGuard : ISseEventHandler, IDisposable
{
    private readonly LlmDialect _dialect;
    private readonly SchemaTarget _target;
    private readonly CompiledSchema _schema;
    private readonly StringBuilder _answer = new();
    private readonly Dictionary<int, string?> _toolNames = [];
    private SseEventFramer? _framer;
    private byte[]? _terminal;
    private JsonObject? _completedResponse;
    private bool _sawAnswer;

    /// <summary>Creates a guard for one stream.</summary>
    public StreamingSchemaGuard(LlmDialect dialect, SchemaTarget target, CompiledSchema schema)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(schema);
        _dialect = dialect;
        _target = target;
        _schema = schema;
    }

    /// <summary>The validation result once <see cref="Complete"/> ran (null when no answer was found).</summary>
    public SchemaValidation? Result { get; private set; }

    /// <summary>The collected answer text.</summary>
    public string Answer => _answer.ToString();

    /// <summary>Frames <paramref name="input"/> and passes complete events to <paramref name="output"/>, holding the terminal one.</summary>
    public void Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        (_framer ??= new SseEventFramer()).Process(input, output, this);
    }

    /// <summary>Collects the answer from one event; holds the terminal event (returns false), forwards the rest.</summary>
    public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
    {
        if (IsTerminal(sseEvent.Name, sseEvent.Data))
        {
            _terminal = sseEvent.Raw.ToArray();
            return false;
        }

        Collect(sseEvent.Data);
        return true;
    }

    /// <summary>
    /// Ends the stream: flushes what remains (standalone framing), validates and writes the terminal event, or an error
    /// event instead when the answer is invalid and <paramref name="errorOnFailure"/> is true (policy
    /// <c>onFailure: passthrough</c> passes false).
    /// </summary>
    public void Complete(IBufferWriter<byte> output, bool errorOnFailure = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        _framer?.Complete(output, this);
        if (_dialect == LlmDialect.OpenAIResponses && _completedResponse is not null
            && AnswerEnvelope.TryExtract(_dialect, _target, _completedResponse, out var full))
        {
            _answer.Clear().Append(full);
            _sawAnswer = true;
        }

        if (_sawAnswer)
        {
            Result = _schema.Validate(_answer.ToString());
        }

        if (errorOnFailure && Result is { IsValid: false } invalid)
        {
            WriteError(output, invalid.Errors);
            return;
        }

        if (_terminal is not null)
        {
            output.Write(_terminal);
        }
    }

    /// <summary>Returns the standalone framer's pooled buffers.</summary>
    public void Dispose() => _framer?.Dispose();

    private bool IsTerminal(ReadOnlySpan<byte> name, ReadOnlySpan<byte> data)
    {
        switch (_dialect)
        {
            case LlmDialect.OpenAIChat:
                return data.SequenceEqual("[DONE]"u8);
            case LlmDialect.OpenAIResponses:
                if (name.SequenceEqual("response.completed"u8) || data.IndexOf("\"response.completed\""u8) >= 0)
                {
                    try
                    {
                        _completedResponse = JsonNode.Parse(data)?["response"] as JsonObject;
                    }
                    catch (JsonException)
                    {
                        _completedResponse = null;
                    }

                    return true;
                }

                return false;
            case LlmDialect.AnthropicMessages:
                return name.SequenceEqual("message_stop"u8);
            default:
                return false;
        }
    }

    private void Collect(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty || payload[0] != (byte)'{')
        {
            return;
        }

        JsonNode? node;
        try
        {
            node = JsonNode.Parse(payload);
        }
        catch (JsonException)
        {
            return;
        }

        if (node is not JsonObject o)
        {
            return;
        }

        if (_dialect == LlmDialect.OpenAIChat)
        {
            if (o["choices"] is not JsonArray { Count: > 0 } choices || choices[0]?["delta"] is not JsonObject delta)
            {
                return;
            }

            if (_target.Carrier == SchemaCarrier.ResponseFormat)
            {
                if (SchemaDiscovery.Str(delta["content"]) is { } content)
                {
                    _answer.Append(content);
                    _sawAnswer = true;
                }

                return;
            }

            foreach (var call in delta["tool_calls"] as JsonArray ?? [])
            {
                var index = call?["index"] is JsonValue iv && iv.TryGetValue<int>(out var i) ? i : 0;
                if (SchemaDiscovery.Str(call?["function"]?["name"]) is { } toolName)
                {
                    _toolNames[index] = toolName;
                }

                if (_toolNames.GetValueOrDefault(index) == _target.Name && SchemaDiscovery.Str(call?["function"]?["arguments"]) is { } args)
                {
                    _answer.Append(args);
                    _sawAnswer = true;
                }
            }
        }
        else if (_dialect == LlmDialect.AnthropicMessages)
        {
            var type = SchemaDiscovery.Str(o["type"]);
            var index = o["index"] is JsonValue iv && iv.TryGetValue<int>(out var i) ? i : 0;
            if (type == "content_block_start" && o["content_block"] is JsonObject block)
            {
                var blockType = SchemaDiscovery.Str(block["type"]);
                _toolNames[index] = blockType == "tool_use" ? "tool:" + SchemaDiscovery.Str(block["name"]) : blockType;
            }
            else if (type == "content_block_delta" && o["delta"] is JsonObject delta)
            {
                var wanted = _target.Carrier == SchemaCarrier.Tool ? "tool:" + _target.Name : "text";
                if (_toolNames.GetValueOrDefault(index) != wanted)
                {
                    return;
                }

                var piece = SchemaDiscovery.Str(delta["text"]) ?? SchemaDiscovery.Str(delta["partial_json"]);
                if (piece is not null)
                {
                    _answer.Append(piece);
                    _sawAnswer = true;
                }
            }
        }
    }

    private void WriteError(IBufferWriter<byte> output, IReadOnlyList<SchemaError> errors)
    {
        var list = new JsonArray();
        foreach (var e in errors)
        {
            list.Add(new JsonObject { ["pointer"] = e.Pointer, ["message"] = e.Message });
        }

        var message = "The model's answer does not satisfy the required JSON schema: "
            + string.Join("; ", errors.Take(RepairRequest.MaxListedErrors).Select(e => $"{(e.Pointer.Length == 0 ? "(root)" : e.Pointer)}: {e.Message}"));
        switch (_dialect)
        {
            case LlmDialect.OpenAIChat:
                SseReplay.WriteEvent(output, null, new JsonObject
                {
                    ["error"] = new JsonObject
                    {
                        ["message"] = message, ["type"] = "api_error", ["param"] = null, ["code"] = "schema_validation_failed", ["errors"] = list,
                    },
                }.ToJsonString());
                break;
            case LlmDialect.OpenAIResponses:
                SseReplay.WriteEvent(output, "error", new JsonObject
                {
                    ["type"] = "error", ["code"] = "schema_validation_failed", ["message"] = message, ["param"] = null, ["errors"] = list,
                }.ToJsonString());
                break;
            default:
                SseReplay.WriteEvent(output, "error", new JsonObject
                {
                    ["type"] = "error",
                    ["error"] = new JsonObject { ["type"] = "api_error", ["message"] = message, ["code"] = "schema_validation_failed", ["errors"] = list },
                }.ToJsonString());
                break;
        }
    }
}
