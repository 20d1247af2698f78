using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Part of trim (lossy, opt-in through <c>trim.staleToolResults</c>): tool results older than the newest
/// <c>keepRecent</c> tool turns, and at least <c>minTokens</c> long, become
/// <c>[stale tool result elided: NAME (CALL_ID), N tokens]</c> — whether or not the request is over its budget.
/// </summary>
/// <remarks>
/// A tool turn is one assistant step that calls tools (parallel calls are one step). The result message or block
/// stays, so every call keeps its answer and the pairs stay valid. The marker depends only on the tool name, the call
/// id and the result's own token count, so an old result gives the same bytes in every later turn and the provider's
/// prompt cache keeps matching up to the result that became stale in this turn.
/// </remarks>
internal static class StaleToolResults
{
    public static string Marker(string name, string callId, int tokens) => $"[stale tool result elided: {name} ({callId}), {tokens} tokens]";

    /// <summary>Replaces the stale results in place; true when anything changed.</summary>
    public static bool Apply(StageContext context, StaleToolResultsOptions options)
    {
        var request = context.Request;
        var items = request.Dialect == LlmDialect.OpenAIResponses ? request.Body["input"] as JsonArray : request.Body["messages"] as JsonArray;
        if (items is null)
        {
            return false;
        }

        var steps = Steps(request.Dialect, items);
        var changed = false;
        for (var s = 0; s < steps.Count - options.KeepRecent; s++)
        {
            foreach (var result in steps[s].Results)
            {
                var text = TextOf(result.Owner[result.Property]);
                if (text is null || TrimStage.IsMarker(text))
                {
                    continue;
                }

                var tokens = context.Count(text);
                var marker = Marker(steps[s].Names.GetValueOrDefault(result.CallId, "tool"), result.CallId, tokens);
                if (tokens >= options.MinTokens && context.Count(marker) < tokens)
                {
                    result.Owner[result.Property] = marker;
                    changed = true;
                }
            }
        }

        return changed;
    }

    private sealed class Step
    {
        public Dictionary<string, string> Names { get; } = new(StringComparer.Ordinal);

        public List<(JsonObject Owner, string Property, string CallId)> Results { get; } = [];
    }

    /// <summary>The assistant steps that call tools, in order, each with the results answering its calls.</summary>
    private static List<Step> Steps(LlmDialect dialect, JsonArray items)
    {
        var steps = new List<Step>();
        var stepOf = new Dictionary<string, Step>(StringComparer.Ordinal);
        var previousWasCall = false;
        foreach (var item in items.OfType<JsonObject>())
        {
            var isCall = false;
            switch (dialect)
            {
                case LlmDialect.OpenAIChat when item["tool_calls"] is JsonArray calls && calls.Count > 0:
                    var chatStep = NewStep(steps);
                    foreach (var call in calls.OfType<JsonObject>())
                    {
                        Register(chatStep, stepOf, Str(call["id"]), Str((call["function"] ?? call["custom"])?["name"]));
                    }

                    break;
                case LlmDialect.OpenAIChat when Str(item["role"]) == "tool" && Str(item["tool_call_id"]) is { } chatId:
                    AddResult(stepOf, item, "content", chatId);
                    break;
                case LlmDialect.OpenAIResponses when Str(item["type"]) is "function_call" or "custom_tool_call":
                    isCall = true;
                    var responsesStep = previousWasCall ? steps[^1] : NewStep(steps);
                    Register(responsesStep, stepOf, Str(item["call_id"]), Str(item["name"]));
                    break;
                case LlmDialect.OpenAIResponses when Str(item["type"]) is "function_call_output" or "custom_tool_call_output" && Str(item["call_id"]) is { } outputId:
                    AddResult(stepOf, item, "output", outputId);
                    break;
                case LlmDialect.AnthropicMessages when item["content"] is JsonArray blocks:
                    Step? anthropicStep = null;
                    foreach (var block in blocks.OfType<JsonObject>())
                    {
                        switch (Str(block["type"]))
                        {
                            case "tool_use":
                                anthropicStep ??= NewStep(steps);
                                Register(anthropicStep, stepOf, Str(block["id"]), Str(block["name"]));
                                break;
                            case "tool_result" when Str(block["tool_use_id"]) is { } useId:
                                AddResult(stepOf, block, "content", useId);
                                break;
                        }
                    }

                    break;
            }

            previousWasCall = isCall;
        }

        return steps;
    }

    private static Step NewStep(List<Step> steps)
    {
        var step = new Step();
        steps.Add(step);
        return step;
    }

    private static void Register(Step step, Dictionary<string, Step> stepOf, string? id, string? name)
    {
        if (id is not null)
        {
            step.Names[id] = name ?? "tool";
            stepOf[id] = step;
        }
    }

    private static void AddResult(Dictionary<string, Step> stepOf, JsonObject owner, string property, string callId)
    {
        if (stepOf.TryGetValue(callId, out var step))
        {
            step.Results.Add((owner, property, callId));
        }
    }

    /// <summary>A result's text: a string, or an array of only text blocks (anything else — images — is left alone).</summary>
    private static string? TextOf(JsonNode? content)
    {
        switch (content)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return v.GetValue<string>();
            case JsonArray parts when parts.Count > 0:
                var text = new StringBuilder();
                foreach (var part in parts)
                {
                    if (part is not JsonObject p || Str(p["type"]) is not ("text" or "input_text" or "output_text") || Str(p["text"]) is not { } s)
                    {
                        return null;
                    }

                    text.Append(text.Length > 0 ? "\n" : string.Empty).Append(s);
                }

                return text.ToString();
            default:
                return null;
        }
    }

    private static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
