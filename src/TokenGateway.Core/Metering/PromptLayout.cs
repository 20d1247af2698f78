using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>
/// A request's prompt as the provider reads it for caching: an ordered list of segments (OpenAI: the tool/format
/// prelude, then one per message or input item; Anthropic: each tool, each system block, each message content block),
/// each keyed by its canonical JSON without <c>cache_control</c>, plus the Anthropic breakpoints and the token count
/// of any prefix (counted on a truncated copy with the request counter, memoized).
/// </summary>
internal sealed class PromptLayout
{
    private static readonly string[] _openAIPrelude = ["tools", "functions", "response_format"];
    private static readonly string[] _responsesPrelude = ["instructions", "tools", "text"];

    private readonly LlmDialect _dialect;
    private readonly JsonObject _body;
    private readonly ModelCard _card;
    private readonly IRequestTokenCounter _counter;
    private readonly Dictionary<int, int> _prefixTokens = [];
    private readonly List<string> _keys = [];
    private readonly List<(string Part, int Index, int Block)> _origins = [];
    private readonly long[] _messageHashes;
    private readonly int[] _messageEnds;

    public PromptLayout(LlmDialect dialect, JsonObject body, ModelCard card, int totalTokens, IRequestTokenCounter counter)
    {
        _dialect = dialect;
        _body = body;
        _card = card;
        _counter = counter;
        TotalTokens = totalTokens;
        var messageEnds = new List<int>();
        switch (dialect)
        {
            case LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens:
                BuildAnthropic(messageEnds);
                break;
            case LlmDialect.OpenAIResponses:
                AddPrelude(_responsesPrelude);
                foreach (var (item, i) in Items(body["input"]).Select((x, i) => (x, i)))
                {
                    Add(item, ("message", i, 0));
                    messageEnds.Add(_keys.Count);
                }

                break;
            default:
                AddPrelude(_openAIPrelude);
                foreach (var (message, i) in Items(body["messages"]).Select((x, i) => (x, i)))
                {
                    Add(message, ("message", i, 0));
                    messageEnds.Add(_keys.Count);
                }

                break;
        }

        Segments = [.. _keys];
        _messageEnds = [.. messageEnds];
        _messageHashes = new long[_messageEnds.Length + 1];
        var hash = new HashCode();
        var start = FirstMessageSegment;
        for (var m = 0; m < _messageEnds.Length; m++)
        {
            for (var s = start; s < _messageEnds[m]; s++)
            {
                hash.Add(Segments[s], StringComparer.Ordinal);
            }

            hash.Add(-1);
            start = _messageEnds[m];
            var copy = hash;
            _messageHashes[m + 1] = copy.ToHashCode();
        }
    }

    /// <summary>Segment keys in prompt order.</summary>
    public string[] Segments { get; }

    /// <summary>The request's whole input tokens (from the pipeline's count).</summary>
    public int TotalTokens { get; }

    /// <summary>Anthropic breakpoints: position = number of segments up to and including the marked block.</summary>
    public List<(int Position, bool OneHour)> Breakpoints { get; } = [];

    /// <summary>Anthropic cache entries this request created or refreshed (breakpoint positions that reached the minimum).</summary>
    public List<int> CacheEntries { get; } = [];

    /// <summary>Messages (or Responses input items).</summary>
    public int MessageCount => _messageEnds.Length;

    private int FirstMessageSegment { get; set; }

    /// <summary>Segments before the first message: tools, system, instructions (the prompt's static prelude).</summary>
    public int PreludeSegments => FirstMessageSegment;

    /// <summary>Hash of the first <paramref name="messages"/> messages' segments.</summary>
    public long MessagesHash(int messages) => _messageHashes[messages];

    /// <summary>True when both layouts have the same first <paramref name="messages"/> messages.</summary>
    public static bool SameMessages(PromptLayout a, PromptLayout b, int messages)
    {
        if (a.MessageCount < messages || b.MessageCount < messages)
        {
            return false;
        }

        var endA = messages == 0 ? a.FirstMessageSegment : a._messageEnds[messages - 1];
        var endB = messages == 0 ? b.FirstMessageSegment : b._messageEnds[messages - 1];
        return endA - a.FirstMessageSegment == endB - b.FirstMessageSegment &&
            a.Segments.AsSpan(a.FirstMessageSegment, endA - a.FirstMessageSegment).SequenceEqual(b.Segments.AsSpan(b.FirstMessageSegment, endB - b.FirstMessageSegment));
    }

    /// <summary>Number of leading segments the two prompts share.</summary>
    public static int CommonSegments(PromptLayout a, PromptLayout b)
    {
        var n = Math.Min(a.Segments.Length, b.Segments.Length);
        var i = 0;
        while (i < n && string.Equals(a.Segments[i], b.Segments[i], StringComparison.Ordinal))
        {
            i++;
        }

        return i;
    }

    /// <summary>Where segment <paramref name="index"/> comes from: <c>tools</c>, <c>system</c>, <c>message N</c>, ….</summary>
    public string Describe(int index)
    {
        if (index >= _origins.Count)
        {
            return "end";
        }

        var (part, i, _) = _origins[index];
        return part == "message" ? $"message {i}" : part;
    }

    /// <summary>Input tokens of the first <paramref name="segments"/> segments (never more than the whole request).</summary>
    public int TokensUpTo(int segments)
    {
        if (segments <= 0)
        {
            return 0;
        }

        if (segments >= Segments.Length)
        {
            return TotalTokens;
        }

        if (!_prefixTokens.TryGetValue(segments, out var tokens))
        {
            using var truncated = new LlmRequest(_dialect, Truncate(segments), default);
            tokens = Math.Min(TotalTokens, _counter.CountInputTokens(truncated, _card));
            _prefixTokens[segments] = tokens;
        }

        return tokens;
    }

    private JsonObject Truncate(int segments)
    {
        var copy = new JsonObject { ["model"] = _body["model"]?.DeepClone() };
        var lastOrigin = _origins[segments - 1];
        var keep = _origins.Take(segments).ToList();
        switch (_dialect)
        {
            case LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens:
                {
                    var tools = keep.Count(o => o.Part == "tools");
                    if (tools > 0)
                    {
                        copy["tools"] = new JsonArray([.. Items(_body["tools"]).Take(tools).Select(t => t.DeepClone())]);
                    }

                    var system = keep.Count(o => o.Part == "system");
                    if (system > 0)
                    {
                        copy["system"] = new JsonArray([.. Blocks(_body["system"]!).Take(system).Select(b => b.DeepClone())]);
                    }

                    var messages = new JsonArray();
                    if (lastOrigin.Part == "message")
                    {
                        var source = Items(_body["messages"]).ToList();
                        for (var m = 0; m < lastOrigin.Index; m++)
                        {
                            messages.Add(source[m].DeepClone());
                        }

                        var last = (JsonObject)source[lastOrigin.Index].DeepClone();
                        last["content"] = new JsonArray([.. Blocks(source[lastOrigin.Index]["content"]).Take(lastOrigin.Block + 1).Select(b => b.DeepClone())]);
                        messages.Add(last);
                    }

                    copy["messages"] = messages;
                    break;
                }

            default:
                {
                    var prelude = _dialect == LlmDialect.OpenAIResponses ? _responsesPrelude : _openAIPrelude;
                    if (keep.Any(o => o.Part != "message"))
                    {
                        foreach (var name in prelude)
                        {
                            if (_body[name] is { } value)
                            {
                                copy[name] = value.DeepClone();
                            }
                        }
                    }

                    var items = keep.Count(o => o.Part == "message");
                    var listName = _dialect == LlmDialect.OpenAIResponses ? "input" : "messages";
                    copy[listName] = new JsonArray([.. Items(_body[listName]).Take(items).Select(m => m.DeepClone())]);
                    break;
                }
        }

        return copy;
    }

    private void AddPrelude(string[] names)
    {
        var prelude = new JsonObject();
        foreach (var name in names)
        {
            if (_body[name] is { } value)
            {
                prelude[name] = value.DeepClone();
            }
        }

        if (prelude.Count > 0)
        {
            Add(prelude, (_dialect == LlmDialect.OpenAIResponses && prelude.ContainsKey("instructions")) ? "instructions" : "tools", 0);
        }

        FirstMessageSegment = _keys.Count;
    }

    private void Add(JsonNode node, string part, int index) => Add(node, (part, index, 0));

    private void Add(JsonNode node, (string Part, int Index, int Block) origin)
    {
        _keys.Add(Key(node, origin.Part == "message" ? string.Empty : origin.Part + ":"));
        _origins.Add(origin);
    }

    private void BuildAnthropic(List<int> messageEnds)
    {
        foreach (var (tool, i) in Items(_body["tools"]).Select((x, i) => (x, i)))
        {
            AddBlock(tool, "tools:", ("tools", i, 0));
        }

        if (_body["system"] is { } system)
        {
            foreach (var (block, i) in Blocks(system).Select((x, i) => (x, i)))
            {
                AddBlock(block, "system:", ("system", 0, i));
            }
        }

        FirstMessageSegment = _keys.Count;
        foreach (var (message, m) in Items(_body["messages"]).Select((x, i) => (x, i)))
        {
            var role = (message as JsonObject)?["role"]?.ToString() ?? "?";
            foreach (var (block, b) in Blocks(message["content"]).Select((x, i) => (x, i)))
            {
                AddBlock(block, b == 0 ? $"{role}:" : "+", ("message", m, b));
            }

            messageEnds.Add(_keys.Count);
        }

        if (_body["cache_control"] is JsonObject automatic && _keys.Count > 0)
        {
            // Automatic caching: the breakpoint sits on the last cacheable block.
            Breakpoints.Add((_keys.Count, IsOneHour(automatic)));
        }

        Breakpoints.Sort((x, y) => x.Position.CompareTo(y.Position));
    }

    private void AddBlock(JsonNode block, string prefix, (string Part, int Index, int Block) origin)
    {
        _keys.Add(Key(block, prefix));
        _origins.Add(origin);
        if (block is JsonObject o && o["cache_control"] is JsonObject control)
        {
            Breakpoints.Add((_keys.Count, IsOneHour(control)));
        }
    }

    private static bool IsOneHour(JsonObject control) => control["ttl"] is JsonValue v && v.ToString() == "1h";

    /// <summary>Canonical JSON of a segment without its <c>cache_control</c> (a marker does not change what is cached).</summary>
    private static string Key(JsonNode node, string prefix)
    {
        if (node is JsonObject o && o.ContainsKey("cache_control"))
        {
            var copy = (JsonObject)o.DeepClone();
            copy.Remove("cache_control");
            return prefix + copy.ToJsonString(LlmRequestParser.WriteOptions);
        }

        return prefix + node.ToJsonString(LlmRequestParser.WriteOptions);
    }

    private static IEnumerable<JsonNode> Items(JsonNode? node) => node switch
    {
        JsonArray array => array.OfType<JsonNode>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [new JsonObject { ["role"] = "user", ["content"] = v.GetValue<string>() }],
        _ => [],
    };

    /// <summary>Content blocks; a plain string is the single text block the provider renders identically.</summary>
    private static IEnumerable<JsonNode> Blocks(JsonNode? content) => content switch
    {
        JsonArray array => array.OfType<JsonNode>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [new JsonObject { ["type"] = "text", ["text"] = v.GetValue<string>() }],
        null => [],
        _ => [content],
    };
}
