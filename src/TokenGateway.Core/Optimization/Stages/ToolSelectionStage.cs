using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 0 (lossy, opt-in): when a request declares more than <c>maxTools</c> function tools, sends only the most
/// relevant ones. Always kept: the policy's <c>always</c> list, tools named by <c>tool_choice</c>, every tool already
/// called in the conversation, tools carrying the client's <c>cache_control</c>, and tools that are not plain
/// functions (built-in / server tools). The rest are ranked by BM25 of their name, description and parameter names
/// against the latest user turn and the recent tool activity, and the best fill the remaining places. Kept tools stay
/// in their declared order.
/// </summary>
/// <remarks>
/// Deterministic: the same request always gives the same subset. Idempotent: a second pass finds at most
/// <c>maxTools</c> candidates, or only pinned ones, and changes nothing. Never leaves zero function tools
/// (<c>maxTools</c> ≥ 1). The saving is exact: the request is recounted with the provider-faithful counter, which
/// renders tool definitions as the provider bills them.
/// </remarks>
internal sealed class ToolSelectionStage : IOptimizationStage
{
    /// <summary>Tool calls of this many latest assistant steps count as recent activity.</summary>
    internal const int RecentSteps = 2;

    /// <summary>Weight of the similarity to recently called tools, relative to the similarity to the user turn (both scaled to 0–1).</summary>
    internal const double RecentWeight = 0.1;

    public string Name => OptimizationStages.Tools;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Tools.Enabled;

    public int Apply(StageContext context)
    {
        var request = context.Request;
        if (request.Body["tools"] is not JsonArray tools)
        {
            return 0;
        }

        var keep = Select(request, context.Policy.Tools);
        if (keep is null)
        {
            return 0;
        }

        var original = tools.ToArray();
        for (var i = original.Length - 1; i >= 0; i--)
        {
            if (!keep.Contains(i))
            {
                tools.RemoveAt(i);
            }
        }

        var after = context.Counter.CountInputTokens(request, context.Model);
        if (after >= context.TokensCurrent)
        {
            // Cannot happen with the request counter (every function costs tokens); restore rather than grow.
            tools.Clear();
            foreach (var tool in original)
            {
                tools.Add(tool);
            }

            return 0;
        }

        request.MarkModified();
        var saved = context.TokensCurrent - after;
        context.TokensCurrent = after;
        return saved;
    }

    /// <summary>The indexes of <c>tools</c> to keep, or null when the request keeps all of them.</summary>
    internal static HashSet<int>? Select(LlmRequest request, ToolsOptions options)
    {
        if (request.Body["tools"] is not JsonArray tools)
        {
            return null;
        }

        var candidates = new List<(int Index, string Name, JsonObject Definition)>();
        var keep = new HashSet<int>();
        for (var i = 0; i < tools.Count; i++)
        {
            if (tools[i] is JsonObject tool && FunctionOf(request.Dialect, tool) is var (name, definition) && tool["cache_control"] is null)
            {
                candidates.Add((i, name, definition));
            }
            else
            {
                keep.Add(i); // built-in/server tools and the client's cache breakpoint stay as declared
            }
        }

        if (candidates.Count <= options.MaxTools)
        {
            return null;
        }

        var pinned = new HashSet<string>(options.Always, StringComparer.Ordinal);
        CollectNames(request.Body["tool_choice"], pinned);
        var activity = Activity(request);
        pinned.UnionWith(activity.Called);

        var chosen = 0;
        foreach (var candidate in candidates.Where(c => pinned.Contains(c.Name)))
        {
            keep.Add(candidate.Index);
            chosen++;
        }

        var rest = candidates.Where(c => !pinned.Contains(c.Name)).ToList();
        if (chosen < options.MaxTools && rest.Count > 0)
        {
            var documents = rest.Select(c => Describe(c.Name, c.Definition)).ToList();
            // Recent tool activity: tools like the ones just called (same family, same objects) get a small boost.
            var recent = string.Join('\n', candidates.Where(c => activity.Recent.Contains(c.Name)).Select(c => Describe(c.Name, c.Definition)));
            var scores = Bm25.Blend(activity.Query, recent, documents, RecentWeight);

            foreach (var r in Enumerable.Range(0, rest.Count).OrderByDescending(r => scores[r]).ThenBy(r => r).Take(options.MaxTools - chosen))
            {
                keep.Add(rest[r].Index);
            }
        }

        return keep.Count == tools.Count ? null : keep;
    }

    /// <summary>The name and the object holding description/parameters of a function tool; null for any other tool.</summary>
    internal static (string Name, JsonObject Definition)? FunctionOf(LlmDialect dialect, JsonObject tool)
    {
        var type = Str(tool["type"]);
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                var function = type == "function" ? tool["function"] as JsonObject : type == "custom" ? tool["custom"] as JsonObject : null;
                return function is not null && Str(function["name"]) is { Length: > 0 } chatName ? (chatName, function) : null;
            case LlmDialect.OpenAIResponses:
                return type is "function" or "custom" && Str(tool["name"]) is { Length: > 0 } name ? (name, tool) : null;
            case LlmDialect.AnthropicMessages:
                // Custom tools carry an input_schema; server tools (web_search_…, bash_…) have a versioned type instead.
                return type is null or "custom" && tool["input_schema"] is JsonObject && Str(tool["name"]) is { Length: > 0 } toolName ? (toolName, tool) : null;
            default:
                return null;
        }
    }

    /// <summary>The text a tool is ranked by: its name split into words, its description, its parameters' names and descriptions.</summary>
    internal static string Describe(string name, JsonObject definition)
    {
        var text = new StringBuilder();
        AppendWords(text, name);
        text.Append('\n').Append(Str(definition["description"])).Append('\n');
        var schema = definition["parameters"] ?? definition["input_schema"];
        if (schema?["properties"] is JsonObject properties)
        {
            foreach (var (parameter, property) in properties)
            {
                AppendWords(text, parameter);
                text.Append(' ').Append(Str(property?["description"])).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>The tools called anywhere in the conversation, those of the latest steps, and the text of the latest user turn.</summary>
    internal static (HashSet<string> Called, HashSet<string> Recent, string Query) Activity(LlmRequest request)
    {
        var called = new HashSet<string>(StringComparer.Ordinal);
        var steps = new List<List<string>>(); // tool names per assistant step, in order
        var items = request.Dialect == LlmDialect.OpenAIResponses ? request.Body["input"] as JsonArray : request.Body["messages"] as JsonArray;
        var previousCalled = false;
        for (var i = 0; items is not null && i < items.Count; i++)
        {
            var names = items[i] is JsonObject item ? CalledBy(request.Dialect, item) : [];
            if (names.Count > 0)
            {
                called.UnionWith(names);
                if (request.Dialect == LlmDialect.OpenAIResponses && previousCalled)
                {
                    steps[^1].AddRange(names); // consecutive function_call items are one (parallel) step
                }
                else
                {
                    steps.Add(names);
                }
            }

            previousCalled = names.Count > 0;
        }

        var slots = RequestText.Slots(request);
        var query = new StringBuilder();
        var last = slots.FindLastIndex(s => s.Kind == SlotKind.User);
        if (last >= 0)
        {
            foreach (var slot in slots.Where(s => s.Kind == SlotKind.User && s.Message == slots[last].Message))
            {
                query.Append(slot.Text).Append('\n');
            }
        }

        var recent = steps.Skip(Math.Max(0, steps.Count - RecentSteps)).SelectMany(s => s).ToHashSet(StringComparer.Ordinal);
        return (called, recent, query.ToString());
    }

    private static List<string> CalledBy(LlmDialect dialect, JsonObject item)
    {
        var names = new List<string>();
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                if (item["tool_calls"] is JsonArray calls)
                {
                    foreach (var call in calls.OfType<JsonObject>())
                    {
                        Add(names, (call["function"] ?? call["custom"])?["name"]);
                    }
                }

                Add(names, item["function_call"]?["name"]);
                break;
            case LlmDialect.OpenAIResponses when Str(item["type"]) is "function_call" or "custom_tool_call":
                Add(names, item["name"]);
                break;
            case LlmDialect.AnthropicMessages when item["content"] is JsonArray blocks:
                foreach (var block in blocks.OfType<JsonObject>().Where(b => Str(b["type"]) == "tool_use"))
                {
                    Add(names, block["name"]);
                }

                break;
        }

        return names;
    }

    /// <summary>Every <c>name</c> inside <c>tool_choice</c>: a named function/tool/custom tool, or an <c>allowed_tools</c> list.</summary>
    private static void CollectNames(JsonNode? node, HashSet<string> names)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    if (key == "name" && Str(value) is { Length: > 0 } name)
                    {
                        names.Add(name);
                    }
                    else
                    {
                        CollectNames(value, names);
                    }
                }

                break;
            case JsonArray a:
                foreach (var item in a)
                {
                    CollectNames(item, names);
                }

                break;
        }
    }

    /// <summary>Appends an identifier as words: <c>get_stock_info</c> / <c>getStockInfo</c> → "get stock info", plus the identifier itself.</summary>
    private static void AppendWords(StringBuilder text, string identifier)
    {
        for (var i = 0; i < identifier.Length; i++)
        {
            var c = identifier[i];
            if (i > 0 && char.IsUpper(c) && char.IsLower(identifier[i - 1]))
            {
                text.Append(' ');
            }

            text.Append(c is '_' or '-' or '.' ? ' ' : c);
        }

        text.Append(' ').Append(identifier.Replace("_", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal));
    }

    private static void Add(List<string> names, JsonNode? name)
    {
        if (Str(name) is { Length: > 0 } s)
        {
            names.Add(s);
        }
    }

    private static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
