using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Caching;

/// <summary>
/// Decides whether a successful response is a complete answer worth serving again: never a truncated one
/// (<c>length</c>, <c>max_tokens</c>, Responses <c>incomplete</c>), a filtered or refused one, or one carrying an error.
/// </summary>
public static class AnswerCompleteness
{
    /// <summary>True when <paramref name="response"/> (a whole non-streaming body) ended normally.</summary>
    public static bool IsComplete(LlmDialect dialect, JsonObject response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.ContainsKey("error") && response["error"] is not null)
        {
            return false;
        }

        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                if (response["choices"] is not JsonArray { Count: > 0 } choices)
                {
                    return false;
                }

                foreach (var choice in choices)
                {
                    if (Str(choice?["finish_reason"]) is not ("stop" or "tool_calls" or "function_call"))
                    {
                        return false;
                    }
                }

                return true;
            case LlmDialect.OpenAIResponses:
                return Str(response["status"]) == "completed" && response["output"] is JsonArray;
            case LlmDialect.AnthropicMessages:
                return Str(response["type"]) == "message"
                    && Str(response["stop_reason"]) is "end_turn" or "tool_use" or "stop_sequence"
                    && response["content"] is JsonArray;
            default:
                return false;
        }
    }

    internal static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
