using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Caching;

/// <summary>
/// Rebuilds the complete non-streaming response of a dialect from its SSE events as they pass to the client (a tee: it
/// never holds or changes an event), so a streamed answer can be stored once and served to streamed and non-streamed
/// requests alike.
/// </summary>
/// <remarks>
/// Chat completions: chunks are merged per choice (content, refusal, tool calls by index, finish reason). Responses:
/// the <c>response.completed</c> event carries the whole response. Anthropic: <c>message_start</c>, the content blocks
/// (text, tool input JSON, thinking and signature deltas, citations) and <c>message_delta</c>. An error event, a
/// malformed event or a stream without its terminal event yields no answer (<see cref="Build"/> returns null).
/// </remarks>
public sealed class StreamedAnswerAccumulator
{
    private readonly LlmDialect _dialect;
    private readonly long _maxBytes;
    private long _bytes;
    private bool _failed;
    private bool _terminal;

    // Chat completions
    private JsonObject? _chatHead;
    private readonly SortedDictionary<int, ChatChoice> _choices = [];
    private JsonObject? _usage;

    // Responses
    private JsonObject? _completed;

    // Anthropic
    private JsonObject? _message;
    private readonly SortedDictionary<int, AnthropicBlock> _blocks = [];

    /// <summary>Creates an accumulator; a stream whose events exceed <paramref name="maxBytes"/> is not kept.</summary>
    public StreamedAnswerAccumulator(LlmDialect dialect, long maxBytes)
    {
        _dialect = dialect;
        _maxBytes = maxBytes;
    }

    /// <summary>True once the stream can no longer produce a storable answer.</summary>
    public bool Failed => _failed;

    /// <summary>Takes one event (its data is parsed here; the event itself is untouched).</summary>
    public void OnEvent(in SseEvent sseEvent)
    {
        if (_failed || !sseEvent.HasData)
        {
            return;
        }

        _bytes += sseEvent.Data.Length;
        if (_bytes > _maxBytes)
        {
            Fail();
            return;
        }

        var data = sseEvent.Data;
        if (_dialect == LlmDialect.OpenAIChat && data.SequenceEqual("[DONE]"u8))
        {
            _terminal = true;
            return;
        }

        JsonObject? json;
        try
        {
            json = JsonNode.Parse(data) as JsonObject;
        }
        catch (JsonException)
        {
            json = null;
        }

        if (json is null)
        {
            Fail();
            return;
        }

        var name = sseEvent.Name.IsEmpty ? AnswerCompleteness.Str(json["type"]) : Encoding.UTF8.GetString(sseEvent.Name);
        if (name == "error" || json.ContainsKey("error") && json["error"] is not null)
        {
            Fail();
            return;
        }

        switch (_dialect)
        {
            case LlmDialect.OpenAIChat:
                OnChatChunk(json);
                break;
            case LlmDialect.OpenAIResponses:
                OnResponsesEvent(name ?? AnswerCompleteness.Str(json["type"]), json);
                break;
            case LlmDialect.AnthropicMessages:
                OnAnthropicEvent(name ?? AnswerCompleteness.Str(json["type"]), json);
                break;
            default:
                Fail();
                break;
        }
    }

    /// <summary>
    /// The complete response, or null when the stream failed, never ended, or did not end normally.
    /// <paramref name="billed"/> supplies the usage when the stream's own usage was not seen (the gateway hid the
    /// usage chunk it had asked for).
    /// </summary>
    public JsonObject? Build(TokenUsage? billed)
    {
        if (_failed)
        {
            return null;
        }

        var response = _dialect switch
        {
            LlmDialect.OpenAIChat => BuildChat(billed),
            LlmDialect.OpenAIResponses => _completed,
            LlmDialect.AnthropicMessages => BuildAnthropic(),
            _ => null,
        };
        return response is not null && AnswerCompleteness.IsComplete(_dialect, response) ? response : null;
    }

    private void Fail()
    {
        _failed = true;
        _choices.Clear();
        _blocks.Clear();
        _completed = null;
        _message = null;
    }

    // ------------------------------------------------------------------ chat completions

    private void OnChatChunk(JsonObject chunk)
    {
        _chatHead ??= chunk;
        if (chunk["usage"] is JsonObject usage)
        {
            _usage = usage;
        }

        if (chunk["choices"] is not JsonArray choices)
        {
            return;
        }

        foreach (var node in choices)
        {
            if (node is not JsonObject choice)
            {
                continue;
            }

            var index = choice["index"] is JsonValue iv && iv.TryGetValue<int>(out var i) ? i : 0;
            if (!_choices.TryGetValue(index, out var state))
            {
                _choices[index] = state = new ChatChoice();
            }

            if (choice["delta"] is JsonObject delta)
            {
                state.Role ??= AnswerCompleteness.Str(delta["role"]);
                if (AnswerCompleteness.Str(delta["content"]) is { } content)
                {
                    (state.Content ??= new StringBuilder()).Append(content);
                }

                if (AnswerCompleteness.Str(delta["refusal"]) is { } refusal)
                {
                    (state.Refusal ??= new StringBuilder()).Append(refusal);
                }

                if (delta["tool_calls"] is JsonArray calls)
                {
                    foreach (var callNode in calls)
                    {
                        if (callNode is not JsonObject call)
                        {
                            continue;
                        }

                        var callIndex = call["index"] is JsonValue cv && cv.TryGetValue<int>(out var ci) ? ci : 0;
                        if (!state.ToolCalls.TryGetValue(callIndex, out var tool))
                        {
                            state.ToolCalls[callIndex] = tool = new ToolCall();
                        }

                        tool.Id ??= AnswerCompleteness.Str(call["id"]);
                        tool.Type ??= AnswerCompleteness.Str(call["type"]);
                        if (call["function"] is JsonObject function)
                        {
                            tool.Name.Append(AnswerCompleteness.Str(function["name"]));
                            tool.Arguments.Append(AnswerCompleteness.Str(function["arguments"]));
                        }
                    }
                }
            }

            if (AnswerCompleteness.Str(choice["finish_reason"]) is { } finish)
            {
                state.FinishReason = finish;
            }
        }
    }

    private JsonObject? BuildChat(TokenUsage? billed)
    {
        if (!_terminal || _chatHead is null || _choices.Count == 0)
        {
            return null;
        }

        var choices = new JsonArray();
        foreach (var (index, state) in _choices)
        {
            var message = new JsonObject
            {
                ["role"] = state.Role ?? "assistant",
                ["content"] = state.Content?.ToString(),
                ["refusal"] = state.Refusal?.ToString(),
            };
            if (state.ToolCalls.Count > 0)
            {
                var calls = new JsonArray();
                foreach (var (_, tool) in state.ToolCalls)
                {
                    calls.Add(new JsonObject
                    {
                        ["id"] = tool.Id,
                        ["type"] = tool.Type ?? "function",
                        ["function"] = new JsonObject { ["name"] = tool.Name.ToString(), ["arguments"] = tool.Arguments.ToString() },
                    });
                }

                message["tool_calls"] = calls;
            }

            choices.Add(new JsonObject { ["index"] = index, ["message"] = message, ["logprobs"] = null, ["finish_reason"] = state.FinishReason });
        }

        var response = new JsonObject
        {
            ["id"] = _chatHead["id"]?.DeepClone(),
            ["object"] = "chat.completion",
            ["created"] = _chatHead["created"]?.DeepClone(),
            ["model"] = _chatHead["model"]?.DeepClone(),
        };
        if (_chatHead["system_fingerprint"] is { } fingerprint)
        {
            response["system_fingerprint"] = fingerprint.DeepClone();
        }

        if (_chatHead["service_tier"] is { } tier)
        {
            response["service_tier"] = tier.DeepClone();
        }

        response["choices"] = choices;
        response["usage"] = _usage?.DeepClone() ?? (billed is { } u ? ChatUsage(u) : null);
        return response;
    }

    /// <summary>OpenAI's usage object for <paramref name="usage"/> (when the stream's own was hidden from the tee).</summary>
    public static JsonObject ChatUsage(TokenUsage usage) => new()
    {
        ["prompt_tokens"] = usage.InputTokens,
        ["completion_tokens"] = usage.OutputTokens,
        ["total_tokens"] = usage.InputTokens + usage.OutputTokens,
        ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = usage.CachedInputTokens },
        ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = usage.ReasoningTokens },
    };

    // ------------------------------------------------------------------ responses

    private void OnResponsesEvent(string? type, JsonObject json)
    {
        switch (type)
        {
            case "response.completed":
                _completed = json["response"] as JsonObject;
                _terminal = true;
                if (_completed is null)
                {
                    Fail();
                }

                break;
            case "response.failed" or "response.incomplete":
                Fail();
                break;
        }
    }

    // ------------------------------------------------------------------ anthropic

    private void OnAnthropicEvent(string? type, JsonObject json)
    {
        switch (type)
        {
            case "message_start":
                _message = json["message"] as JsonObject;
                if (_message is null)
                {
                    Fail();
                }

                break;
            case "content_block_start":
                if (json["content_block"] is JsonObject block && Index(json) is { } start)
                {
                    _blocks[start] = new AnthropicBlock(block);
                }
                else
                {
                    Fail();
                }

                break;
            case "content_block_delta":
                if (Index(json) is not { } at || !_blocks.TryGetValue(at, out var target) || json["delta"] is not JsonObject delta)
                {
                    Fail();
                    return;
                }

                target.Apply(delta);
                break;
            case "message_delta":
                if (_message is null)
                {
                    Fail();
                    return;
                }

                if (json["delta"] is JsonObject messageDelta)
                {
                    foreach (var (name, value) in messageDelta)
                    {
                        _message[name] = value?.DeepClone();
                    }
                }

                if (json["usage"] is JsonObject usage)
                {
                    var merged = _message["usage"] as JsonObject ?? [];
                    foreach (var (name, value) in usage)
                    {
                        if (value is not null)
                        {
                            merged[name] = value.DeepClone();
                        }
                    }

                    _message["usage"] = merged;
                }

                break;
            case "message_stop":
                _terminal = true;
                break;
        }
    }

    private JsonObject? BuildAnthropic()
    {
        if (!_terminal || _message is null)
        {
            return null;
        }

        var response = (JsonObject)_message.DeepClone();
        var content = new JsonArray();
        foreach (var (_, block) in _blocks)
        {
            if (block.Build() is not { } built)
            {
                return null;
            }

            content.Add(built);
        }

        response["content"] = content;
        return response;
    }

    private static int? Index(JsonObject json) => json["index"] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;

    private sealed class ChatChoice
    {
        public string? Role;
        public StringBuilder? Content;
        public StringBuilder? Refusal;
        public string? FinishReason;
        public SortedDictionary<int, ToolCall> ToolCalls { get; } = [];
    }

    private sealed class ToolCall
    {
        public string? Id;
        public string? Type;
        public StringBuilder Name { get; } = new();
        public StringBuilder Arguments { get; } = new();
    }

    private sealed class AnthropicBlock(JsonObject start)
    {
        private readonly JsonObject _block = (JsonObject)start.DeepClone();
        private StringBuilder? _text;
        private StringBuilder? _json;
        private StringBuilder? _thinking;
        private StringBuilder? _signature;

        public void Apply(JsonObject delta)
        {
            switch (AnswerCompleteness.Str(delta["type"]))
            {
                case "text_delta":
                    (_text ??= new StringBuilder(AnswerCompleteness.Str(_block["text"]) ?? "")).Append(AnswerCompleteness.Str(delta["text"]));
                    break;
                case "input_json_delta":
                    (_json ??= new StringBuilder()).Append(AnswerCompleteness.Str(delta["partial_json"]));
                    break;
                case "thinking_delta":
                    (_thinking ??= new StringBuilder(AnswerCompleteness.Str(_block["thinking"]) ?? "")).Append(AnswerCompleteness.Str(delta["thinking"]));
                    break;
                case "signature_delta":
                    (_signature ??= new StringBuilder()).Append(AnswerCompleteness.Str(delta["signature"]));
                    break;
                case "citations_delta":
                    var citations = _block["citations"] as JsonArray ?? [];
                    citations.Add(delta["citation"]?.DeepClone());
                    _block["citations"] = citations;
                    break;
            }
        }

        public JsonObject? Build()
        {
            if (_text is not null)
            {
                _block["text"] = _text.ToString();
            }

            if (_thinking is not null)
            {
                _block["thinking"] = _thinking.ToString();
            }

            if (_signature is not null)
            {
                _block["signature"] = _signature.ToString();
            }

            if (_json is not null)
            {
                var text = _json.ToString();
                try
                {
                    _block["input"] = text.Length == 0 ? new JsonObject() : JsonNode.Parse(text);
                }
                catch (JsonException)
                {
                    return null; // a tool input that is not JSON is not a complete answer
                }
            }

            return _block;
        }
    }
}
