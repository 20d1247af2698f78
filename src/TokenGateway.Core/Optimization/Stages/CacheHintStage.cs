using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 5 (Anthropic): adds <c>cache_control: {"type":"ephemeral"}</c> breakpoints after the tools and the system
/// prompt when the prefix up to them reaches the model's cache minimum, and the client placed none itself.
/// </summary>
/// <remarks>
/// The placement depends only on the request prefix, so turn N and turn N+1 of a conversation get identical
/// rewritten prefixes. At most 4 breakpoints exist in a request (the provider's limit); this stage adds at most 3.
/// Cache hints change cost, not token counts, so the stage reports 0 tokens saved.
/// </remarks>
internal sealed class CacheHintStage : IOptimizationStage
{
    private const int MaxBreakpoints = 4;

    public string Name => OptimizationStages.CacheHints;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.CacheHints.Enabled;

    public int Apply(StageContext context)
    {
        var request = context.Request;
        if (request.Dialect != LlmDialect.AnthropicMessages || request.Body.ContainsKey("cache_control") || HasCacheControl(request.Body))
        {
            return 0;
        }

        var body = request.Body;
        var minimum = context.Model.CacheMinTokens;
        var prefix = 0;
        var added = 0;
        if (body["tools"] is JsonArray { Count: > 0 } tools && tools[^1] is JsonObject lastTool)
        {
            prefix += context.Count(tools.ToJsonString());
            if (prefix >= minimum)
            {
                lastTool["cache_control"] = Ephemeral();
                added++;
            }
        }

        if (body["system"] is { } system && SystemText(system) is { Length: > 0 } systemText)
        {
            prefix += context.Count(systemText);
            if (prefix >= minimum && LastBlock(body, "system") is { } block)
            {
                block["cache_control"] = Ephemeral();
                added++;
            }
        }

        if (context.Policy.CacheHints.Conversation && added < MaxBreakpoints && body["messages"] is JsonArray { Count: > 1 } messages &&
            messages[^1] is JsonObject last)
        {
            // Breakpoint on the newest message: the next turn reads everything up to here from the cache.
            prefix += context.Count(messages.ToJsonString());
            if (prefix >= minimum && LastBlock(last, "content") is { } lastBlock)
            {
                lastBlock["cache_control"] = Ephemeral();
                added++;
            }
        }

        if (added > 0)
        {
            request.MarkModified();
        }

        return 0;
    }

    private static JsonObject Ephemeral() => new() { ["type"] = "ephemeral" };

    private static string? SystemText(JsonNode system) => system switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonArray { Count: > 0 } blocks => blocks.ToJsonString(),
        _ => null,
    };

    /// <summary>The last block of a content field; a plain string becomes one text block (same text, same bytes every turn).</summary>
    private static JsonObject? LastBlock(JsonObject owner, string property)
    {
        switch (owner[property])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                {
                    var block = new JsonObject { ["type"] = "text", ["text"] = v.GetValue<string>() };
                    owner[property] = new JsonArray(block);
                    return block;
                }

            case JsonArray { Count: > 0 } blocks:
                return blocks[^1] as JsonObject;
            default:
                return null;
        }
    }

    private static bool HasCacheControl(JsonNode? node) => node switch
    {
        JsonObject o => o.ContainsKey("cache_control") || o.Any(p => HasCacheControl(p.Value)),
        JsonArray a => a.Any(HasCacheControl),
        _ => false,
    };
}
