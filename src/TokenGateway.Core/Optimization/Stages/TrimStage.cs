using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 1: fits the conversation into the model's input budget. System/developer messages and tools are pinned;
/// {assistant + its tool calls + all their results} is one unit; the kept history starts on a user turn and keeps
/// the newest units. Old tool results are shortened to a marker first, then the oldest units are dropped.
/// With <c>staleToolResults</c> set, results older than the newest tool turns are elided first, even under budget
/// (<see cref="StaleToolResults"/>).
/// </summary>
/// <remarks>
/// Cuts happen at chunk boundaries computed from the start of the conversation (chunk = (1 − retention) × budget),
/// so consecutive turns of a growing conversation make the same cut until a whole chunk more must go: the trimmed
/// prefix stays byte-stable and provider prompt caches keep hitting between cuts.
/// </remarks>
internal sealed partial class TrimStage : IOptimizationStage
{
    private const int DefaultReservedOutput = 4096;

    public string Name => OptimizationStages.Trim;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Trim.Enabled;

    /// <summary>Input budget: context window − reserved output − margin, or the policy cap if lower.</summary>
    public static int Budget(StageContext context)
    {
        var limits = context.Limits;
        var reserved = limits.ReservedOutputTokens > 0
            ? limits.ReservedOutputTokens
            : Math.Min(context.Request.MaxTokens ?? limits.DefaultMaxTokens ?? DefaultReservedOutput, limits.CapMaxTokens ?? int.MaxValue);
        var budget = context.Model.ContextWindow - reserved - context.Policy.Trim.MarginTokens;
        return Math.Max(1, Math.Min(budget, context.Policy.Trim.MaxInputTokens ?? int.MaxValue));
    }

    public static string Marker(int tokens) => $"[tool result trimmed: {tokens} tokens]";

    public int Apply(StageContext context)
    {
        var received = context.TokensCurrent;
        if (context.Policy.Trim.StaleToolResults is { } stale && StaleToolResults.Apply(context, stale))
        {
            context.Request.MarkModified();
            context.TokensCurrent = context.Counter.CountInputTokens(context.Request, context.Model);
        }

        return Math.Max(0, received - FitBudget(context));
    }

    /// <summary>Degrades and drops old units until the request fits its budget; returns the tokens left.</summary>
    private static int FitBudget(StageContext context)
    {
        var budget = Budget(context);
        var start = context.TokensCurrent;
        if (start <= budget || Conversation.Build(context) is not { Units.Count: > 1 } conversation)
        {
            return start;
        }

        var options = context.Policy.Trim;
        var units = conversation.Units;
        var lastUser = units.FindLastIndex(u => u.IsUser);
        var protectedFrom = Math.Max(0, units.Count - options.KeepRecentUnits);
        if (lastUser >= 0)
        {
            protectedFrom = Math.Min(protectedFrom, lastUser);
        }

        // Chunk ids from cumulative cost since the start of the conversation: stable as the conversation grows.
        var chunkSize = Math.Max(1, (int)((1 - options.RetentionRatio) * budget));
        var chunkOf = new int[units.Count];
        long cumulative = 0;
        for (var i = 0; i < units.Count; i++)
        {
            chunkOf[i] = (int)(cumulative / chunkSize);
            cumulative += units[i].Cost;
        }

        var chunks = protectedFrom == 0 ? 0 : chunkOf[protectedFrom - 1] + 1;
        var maxLevel = lastUser >= 0 ? 2 * chunks : chunks;
        var applied = 0;
        var current = start;
        for (var level = 1; level <= maxLevel && current > budget; level++)
        {
            if (EstimateAt(level) > budget && level < maxLevel)
            {
                continue;
            }

            ApplyLevel(level);
            applied = level;
            current = context.Counter.CountInputTokens(context.Request, context.Model);
        }

        if (applied == 0)
        {
            return start;
        }

        context.Request.MarkModified();
        context.TokensCurrent = current;
        return current;

        int EstimateAt(int level)
        {
            var (degradeChunks, cut) = Plan(level);
            long saved = 0;
            for (var i = 0; i < protectedFrom; i++)
            {
                if (i < cut)
                {
                    saved += units[i].Cost;
                }
                else if (chunkOf[i] < degradeChunks)
                {
                    saved += units[i].Results.Sum(r => r.Saving);
                }
            }

            return (int)Math.Max(0, start - saved);
        }

        void ApplyLevel(int level)
        {
            var (degradeChunks, cut) = Plan(level);
            for (var i = cut; i < protectedFrom; i++)
            {
                if (chunkOf[i] < degradeChunks)
                {
                    foreach (var result in units[i].Results)
                    {
                        result.Degrade();
                    }
                }
            }

            conversation.KeepFrom(cut);
        }

        (int DegradeChunks, int Cut) Plan(int level)
        {
            if (level <= chunks)
            {
                return (level, 0);
            }

            var dropChunks = level - chunks;
            var cut = 0;
            while (cut < protectedFrom && chunkOf[cut] < dropChunks)
            {
                cut++;
            }

            while (cut < units.Count && !units[cut].IsUser)
            {
                cut++; // the kept history must start on a user turn
            }

            return (chunks, Math.Min(cut, lastUser));
        }
    }

    /// <summary>True for the markers trim writes (over-budget shortening and stale results), which are never shortened again.</summary>
    public static bool IsMarker(string text) => text.StartsWith('[') && MarkerPattern().IsMatch(text);

    [GeneratedRegex(@"^\[(tool result trimmed: \d+ tokens|stale tool result elided: [^\]\n]* \([^)\n]*\), \d+ tokens)\]$")]
    private static partial Regex MarkerPattern();

    /// <summary>A tool result that can be shortened to a marker.</summary>
    private sealed class ToolResult(Action<string> set, int tokens, int markerTokens)
    {
        public int Saving => Math.Max(0, tokens - markerTokens);

        public void Degrade()
        {
            if (Saving > 0)
            {
                set(Marker(tokens));
            }
        }
    }

    private sealed class Unit
    {
        public bool IsUser { get; init; }

        public List<JsonNode> Items { get; } = [];

        public List<ToolResult> Results { get; } = [];

        public int Cost { get; set; }
    }

    /// <summary>The message list split into pinned messages and units, per dialect.</summary>
    private sealed class Conversation
    {
        private readonly JsonArray _array;
        private readonly List<(JsonNode Node, int Unit)> _items = [];

        private Conversation(JsonArray array) => _array = array;

        public List<Unit> Units { get; } = [];

        public static Conversation? Build(StageContext context)
        {
            var request = context.Request;
            var array = request.Dialect == LlmDialect.OpenAIResponses ? request.Body["input"] as JsonArray : request.Body["messages"] as JsonArray;
            if (array is null)
            {
                return null;
            }

            var conversation = new Conversation(array);
            Unit? current = null;
            foreach (var node in array)
            {
                if (node is null)
                {
                    return null;
                }

                var role = RequestText.Role(node);
                if (role is "system" or "developer")
                {
                    conversation._items.Add((node, -1));
                    continue;
                }

                var startsUnit = request.Dialect switch
                {
                    LlmDialect.OpenAIChat => role is not ("tool" or "function"),
                    LlmDialect.OpenAIResponses => role == "user" || current is null || current.IsUser,
                    _ => role == "assistant" || !HasToolResult(node) || current is null,
                };
                if (startsUnit || current is null)
                {
                    current = new Unit { IsUser = role == "user" && !HasToolResult(node) };
                    conversation.Units.Add(current);
                }

                current.Items.Add(node);
                current.Cost += Estimate(context, node);
                AddResults(context, request.Dialect, node, current);
                conversation._items.Add((node, conversation.Units.Count - 1));
            }

            return conversation;
        }

        /// <summary>Keeps pinned messages and the units from <paramref name="cut"/> on, in their original order.</summary>
        public void KeepFrom(int cut)
        {
            if (cut == 0)
            {
                return;
            }

            var kept = _items.Where(i => i.Unit < 0 || i.Unit >= cut).Select(i => i.Node).ToList();
            _array.Clear();
            foreach (var node in kept)
            {
                _array.Add(node);
            }
        }

        private static bool HasToolResult(JsonNode node) =>
            node["content"] is JsonArray blocks && blocks.Any(b => b is JsonObject o && (string?)o["type"] == "tool_result");

        private static void AddResults(StageContext context, LlmDialect dialect, JsonNode node, Unit unit)
        {
            var markerTokens = context.Count(Marker(10_000));
            switch (dialect)
            {
                case LlmDialect.OpenAIChat when RequestText.Role(node) is "tool" or "function":
                    AddResult(context, node.AsObject(), "content", unit, markerTokens);
                    break;
                case LlmDialect.OpenAIResponses when (string?)node["type"] is "function_call_output" or "custom_tool_call_output":
                    AddResult(context, node.AsObject(), "output", unit, markerTokens);
                    break;
                case LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens when node["content"] is JsonArray blocks:
                    foreach (var block in blocks.OfType<JsonObject>().Where(b => (string?)b["type"] == "tool_result"))
                    {
                        AddResult(context, block, "content", unit, markerTokens);
                    }

                    break;
            }
        }

        private static void AddResult(StageContext context, JsonObject owner, string property, Unit unit, int markerTokens)
        {
            var value = owner[property];
            var text = value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : value?.ToJsonString();
            if (string.IsNullOrEmpty(text) || IsMarker(text))
            {
                return;
            }

            unit.Results.Add(new ToolResult(s => owner[property] = s, context.Count(text), markerTokens));
        }

        private static int Estimate(StageContext context, JsonNode node)
        {
            var sb = new StringBuilder();
            Collect(node, sb);
            return 4 + context.Count(sb.ToString());
        }

        private static void Collect(JsonNode? node, StringBuilder sb)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (_, value) in o)
                    {
                        Collect(value, sb);
                    }

                    break;
                case JsonArray a:
                    foreach (var item in a)
                    {
                        Collect(item, sb);
                    }

                    break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                    sb.Append(v.GetValue<string>()).Append('\n');
                    break;
            }
        }
    }
}
