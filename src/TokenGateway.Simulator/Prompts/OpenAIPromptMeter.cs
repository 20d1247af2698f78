using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tokenization;
using TokenGateway.Simulator.Generation;

namespace TokenGateway.Simulator.Prompts;

/// <summary>
/// Measures OpenAI chat and Responses prompts and simulates OpenAI's automatic prefix caching.
/// </summary>
/// <remarks>
/// The total is <see cref="PromptTotals"/> (the gateway's counter: cookbook rules). For caching, prompts of ≥ 1024 tokens
/// are rendered as a token stream — tools first, then per message 3 overhead tokens, role, content (85 per image), name,
/// tool calls — and hashed at every 1024 + 128·k token boundary; a request whose prefix was seen before for the same model
/// reports <c>cached_tokens</c> = the longest shared boundary (never more than the total).
/// </remarks>
internal static class OpenAIPromptMeter
{
    public const int MinCacheableTokens = 1024;
    public const int CacheIncrement = 128;
    private const int OverheadMarker = -1;

    public static PromptUsage MeasureChat(JsonObject body, string model, string encoding, PromptCache cache) =>
        Measure(PromptTotals.Count(LlmDialect.OpenAIChat, body, model, encoding), body, model, encoding, cache, static (b, sink) => WalkChat(b, sink));

    public static PromptUsage MeasureResponses(JsonObject body, string model, string encoding, PromptCache cache) =>
        Measure(PromptTotals.Count(LlmDialect.OpenAIResponses, body, model, encoding), body, model, encoding, cache, static (b, sink) => WalkResponses(b, sink));

    private static PromptUsage Measure(int total, JsonObject body, string model, string encoding, PromptCache cache, Action<JsonObject, PromptSink> walk)
    {
        if (!cache.Enabled || total < MinCacheableTokens || TiktokenTokenizerRegistry.IsEstimate(encoding))
        {
            return new PromptUsage(total);
        }

        // OpenAI routes a prompt to a cache by its prefix combined with prompt_cache_key: requests with different keys
        // land on different cache entries (modelled strictly here: a different key never shares a prefix).
        var seed = Fnv.Hash(model.AsSpan());
        if (Str(body["prompt_cache_key"]) is { } cacheKey)
        {
            seed = Fnv.Hash(cacheKey.AsSpan(), Fnv.Hash("\u0000prompt_cache_key\u0000".AsSpan(), seed));
        }

        var hasher = new PromptSink(encoding, seed);
        walk(body, hasher);
        var cached = 0;
        for (var i = hasher.Boundaries.Count - 1; i >= 0; i--)
        {
            if (cache.TryHit(hasher.Boundaries[i].Hash, cache.DefaultTtl))
            {
                cached = hasher.Boundaries[i].Tokens;
                break;
            }
        }

        foreach (var boundary in hasher.Boundaries)
        {
            cache.Store(boundary.Hash, cache.DefaultTtl);
        }

        return new PromptUsage(total, Math.Min(cached, total));
    }

    private static void WalkChat(JsonObject body, PromptSink sink)
    {
        WalkTools(body["tools"], sink);
        if (body["messages"] is not JsonArray messages)
        {
            return;
        }

        foreach (var node in messages)
        {
            if (node is not JsonObject message)
            {
                continue;
            }

            sink.Overhead(3);
            sink.Text(Str(message["role"]));
            Content(message["content"], sink);
            if (Str(message["name"]) is { } name)
            {
                sink.Text(name);
                sink.Overhead(1);
            }

            if (message["tool_calls"] is JsonArray calls)
            {
                foreach (var call in calls)
                {
                    sink.Text(Str(call?["function"]?["name"]));
                    sink.Text(Str(call?["function"]?["arguments"]));
                }
            }

            if (message["function_call"] is JsonObject fc)
            {
                sink.Text(Str(fc["name"]));
                sink.Text(Str(fc["arguments"]));
            }
        }

        sink.Overhead(3);
    }

    private static void WalkResponses(JsonObject body, PromptSink sink)
    {
        WalkTools(body["tools"], sink);
        if (Str(body["instructions"]) is { } instructions)
        {
            sink.Overhead(3);
            sink.Text("system");
            sink.Text(instructions);
        }

        switch (body["input"])
        {
            case JsonValue v when v.TryGetValue<string>(out var text):
                sink.Overhead(3);
                sink.Text("user");
                sink.Text(text);
                break;
            case JsonArray items:
                foreach (var node in items)
                {
                    if (node is not JsonObject item)
                    {
                        continue;
                    }

                    var type = Str(item["type"]);
                    if (type is "function_call")
                    {
                        sink.Overhead(3);
                        sink.Text(Str(item["name"]));
                        sink.Text(Str(item["arguments"]));
                    }
                    else if (type is "function_call_output")
                    {
                        sink.Overhead(3);
                        sink.Text(item["output"] is JsonValue ov && ov.TryGetValue<string>(out var output) ? output : item["output"]?.ToJsonString());
                    }
                    else if (item.ContainsKey("role"))
                    {
                        sink.Overhead(3);
                        sink.Text(Str(item["role"]));
                        Content(item["content"], sink);
                    }
                }

                break;
        }

        sink.Overhead(3);
    }

    private static void WalkTools(JsonNode? tools, PromptSink sink)
    {
        if (tools is not JsonArray { Count: > 0 } list)
        {
            return;
        }

        sink.Overhead(7);
        foreach (var tool in list)
        {
            // Chat nests the definition under "function"; Responses keeps it flat.
            var function = tool?["function"] as JsonObject ?? tool as JsonObject;
            if (function is null)
            {
                continue;
            }

            sink.Overhead(3);
            sink.Text(Str(function["name"]));
            sink.Text(Str(function["description"]));
            if (function["parameters"] is { } parameters)
            {
                sink.Text(parameters.ToJsonString(SimulatorJson.CompactOptions));
            }
        }
    }

    private static void Content(JsonNode? content, PromptSink sink)
    {
        switch (content)
        {
            case JsonValue v when v.TryGetValue<string>(out var text):
                sink.Text(text);
                break;
            case JsonArray parts:
                foreach (var part in parts)
                {
                    var type = Str(part?["type"]);
                    if (type is "image_url" or "input_image")
                    {
                        sink.Overhead(85);
                    }
                    else if (Str(part?["text"]) is { } t)
                    {
                        sink.Text(t);
                    }
                    else if (Str(part?["refusal"]) is { } refusal)
                    {
                        sink.Text(refusal);
                    }
                }

                break;
        }
    }

    internal static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>Renders a prompt as a token stream and records its running prefix hash at every cacheable boundary.</summary>
    private sealed class PromptSink(string encoding, ulong seed)
    {
        private ulong _hash = seed;

        public int Tokens { get; private set; }

        public List<(int Tokens, ulong Hash)> Boundaries { get; } = [];

        public void Text(string? text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return;
            }

            foreach (var id in TiktokenTokenizerRegistry.Shared.Get(encoding).EncodeToIds(text))
            {
                Push(id);
            }
        }

        public void Overhead(int tokens)
        {
            for (var i = 0; i < tokens; i++)
            {
                Push(OverheadMarker);
            }
        }

        private void Push(int id)
        {
            _hash = Fnv.Mix(_hash, id);
            Tokens++;
            if (Tokens >= MinCacheableTokens && (Tokens - MinCacheableTokens) % CacheIncrement == 0)
            {
                Boundaries.Add((Tokens, _hash));
            }
        }
    }
}
