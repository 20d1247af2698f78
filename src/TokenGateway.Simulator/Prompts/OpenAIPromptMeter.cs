using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Tokenization;
using TokenGateway.Simulator.Generation;

namespace TokenGateway.Simulator.Prompts;

/// <summary>
/// Counts OpenAI chat and Responses prompts with the cookbook rules and simulates OpenAI's automatic prefix caching.
/// </summary>
/// <remarks>
/// Per message: 3 tokens + role + content (text parts; 85 per image) + name (+1) + tool calls (name + arguments);
/// 3 more prime the reply. Tools: 7 once + per tool 3 + name + description + the minified parameters schema.
/// Responses: <c>instructions</c> counts as a system message; input items as messages, function calls (3 + name +
/// arguments) and function outputs (3 + output). Caching: prompts of ≥ 1024 tokens are hashed token by token (tools first,
/// then messages in order, overhead tokens included); a request whose prefix was seen before for the same model reports
/// <c>cached_tokens</c> = the longest shared prefix at a 1024 + 128·k token boundary.
/// </remarks>
internal static class OpenAIPromptMeter
{
    public const int MinCacheableTokens = 1024;
    public const int CacheIncrement = 128;
    private const int OverheadMarker = -1;

    public static PromptUsage MeasureChat(JsonObject body, string model, string encoding, PromptCache cache) =>
        Measure(body, model, encoding, cache, static (b, sink) => WalkChat(b, sink));

    public static PromptUsage MeasureResponses(JsonObject body, string model, string encoding, PromptCache cache) =>
        Measure(body, model, encoding, cache, static (b, sink) => WalkResponses(b, sink));

    private static PromptUsage Measure(JsonObject body, string model, string encoding, PromptCache cache, Action<JsonObject, PromptSink> walk)
    {
        var counter = new PromptSink(encoding, hashSeed: null);
        walk(body, counter);
        var total = counter.Tokens;
        if (!cache.Enabled || total < MinCacheableTokens || TiktokenTokenizerRegistry.IsEstimate(encoding))
        {
            return new PromptUsage(total);
        }

        var hasher = new PromptSink(encoding, Fnv.Hash(model.AsSpan()));
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

    /// <summary>Accumulates a prompt's token count, and optionally its running prefix hash at cacheable boundaries.</summary>
    private sealed class PromptSink(string encoding, ulong? hashSeed)
    {
        private ulong _hash = hashSeed ?? 0;

        public int Tokens { get; private set; }

        public List<(int Tokens, ulong Hash)> Boundaries { get; } = [];

        public void Text(string? text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return;
            }

            if (hashSeed is null)
            {
                Tokens += TokenCounting.Count(encoding, text);
                return;
            }

            foreach (var id in TiktokenTokenizerRegistry.Shared.Get(encoding).EncodeToIds(text))
            {
                Push(id);
            }
        }

        public void Overhead(int tokens)
        {
            if (hashSeed is null)
            {
                Tokens += tokens;
                return;
            }

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
