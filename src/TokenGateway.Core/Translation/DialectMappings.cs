using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Translation;

/// <summary>The value tables shared by request, response and stream translation (documented in docs/translation.md).</summary>
public static class DialectMappings
{
    /// <summary>Thinking budget (Anthropic <c>thinking.budget_tokens</c>) sent for each OpenAI <c>reasoning_effort</c>.</summary>
    /// <remarks>1024 is Anthropic's minimum budget. <c>none</c> sends no <c>thinking</c> (Anthropic's default is off).</remarks>
    public static readonly IReadOnlyDictionary<string, int> ThinkingBudgetByEffort = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["minimal"] = 1024,
        ["low"] = 2048,
        ["medium"] = 8192,
        ["high"] = 16384,
        ["xhigh"] = 32768,
    };

    /// <summary>
    /// The OpenAI <c>reasoning_effort</c> sent for an Anthropic thinking budget: below 4096 <c>low</c>, below 16384
    /// <c>medium</c>, otherwise <c>high</c> (the three levels every OpenAI reasoning model accepts). The budgets of
    /// <see cref="ThinkingBudgetByEffort"/> for low, medium and high map back to themselves.
    /// </summary>
    public static string EffortForThinkingBudget(int budgetTokens) => budgetTokens switch
    {
        < 4096 => "low",
        < 16384 => "medium",
        _ => "high",
    };

    /// <summary>OpenAI <c>finish_reason</c> for an Anthropic <c>stop_reason</c>.</summary>
    public static string FinishReasonFor(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    };

    /// <summary>Anthropic <c>stop_reason</c> for an OpenAI <c>finish_reason</c>.</summary>
    public static string StopReasonFor(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    /// <summary>OpenAI error <c>type</c> for an Anthropic error type.</summary>
    public static string OpenAIErrorTypeFor(string? anthropicType) => anthropicType switch
    {
        "invalid_request_error" or "request_too_large" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" => "rate_limit_error",
        "billing_error" => "insufficient_quota",
        _ => "server_error", // api_error, overloaded_error, timeout_error and anything newer
    };

    /// <summary>Anthropic error <c>type</c> for an OpenAI error answered with <paramref name="status"/>.</summary>
    /// <remarks>OpenAI's <c>type</c> strings are loose (e.g. <c>tokens</c>, <c>requests</c> on 429); the status decides.</remarks>
    public static string AnthropicErrorTypeFor(int status, string? openAIType) => status switch
    {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => openAIType == "insufficient_quota" ? "billing_error" : "rate_limit_error",
        503 or 529 => "overloaded_error",
        504 => "timeout_error",
        >= 400 and < 500 => "invalid_request_error",
        _ => "api_error",
    };

    internal static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    internal static bool IsNull(JsonNode? node) => node is null || node.GetValueKind() == JsonValueKind.Null;

    internal static bool TryInt(JsonNode? node, out int value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value);
    }

    internal static bool TryDouble(JsonNode? node, out double value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value);
    }

    internal static bool? Bool(JsonNode? node) => node?.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Splits a <c>data:</c> URL into media type and base64 payload.</summary>
    internal static bool TryParseDataUrl(string url, out string mediaType, out string data)
    {
        mediaType = string.Empty;
        data = string.Empty;
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var marker = url.IndexOf(";base64,", StringComparison.OrdinalIgnoreCase);
        if (marker < 5)
        {
            return false;
        }

        mediaType = url[5..marker];
        data = url[(marker + ";base64,".Length)..];
        return mediaType.Length > 0;
    }
}
