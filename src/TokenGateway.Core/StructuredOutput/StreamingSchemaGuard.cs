using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Validate-at-end streaming: passes SSE events through while collecting the structured answer, holds back the
/// dialect's terminal event (<c>[DONE]</c>, <c>response.completed</c>, <c>message_stop</c>) and, at the end, releases it
/// when the answer is valid or replaces it with an error event in the dialect's format when it is not.
/// </summary>
public sealed class StreamingSchemaGuard
{
    private readonly LlmDialect _dialect;
    private readonly SchemaTarget _target;
    private readonly CompiledSchema _schema;
    private readonly StringBuilder _answer = new();
    private readonly Dictionary<int, string?> _toolNames = [];
    private readonly List<byte> _pending = [];
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

    /// <summary>Passes complete events from <paramref name="input"/> to <paramref name="output"/>, holding the terminal one.</summary>
    public void Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        foreach (var b in input)
        {
            _pending.Add(b);
        }

        while (TryTakeEvent(out var raw))
        {
            HandleEvent(raw, output);
        }
    }

    /// <summary>
    /// Ends the stream: flushes what remains, validates and writes the terminal event, or an error event instead when the
    /// answer is invalid and <paramref name="errorOnFailure"/> is true (policy <c>onFailure: passthrough</c> passes false).
    /// </summary>
    public void Complete(IBufferWriter<byte> output, bool errorOnFailure = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_pending.Count > 0)
        {
            var rest = _pending.ToArray();
            _pending.Clear();
            HandleEvent(rest, output);
        }

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

    /// <summary>The collected answer text.</summary>
    public string Answer => _answer.ToString();

    private bool TryTakeEvent(out byte[] raw)
    {
        for (var i = 0; i + 1 < _pending.Count; i++)
        {
            var end = _pending[i] == '\n' && _pending[i + 1] == '\n' ? i + 2
                : i + 3 < _pending.Count && _pending[i] == '\r' && _pending[i + 1] == '\n' && _pending[i + 2] == '\r' && _pending[i + 3] == '\n' ? i + 4
                : -1;
            if (end > 0)
            {
                raw = _pending.GetRange(0, end).ToArray();
                _pending.RemoveRange(0, end);
                return true;
            }
        }

        raw = [];
        return false;
    }

    private void HandleEvent(byte[] raw, IBufferWriter<byte> output)
    {
        var text = Encoding.UTF8.GetString(raw);
        string? name = null;
        var data = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            var l = line.TrimEnd('\r');
            if (l.StartsWith("event:", StringComparison.Ordinal))
            {
                name = l[6..].Trim();
            }
            else if (l.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(l[5..].TrimStart());
            }
        }

        var payload = data.ToString();
        if (IsTerminal(name, payload))
        {
            _terminal = raw;
            return;
        }

        Collect(payload);
        output.Write(raw);
    }

    private bool IsTerminal(string? name, string payload)
    {
        switch (_dialect)
        {
            case LlmDialect.OpenAIChat:
                return payload == "[DONE]";
            case LlmDialect.OpenAIResponses:
                if (name == "response.completed" || payload.Contains("\"response.completed\"", StringComparison.Ordinal))
                {
                    try
                    {
                        _completedResponse = JsonNode.Parse(payload)?["response"] as JsonObject;
                    }
                    catch (JsonException)
                    {
                        _completedResponse = null;
                    }

                    return true;
                }

                return false;
            case LlmDialect.AnthropicMessages:
                return name == "message_stop";
            default:
                return false;
        }
    }

    private void Collect(string payload)
    {
        if (payload.Length == 0 || payload[0] != '{')
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
