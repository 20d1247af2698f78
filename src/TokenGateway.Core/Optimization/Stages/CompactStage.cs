using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 2, lossless: whitespace, JSON minification and TOON in message text and tool results. The <c>tools</c>
/// parameter is never reformatted (providers re-render it, so no saving could be claimed); only the whitespace of
/// long tool descriptions is tidied, counted as description text.
/// </summary>
internal sealed class CompactStage : IOptimizationStage
{
    public string Name => OptimizationStages.Compact;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Compact.Enabled;

    public int Apply(StageContext context)
    {
        var options = context.Policy.Compact;
        var compactor = new TextCompactor(options, context.Count, context.Model.Tokenizer);
        var saved = 0;
        foreach (var slot in RequestText.Slots(context.Request))
        {
            var original = slot.Text;
            var compacted = CompactionCache.Compact(compactor, options, context.Model.Tokenizer, original);
            if (compacted == original || compacted.Length == 0)
            {
                continue;
            }

            var delta = context.Count(original) - context.Count(compacted);
            if (delta > 0)
            {
                slot.Text = compacted;
                saved += delta;
            }
        }

        if (options.ToolDescriptions && options.Whitespace)
        {
            saved += TidyToolDescriptions(context);
        }

        if (saved > 0)
        {
            context.Request.MarkModified();
        }

        return saved;
    }

    private static int TidyToolDescriptions(StageContext context)
    {
        if (context.Request.Body["tools"] is not JsonArray tools)
        {
            return 0;
        }

        var saved = 0;
        foreach (var tool in tools)
        {
            // OpenAI chat: {type:function, function:{description}}; Responses and Anthropic: {description} on the tool.
            var owner = tool?["function"] as JsonObject ?? tool as JsonObject;
            if (owner?["description"] is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
            {
                continue;
            }

            var description = value.GetValue<string>();
            var tidy = TextCompactor.NormalizeWhitespace(description).Trim();
            if (tidy == description || tidy.Length == 0)
            {
                continue;
            }

            var delta = context.Count(description) - context.Count(tidy);
            if (delta > 0)
            {
                owner["description"] = tidy;
                saved += delta;
            }
        }

        return saved;
    }
}
