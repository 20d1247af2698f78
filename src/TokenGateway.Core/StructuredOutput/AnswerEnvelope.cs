using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Reads and replaces the structured answer inside each dialect's non-streaming response envelope, and merges the
/// usage of several attempts into one envelope.
/// </summary>
public static class AnswerEnvelope
{
    /// <summary>
    /// Finds the answer text: chat <c>message.content</c> or the forced tool's <c>arguments</c>; Responses
    /// <c>output_text</c> or <c>function_call.arguments</c>; Anthropic <c>text</c> or <c>tool_use.input</c>. False when
    /// there is no answer to validate (refusal, no choices, another tool).
    /// </summary>
    public static bool TryExtract(LlmDialect dialect, SchemaTarget target, JsonObject response, out string answer)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(response);
        answer = "";
        var slot = Locate(dialect, target, response);
        if (slot is null)
        {
            return false;
        }

        var (owner, field) = slot.Value;
        switch (owner[field])
        {
            case JsonValue v when v.TryGetValue<string>(out var s):
                answer = s;
                return true;
            case JsonObject or JsonArray when dialect == LlmDialect.AnthropicMessages:
                answer = owner[field]!.ToJsonString();
                return true;
            default:
                return false;
        }
    }

    /// <summary>Puts <paramref name="answer"/> where <see cref="TryExtract"/> found the original one.</summary>
    public static bool TryReplace(LlmDialect dialect, SchemaTarget target, JsonObject response, string answer)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(answer);
        var slot = Locate(dialect, target, response);
        if (slot is null)
        {
            return false;
        }

        var (owner, field) = slot.Value;
        if (dialect == LlmDialect.AnthropicMessages && target.Carrier == SchemaCarrier.Tool)
        {
            owner[field] = JsonNode.Parse(answer);
        }
        else
        {
            owner[field] = answer;
        }

        return true;
    }

    /// <summary>Adds every numeric field of <paramref name="extra"/>'s <c>usage</c> (nested too) to <paramref name="response"/>'s.</summary>
    public static void AddUsage(JsonObject response, JsonObject extra)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(extra);
        if (extra["usage"] is not JsonObject add)
        {
            return;
        }

        if (response["usage"] is not JsonObject usage)
        {
            response["usage"] = add.DeepClone();
            return;
        }

        Sum(usage, add);
    }

    private static void Sum(JsonObject target, JsonObject add)
    {
        foreach (var (name, value) in add)
        {
            switch (value)
            {
                case JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var n):
                    target[name] = target[name] is JsonValue t && t.GetValueKind() == JsonValueKind.Number && t.TryGetValue<long>(out var m) ? m + n : n;
                    break;
                case JsonObject o:
                    if (target[name] is JsonObject inner)
                    {
                        Sum(inner, o);
                    }
                    else if (target[name] is null)
                    {
                        target[name] = o.DeepClone();
                    }

                    break;
                default:
                    break;
            }
        }
    }

    private static (JsonObject Owner, string Field)? Locate(LlmDialect dialect, SchemaTarget target, JsonObject response)
    {
        var tool = target.Carrier == SchemaCarrier.Tool;
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                if (response["choices"] is not JsonArray { Count: > 0 } choices || choices[0]?["message"] is not JsonObject message)
                {
                    return null;
                }

                if (!tool)
                {
                    return message["refusal"] is JsonValue ? null : (message, "content");
                }

                foreach (var call in message["tool_calls"] as JsonArray ?? [])
                {
                    if (call?["function"] is JsonObject fn && SchemaDiscovery.Str(fn["name"]) == target.Name)
                    {
                        return (fn, "arguments");
                    }
                }

                return null;
            case LlmDialect.OpenAIResponses:
                foreach (var item in response["output"] as JsonArray ?? [])
                {
                    if (item is not JsonObject o)
                    {
                        continue;
                    }

                    var type = SchemaDiscovery.Str(o["type"]);
                    if (tool && type == "function_call" && SchemaDiscovery.Str(o["name"]) == target.Name)
                    {
                        return (o, "arguments");
                    }

                    if (!tool && type == "message")
                    {
                        foreach (var part in o["content"] as JsonArray ?? [])
                        {
                            if (part is JsonObject p && SchemaDiscovery.Str(p["type"]) == "output_text")
                            {
                                return (p, "text");
                            }
                        }
                    }
                }

                return null;
            case LlmDialect.AnthropicMessages:
                foreach (var block in response["content"] as JsonArray ?? [])
                {
                    if (block is not JsonObject b)
                    {
                        continue;
                    }

                    var type = SchemaDiscovery.Str(b["type"]);
                    if (tool && type == "tool_use" && SchemaDiscovery.Str(b["name"]) == target.Name)
                    {
                        return (b, "input");
                    }

                    if (!tool && type == "text")
                    {
                        return (b, "text");
                    }
                }

                return null;
            default:
                return null;
        }
    }
}
