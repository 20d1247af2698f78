using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using static TokenGateway.Core.Translation.DialectMappings;

namespace TokenGateway.Core.Translation;

/// <summary>Translates complete (non-streamed) answers and provider error envelopes between the two dialects.</summary>
public static class ResponseTranslator
{
    /// <summary>
    /// An Anthropic <c>message</c> as an OpenAI <c>chat.completion</c>. Text blocks are joined into <c>content</c>,
    /// <c>tool_use</c> blocks become <c>tool_calls</c> (arguments as a JSON string, ids kept), thinking text goes to
    /// <c>reasoning_content</c> (signatures are dropped), and the usage is mapped as in docs/translation.md.
    /// </summary>
    /// <param name="message">The provider's answer.</param>
    /// <param name="created">Unix seconds for <c>created</c> (Anthropic answers carry no timestamp).</param>
    public static JsonObject MessageToChatCompletion(JsonObject message, long created)
    {
        ArgumentNullException.ThrowIfNull(message);
        var text = new StringBuilder();
        var reasoning = new StringBuilder();
        var hasText = false;
        var calls = new JsonArray();
        if (message["content"] is JsonArray blocks)
        {
            foreach (var block in blocks.OfType<JsonObject>())
            {
                switch (Str(block["type"]))
                {
                    case "text":
                        hasText = true;
                        text.Append(Str(block!["text"]));
                        break;
                    case "thinking":
                        reasoning.Append(Str(block!["thinking"]));
                        break;
                    case "tool_use":
                        calls.Add(new JsonObject
                        {
                            ["id"] = Str(block!["id"]),
                            ["type"] = "function",
                            ["function"] = new JsonObject
                            {
                                ["name"] = Str(block["name"]),
                                ["arguments"] = (block["input"] ?? new JsonObject()).ToJsonString(LlmRequestParser.WriteOptions),
                            },
                        });
                        break;
                    default:
                        break; // redacted_thinking and server-tool blocks have no chat equivalent
                }
            }
        }

        var assistant = new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = hasText ? text.ToString() : null,
            ["refusal"] = null,
        };
        if (reasoning.Length > 0)
        {
            assistant["reasoning_content"] = reasoning.ToString();
        }

        if (calls.Count > 0)
        {
            assistant["tool_calls"] = calls;
        }

        var completion = new JsonObject
        {
            ["id"] = message["id"]?.DeepClone(),
            ["object"] = "chat.completion",
            ["created"] = created,
            ["model"] = message["model"]?.DeepClone(),
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = assistant,
                ["logprobs"] = null,
                ["finish_reason"] = FinishReasonFor(Str(message["stop_reason"])),
            }),
        };
        if (message["usage"] is JsonObject usage)
        {
            completion["usage"] = ChatUsage(usage);
        }

        return completion;
    }

    /// <summary>
    /// An Anthropic <c>message</c> as an OpenAI Responses <c>response</c>: text blocks become one <c>message</c> item
    /// each (<c>output_text</c> content), <c>tool_use</c> blocks become <c>function_call</c> items (<c>call_id</c> is the
    /// tool_use id, <c>arguments</c> the input as a JSON string), thinking becomes a <c>reasoning</c> item with the
    /// thinking as its summary. <c>max_tokens</c> and <c>refusal</c> stops make the response <c>incomplete</c>.
    /// </summary>
    /// <param name="message">The provider's answer.</param>
    /// <param name="created">Unix seconds for <c>created_at</c> (Anthropic answers carry no timestamp).</param>
    public static JsonObject MessageToResponse(JsonObject message, long created)
    {
        ArgumentNullException.ThrowIfNull(message);
        var id = Str(message["id"]) ?? string.Empty;
        var idBase = id.StartsWith("msg_", StringComparison.Ordinal) ? id[4..] : id;
        var output = new JsonArray();
        if (message["content"] is JsonArray blocks)
        {
            foreach (var block in blocks.OfType<JsonObject>())
            {
                var index = output.Count;
                switch (Str(block["type"]))
                {
                    case "text":
                        output.Add(new JsonObject
                        {
                            ["id"] = $"msg_{idBase}_{index}",
                            ["type"] = "message",
                            ["status"] = "completed",
                            ["role"] = "assistant",
                            ["content"] = new JsonArray(new JsonObject
                            {
                                ["type"] = "output_text",
                                ["annotations"] = new JsonArray(),
                                ["logprobs"] = new JsonArray(),
                                ["text"] = Str(block["text"]) ?? string.Empty,
                            }),
                        });
                        break;
                    case "thinking":
                        var summary = new JsonArray();
                        if (Str(block["thinking"]) is { Length: > 0 } thinking)
                        {
                            summary.Add(new JsonObject { ["type"] = "summary_text", ["text"] = thinking });
                        }

                        output.Add(new JsonObject { ["id"] = $"rs_{idBase}_{index}", ["type"] = "reasoning", ["summary"] = summary });
                        break;
                    case "tool_use":
                        var callId = Str(block["id"]) ?? string.Empty;
                        output.Add(new JsonObject
                        {
                            ["id"] = "fc_" + callId,
                            ["type"] = "function_call",
                            ["status"] = "completed",
                            ["call_id"] = callId,
                            ["name"] = Str(block["name"]),
                            ["arguments"] = (block["input"] ?? new JsonObject()).ToJsonString(LlmRequestParser.WriteOptions),
                        });
                        break;
                    default:
                        break; // redacted_thinking and server-tool blocks have no Responses equivalent
                }
            }
        }

        var incomplete = AnthropicToResponsesStreamTranslator.IncompleteReason(Str(message["stop_reason"]));
        return new JsonObject
        {
            ["id"] = "resp_" + idBase,
            ["object"] = "response",
            ["created_at"] = created,
            ["status"] = incomplete is null ? "completed" : "incomplete",
            ["error"] = null,
            ["incomplete_details"] = incomplete is null ? null : new JsonObject { ["reason"] = incomplete },
            ["model"] = message["model"]?.DeepClone(),
            ["output"] = output,
            ["parallel_tool_calls"] = true,
            ["tools"] = new JsonArray(),
            ["usage"] = message["usage"] is JsonObject usage ? ResponsesUsage(usage) : null,
        };
    }

    /// <summary>
    /// An OpenAI <c>chat.completion</c> as an Anthropic <c>message</c>, or null with <paramref name="error"/> set when
    /// it cannot be represented (no choice, or tool-call arguments that are not a JSON object).
    /// </summary>
    public static JsonObject? ChatCompletionToMessage(JsonObject completion, out string? error)
    {
        ArgumentNullException.ThrowIfNull(completion);
        error = null;
        if (completion["choices"] is not JsonArray { Count: > 0 } choices || (choices[0] as JsonObject)?["message"] is not JsonObject assistant)
        {
            error = "The upstream answer has no choice to translate.";
            return null;
        }

        var content = new JsonArray();
        var reasoning = Str(assistant["reasoning_content"]) ?? Str(assistant["reasoning"]);
        if (!string.IsNullOrEmpty(reasoning))
        {
            content.Add(new JsonObject { ["type"] = "thinking", ["thinking"] = reasoning, ["signature"] = string.Empty });
        }

        if (Str(assistant["content"]) is { Length: > 0 } text)
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = text });
        }

        if (Str(assistant["refusal"]) is { Length: > 0 } refusal)
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = refusal });
        }

        if (assistant["tool_calls"] is JsonArray calls)
        {
            foreach (var call in calls.OfType<JsonObject>())
            {
                var function = call["function"] as JsonObject;
                var arguments = Str(function?["arguments"]) ?? string.Empty;
                JsonNode? input;
                try
                {
                    input = string.IsNullOrWhiteSpace(arguments) ? new JsonObject() : JsonNode.Parse(arguments);
                }
                catch (JsonException)
                {
                    input = null;
                }

                if (input is not JsonObject)
                {
                    error = "The upstream model produced tool-call arguments that are not a JSON object; they cannot become an Anthropic tool_use input.";
                    return null;
                }

                content.Add(new JsonObject
                {
                    ["type"] = "tool_use",
                    ["id"] = Str(call["id"]),
                    ["name"] = Str(function?["name"]),
                    ["input"] = input,
                    ["caller"] = new JsonObject { ["type"] = "direct" }, // current Anthropic answers say who invoked the tool
                });
            }
        }

        var finish = Str(choices[0]!["finish_reason"]); // choices[0] is an object: checked above
        var message = new JsonObject
        {
            ["id"] = completion["id"]?.DeepClone(),
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = completion["model"]?.DeepClone(),
            ["content"] = content,
            ["stop_reason"] = StopReasonFor(finish),
            ["stop_sequence"] = null,
        };
        message["usage"] = completion["usage"] is JsonObject usage
            ? AnthropicUsage(usage)
            : new JsonObject { ["input_tokens"] = 0, ["output_tokens"] = 0 };
        return message;
    }

    /// <summary>
    /// An Anthropic error body (<c>{"type":"error","error":{"type","message"}}</c>) as OpenAI's
    /// <c>{"error":{"message","type","param","code"}}</c>; null when the body is not Anthropic's envelope.
    /// The HTTP status is kept by the caller.
    /// </summary>
    public static JsonObject? AnthropicErrorToOpenAI(JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body["error"] is not JsonObject error)
        {
            return null;
        }

        var type = Str(error["type"]);
        return new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = Str(error["message"]) ?? string.Empty,
                ["type"] = OpenAIErrorTypeFor(type),
                ["param"] = null,
                ["code"] = type, // the provider's own type, so nothing is lost
            },
        };
    }

    /// <summary>An OpenAI error body as Anthropic's envelope; null when the body is not OpenAI's envelope.</summary>
    public static JsonObject? OpenAIErrorToAnthropic(JsonObject body, int status)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body["error"] is not JsonObject error)
        {
            return null;
        }

        var message = Str(error["message"]) ?? string.Empty;
        if (Str(error["param"]) is { } param)
        {
            message += $" (param: {param})";
        }

        return new JsonObject
        {
            ["type"] = "error",
            ["error"] = new JsonObject
            {
                ["type"] = AnthropicErrorTypeFor(status, Str(error["type"])),
                ["message"] = message,
            },
        };
    }

    /// <summary>OpenAI chat usage for an Anthropic usage object.</summary>
    internal static JsonObject ChatUsage(JsonObject usage)
    {
        TryInt(usage["input_tokens"], out var input);
        TryInt(usage["cache_read_input_tokens"], out var cacheRead);
        TryInt(usage["cache_creation_input_tokens"], out var cacheWrite);
        TryInt(usage["output_tokens"], out var output);
        var prompt = input + cacheRead + cacheWrite;
        return new JsonObject
        {
            ["prompt_tokens"] = prompt,
            ["completion_tokens"] = output,
            ["total_tokens"] = prompt + output,
            ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cacheRead },
        };
    }

    /// <summary>OpenAI Responses usage for an Anthropic usage object (Anthropic does not count thinking tokens apart).</summary>
    internal static JsonObject ResponsesUsage(JsonObject usage)
    {
        TryInt(usage["input_tokens"], out var input);
        TryInt(usage["cache_read_input_tokens"], out var cacheRead);
        TryInt(usage["cache_creation_input_tokens"], out var cacheWrite);
        TryInt(usage["output_tokens"], out var output);
        var prompt = input + cacheRead + cacheWrite;
        return new JsonObject
        {
            ["input_tokens"] = prompt,
            ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = cacheRead },
            ["output_tokens"] = output,
            ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
            ["total_tokens"] = prompt + output,
        };
    }

    /// <summary>Anthropic usage for an OpenAI chat usage object.</summary>
    internal static JsonObject AnthropicUsage(JsonObject usage)
    {
        TryInt(usage["prompt_tokens"], out var prompt);
        TryInt(usage["completion_tokens"], out var completion);
        TryInt((usage["prompt_tokens_details"] as JsonObject)?["cached_tokens"], out var cached);
        return new JsonObject
        {
            ["input_tokens"] = Math.Max(0, prompt - cached),
            ["cache_creation_input_tokens"] = 0,
            ["cache_read_input_tokens"] = cached,
            ["output_tokens"] = completion,
        };
    }
}
