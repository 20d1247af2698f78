using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Simulator.Generation;

namespace TokenGateway.Simulator.Prompts;

/// <summary>Why an Anthropic prompt could not be measured (a client error, answered with 400).</summary>
internal sealed class AnthropicPromptException(string message) : Exception(message);

/// <summary>
/// Measures Anthropic Messages prompts and simulates <c>cache_control</c> breakpoints the way Anthropic bills them.
/// </summary>
/// <remarks>
/// The total is <see cref="PromptTotals"/> (the gateway's calibrated Claude estimate). For caching, the prompt is a sequence of blocks in Anthropic's cache order: tools, then system blocks, then each message's
/// content blocks (a string content is one block). Each block costs the "claude" estimate of its text (tool: name +
/// description + minified input_schema; tool_use: name + minified input; tool_result: its text; image: 1,600), and each
/// message adds 3. A block with <c>cache_control</c> (or the last block, with a top-level <c>cache_control</c>) is a
/// breakpoint; at most 4 are allowed. A breakpoint reads the cache when the prefix ending at it, or at one of the 20
/// blocks before it, was written earlier for the same model; it writes every breakpoint prefix of at least the model's
/// minimum (1,024 tokens; 2,048 for Haiku). The tokens between the read point and the last written breakpoint are cache
/// creation (5m or 1h per breakpoint <c>ttl</c>); <c>input_tokens</c> is the total minus both.
/// </remarks>
internal static class AnthropicPromptMeter
{
    public const int MaxBreakpoints = 4;
    public const int LookbackBlocks = 20;
    private const int ImageTokens = 1600;
    private static readonly TimeSpan _oneHour = TimeSpan.FromHours(1);

    public static int MinCacheableTokens(string model) =>
        model.Contains("haiku", StringComparison.OrdinalIgnoreCase) ? 2048 : 1024;

    public static PromptUsage Measure(JsonObject body, string model, string encoding, PromptCache? cache)
    {
        var blocks = new List<Block>();
        var hash = Fnv.Hash(model.AsSpan());
        var tokens = 0;

        void Add(string? text, int overhead, JsonNode? source)
        {
            tokens += overhead + (string.IsNullOrEmpty(text) ? 0 : TokenCounting.Count(encoding, text));
            hash = Fnv.Mix(Fnv.Hash((text ?? string.Empty).AsSpan(), hash), overhead);
            var control = source?["cache_control"] as JsonObject;
            blocks.Add(new Block(tokens, hash, control is not null, control?["ttl"]?.ToString() == "1h"));
        }

        if (body["tools"] is JsonArray tools)
        {
            foreach (var tool in tools)
            {
                var schema = tool?["input_schema"]?.ToJsonString(SimulatorJson.CompactOptions);
                Add(string.Concat(OpenAIPromptMeter.Str(tool?["name"]), "\n", OpenAIPromptMeter.Str(tool?["description"]), "\n", schema), 0, tool);
            }
        }

        switch (body["system"])
        {
            case JsonArray systemBlocks:
                foreach (var block in systemBlocks)
                {
                    Add(OpenAIPromptMeter.Str(block?["text"]), 0, block);
                }

                break;
            case { } system when OpenAIPromptMeter.Str(system) is { } text:
                Add(text, 0, null);
                break;
        }

        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                var overhead = 3;
                switch (message?["content"])
                {
                    case JsonArray content:
                        foreach (var block in content)
                        {
                            var (text, extra) = BlockText(block);
                            Add(text, overhead + extra, block);
                            overhead = 0;
                        }

                        if (overhead > 0)
                        {
                            Add(null, overhead, null);
                        }

                        break;
                    case var content:
                        Add(OpenAIPromptMeter.Str(content), overhead, null);
                        break;
                }
            }
        }

        if (body["cache_control"] is JsonObject automatic && blocks.Count > 0)
        {
            blocks[^1] = blocks[^1] with { Breakpoint = true, OneHour = automatic["ttl"]?.ToString() == "1h" };
        }

        var breakpoints = new List<int>();
        for (var i = 0; i < blocks.Count; i++)
        {
            if (blocks[i].Breakpoint)
            {
                breakpoints.Add(i);
            }
        }

        if (breakpoints.Count > MaxBreakpoints)
        {
            throw new AnthropicPromptException($"A maximum of {MaxBreakpoints} blocks with cache_control may be provided. Found {breakpoints.Count}.");
        }

        var total = PromptTotals.Count(LlmDialect.AnthropicMessages, body, model, encoding);
        if (breakpoints.Count == 0 || cache is not { Enabled: true })
        {
            return new PromptUsage(total);
        }

        var minimum = MinCacheableTokens(model);
        var read = 0;
        foreach (var b in breakpoints)
        {
            for (var j = b; j >= Math.Max(0, b - LookbackBlocks); j--)
            {
                if (blocks[j].Tokens >= minimum && blocks[j].Tokens > read && cache.TryHit(blocks[j].Hash, blocks[j].OneHour ? _oneHour : cache.DefaultTtl))
                {
                    read = blocks[j].Tokens;
                    break;
                }
            }
        }

        int write5m = 0, write1h = 0, covered = read;
        foreach (var b in breakpoints)
        {
            var block = blocks[b];
            if (block.Tokens < minimum)
            {
                continue;
            }

            if (block.Tokens > covered)
            {
                if (block.OneHour)
                {
                    write1h += block.Tokens - covered;
                }
                else
                {
                    write5m += block.Tokens - covered;
                }

                covered = block.Tokens;
            }

            cache.Store(block.Hash, block.OneHour ? _oneHour : cache.DefaultTtl);
        }

        // Block sizes estimate each fragment; the total is the gateway counter's. Keep the parts within the whole.
        read = Math.Min(read, total);
        write1h = Math.Min(write1h, total - read);
        write5m = Math.Min(write5m, total - read - write1h);
        return new PromptUsage(total, read, write5m, write1h);
    }

    private static (string? Text, int Extra) BlockText(JsonNode? block)
    {
        var type = OpenAIPromptMeter.Str(block?["type"]);
        return type switch
        {
            "text" => (OpenAIPromptMeter.Str(block?["text"]), 0),
            "image" or "document" => (null, ImageTokens),
            "tool_use" => (string.Concat(OpenAIPromptMeter.Str(block?["name"]), block?["input"]?.ToJsonString(SimulatorJson.CompactOptions)), 0),
            "tool_result" => (block?["content"] switch
            {
                JsonArray parts => string.Join("\n", parts.Select(p => OpenAIPromptMeter.Str(p?["text"])).Where(t => t is not null)),
                var c => OpenAIPromptMeter.Str(c),
            }, 0),
            "thinking" => (OpenAIPromptMeter.Str(block?["thinking"]), 0),
            _ => (block?.ToJsonString(SimulatorJson.CompactOptions), 0),
        };
    }

    private readonly record struct Block(int Tokens, ulong Hash, bool Breakpoint, bool OneHour);
}
