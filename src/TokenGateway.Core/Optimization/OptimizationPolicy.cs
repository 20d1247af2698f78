using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Optimization;

/// <summary>Which optimization stages run for a request and with which options (the policy's <c>optimization</c> section).</summary>
/// <remarks>
/// <see cref="Enabled"/> = false (or the <c>x-tokengateway-optimize: off</c> header) turns off every content
/// rewrite; the output cap still applies because it is a team limit, not an optimization the client may opt out of.
/// </remarks>
public sealed record OptimizationPolicy
{
    /// <summary>The built-in defaults: every lossless stage on, curated context off.</summary>
    public static OptimizationPolicy Default { get; } = new();

    /// <summary>Master switch for the content stages (tools, trim, compact, dedupe, curate, cache hints).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Stage 0: tool-definition selection (lossy, opt-in).</summary>
    public ToolsOptions Tools { get; init; } = new();

    /// <summary>Stage 1: history trimming when over the model budget.</summary>
    public TrimOptions Trim { get; init; } = new();

    /// <summary>Stage 2: lossless compaction (whitespace, JSON minify, TOON).</summary>
    public CompactOptions Compact { get; init; } = new();

    /// <summary>Stage 3: verbatim block de-duplication across messages.</summary>
    public DedupeOptions Dedupe { get; init; } = new();

    /// <summary>Stage 4: retrieved-document selection (lossy, opt-in).</summary>
    public CurateOptions Curate { get; init; } = new();

    /// <summary>Stage 5: Anthropic prompt-cache breakpoints.</summary>
    public CacheHintOptions CacheHints { get; init; } = new();

    /// <summary>Stage 6: output cap (<c>max_tokens</c> default and cap from <see cref="OutputLimits"/>).</summary>
    public OutputCapOptions OutputCap { get; init; } = new();

    /// <summary>
    /// Reads an <c>optimization</c> section; absent fields inherit from <paramref name="inherit"/> (default:
    /// <see cref="Default"/>). Invalid or unknown fields are reported in <paramref name="errors"/> and ignored.
    /// </summary>
    public static OptimizationPolicy FromJson(JsonObject? json, out IReadOnlyList<string> errors, OptimizationPolicy? inherit = null)
    {
        var reader = new PolicyReader();
        var policy = reader.Read(json, inherit ?? Default);
        errors = reader.Errors;
        return policy;
    }

    private sealed class PolicyReader
    {
        public List<string> Errors { get; } = [];

        public OptimizationPolicy Read(JsonObject? json, OptimizationPolicy b)
        {
            if (json is null)
            {
                return b;
            }

            var p = b;
            foreach (var (key, value) in json)
            {
                switch (key)
                {
                    case "enabled": p = p with { Enabled = Bool(value, "enabled", p.Enabled) }; break;
                    case "tools": p = p with { Tools = ReadTools(Section(value, key), p.Tools) }; break;
                    case "trim": p = p with { Trim = ReadTrim(Section(value, key), p.Trim) }; break;
                    case "compact": p = p with { Compact = ReadCompact(Section(value, key), p.Compact) }; break;
                    case "dedupe": p = p with { Dedupe = ReadDedupe(Section(value, key), p.Dedupe) }; break;
                    case "curate": p = p with { Curate = ReadCurate(Section(value, key), p.Curate) }; break;
                    case "cacheHints": p = p with { CacheHints = ReadCache(Section(value, key), p.CacheHints) }; break;
                    case "outputCap": p = p with { OutputCap = ReadOutput(Section(value, key), p.OutputCap) }; break;
                    default: Errors.Add($"optimization.{key}: unknown field."); break;
                }
            }

            return p;
        }

        private TrimOptions ReadTrim(JsonObject? s, TrimOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "trim." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "maxInputTokens" => o with { MaxInputTokens = value is null ? null : Int(value, path, o.MaxInputTokens ?? 0, 1, int.MaxValue) },
                    "marginTokens" => o with { MarginTokens = Int(value, path, o.MarginTokens, 0, 1_000_000) },
                    "retentionRatio" => o with { RetentionRatio = Double(value, path, o.RetentionRatio, 0.1, 0.99) },
                    "keepRecentUnits" => o with { KeepRecentUnits = Int(value, path, o.KeepRecentUnits, 1, 1000) },
                    "staleToolResults" => o with { StaleToolResults = ReadStale(value, path, o.StaleToolResults) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        /// <summary><c>staleToolResults</c>: an object of options, <c>true</c> (the defaults), or <c>false</c>/<c>null</c> (off).</summary>
        private StaleToolResultsOptions? ReadStale(JsonNode? value, string path, StaleToolResultsOptions? o)
        {
            switch (value)
            {
                case null:
                    return null;
                case JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                    return v.GetValue<bool>() ? o ?? new StaleToolResultsOptions() : null;
                case JsonObject s:
                    var stale = o ?? new StaleToolResultsOptions();
                    var enabled = true;
                    foreach (var (key, item) in s)
                    {
                        var itemPath = path + "." + key;
                        stale = key switch
                        {
                            "enabled" => stale,
                            "keepRecent" => stale with { KeepRecent = Int(item, itemPath, stale.KeepRecent, 1, 1000) },
                            "minTokens" => stale with { MinTokens = Int(item, itemPath, stale.MinTokens, 32, 10_000_000) },
                            _ => Unknown(itemPath, stale),
                        };
                        enabled = key == "enabled" ? Bool(item, itemPath, enabled) : enabled;
                    }

                    return enabled ? stale : null;
                default:
                    Errors.Add($"optimization.{path}: must be an object, a boolean or null.");
                    return o;
            }
        }

        private ToolsOptions ReadTools(JsonObject? s, ToolsOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "tools." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "maxTools" => o with { MaxTools = Int(value, path, o.MaxTools, 1, 10_000) },
                    "always" => o with { Always = Names(value, path, o.Always) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        private IReadOnlyList<string> Names(JsonNode? value, string path, IReadOnlyList<string> current)
        {
            if (value is JsonArray array && array.All(e => e is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0))
            {
                return array.Select(e => e!.GetValue<string>()).Distinct(StringComparer.Ordinal).ToArray();
            }

            Errors.Add($"optimization.{path}: must be an array of tool names.");
            return current;
        }

        private CompactOptions ReadCompact(JsonObject? s, CompactOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "compact." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "whitespace" => o with { Whitespace = Bool(value, path, o.Whitespace) },
                    "json" => o with { Json = Bool(value, path, o.Json) },
                    "toon" => o with { Toon = Bool(value, path, o.Toon) },
                    "toonMinGainPercent" => o with { ToonMinGainPercent = Int(value, path, o.ToonMinGainPercent, 0, 90) },
                    "minJsonChars" => o with { MinJsonChars = Int(value, path, o.MinJsonChars, 2, 1_000_000) },
                    "toolDescriptions" => o with { ToolDescriptions = Bool(value, path, o.ToolDescriptions) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        private DedupeOptions ReadDedupe(JsonObject? s, DedupeOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "dedupe." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "minTokens" => o with { MinTokens = Int(value, path, o.MinTokens, 16, 1_000_000) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        private CurateOptions ReadCurate(JsonObject? s, CurateOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "curate." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "maxTokens" => o with { MaxTokens = Int(value, path, o.MaxTokens, 100, 10_000_000) },
                    "minDocuments" => o with { MinDocuments = Int(value, path, o.MinDocuments, 0, 1000) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        private CacheHintOptions ReadCache(JsonObject? s, CacheHintOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                var path = "cacheHints." + key;
                o = key switch
                {
                    "enabled" => o with { Enabled = Bool(value, path, o.Enabled) },
                    "conversation" => o with { Conversation = Bool(value, path, o.Conversation) },
                    _ => Unknown(path, o),
                };
            }

            return o;
        }

        private OutputCapOptions ReadOutput(JsonObject? s, OutputCapOptions o)
        {
            foreach (var (key, value) in s ?? [])
            {
                o = key == "enabled" ? o with { Enabled = Bool(value, "outputCap.enabled", o.Enabled) } : Unknown("outputCap." + key, o);
            }

            return o;
        }

        private T Unknown<T>(string path, T current)
        {
            Errors.Add($"optimization.{path}: unknown field.");
            return current;
        }

        private JsonObject? Section(JsonNode? value, string path)
        {
            switch (value)
            {
                case JsonObject o:
                    return o;
                case JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                    // Shorthand: "dedupe": false
                    return new JsonObject { ["enabled"] = v.GetValue<bool>() };
                default:
                    Errors.Add($"optimization.{path}: must be an object or a boolean.");
                    return null;
            }
        }

        private bool Bool(JsonNode? value, string path, bool current)
        {
            if (value is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
            {
                return v.GetValue<bool>();
            }

            Errors.Add($"optimization.{path}: must be true or false.");
            return current;
        }

        private int Int(JsonNode? value, string path, int current, int min, int max)
        {
            if (value is JsonValue v && v.TryGetValue<int>(out var i) && i >= min && i <= max)
            {
                return i;
            }

            if (value is JsonValue d && d.GetValueKind() == JsonValueKind.Number && d.TryGetValue<double>(out var x) && x == Math.Floor(x) && x >= min && x <= max)
            {
                return (int)x;
            }

            Errors.Add($"optimization.{path}: must be an integer between {min} and {max}.");
            return current;
        }

        private double Double(JsonNode? value, string path, double current, double min, double max)
        {
            if (value is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d >= min && d <= max)
            {
                return d;
            }

            Errors.Add($"optimization.{path}: must be a number between {min} and {max}.");
            return current;
        }
    }
}

/// <summary>Tool-selection stage options (lossy; off by default).</summary>
public sealed record ToolsOptions
{
    /// <summary>Runs the stage.</summary>
    public bool Enabled { get; init; }

    /// <summary>Requests declaring more function tools than this send only the most relevant ones.</summary>
    public int MaxTools { get; init; } = 16;

    /// <summary>Tools always sent when declared (they count toward <see cref="MaxTools"/>).</summary>
    public IReadOnlyList<string> Always { get; init; } = [];
}

/// <summary>Trim stage options.</summary>
public sealed record TrimOptions
{
    /// <summary>Runs the stage.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Policy cap on input tokens; null means only the model's context window limits input.</summary>
    public int? MaxInputTokens { get; init; }

    /// <summary>Safety margin kept free below the context window, in tokens.</summary>
    public int MarginTokens { get; init; } = 512;

    /// <summary>Trims in chunks of (1 − ratio) × budget so the cached prefix changes rarely.</summary>
    public double RetentionRatio { get; init; } = 0.8;

    /// <summary>The newest units (user turns, assistant + tool results) that are never shortened or dropped.</summary>
    public int KeepRecentUnits { get; init; } = 2;

    /// <summary>Replaces old tool results with a marker even under budget (lossy); null = off.</summary>
    public StaleToolResultsOptions? StaleToolResults { get; init; }
}

/// <summary>Stale tool results (inside trim): results older than the newest tool turns become a short marker.</summary>
public sealed record StaleToolResultsOptions
{
    /// <summary>The newest tool turns (assistant steps with tool calls) whose results are always kept.</summary>
    public int KeepRecent { get; init; } = 4;

    /// <summary>Results shorter than this many tokens are kept.</summary>
    public int MinTokens { get; init; } = 200;
}

/// <summary>Compact stage options.</summary>
public sealed record CompactOptions
{
    /// <summary>Runs the stage.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Strip trailing whitespace and collapse blank-line runs outside code fences.</summary>
    public bool Whitespace { get; init; } = true;

    /// <summary>Minify JSON found in message text and tool results.</summary>
    public bool Json { get; init; } = true;

    /// <summary>Send JSON as TOON when that is smaller by at least <see cref="ToonMinGainPercent"/>.</summary>
    public bool Toon { get; init; } = true;

    /// <summary>Minimum token gain of TOON over minified JSON, in percent.</summary>
    public int ToonMinGainPercent { get; init; } = 10;

    /// <summary>JSON blocks shorter than this (characters) are left alone.</summary>
    public int MinJsonChars { get; init; } = 64;

    /// <summary>Tidy whitespace in tool descriptions (the only change ever made to <c>tools</c>).</summary>
    public bool ToolDescriptions { get; init; } = true;
}

/// <summary>Dedupe stage options.</summary>
public sealed record DedupeOptions
{
    /// <summary>Runs the stage.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Blocks smaller than this many tokens are never replaced.</summary>
    public int MinTokens { get; init; } = 64;
}

/// <summary>Curated-context stage options (lossy; off by default).</summary>
public sealed record CurateOptions
{
    /// <summary>Runs the stage.</summary>
    public bool Enabled { get; init; }

    /// <summary>Token budget for the retrieved documents of the latest turn.</summary>
    public int MaxTokens { get; init; } = 4000;

    /// <summary>The most relevant documents always kept, even over the budget.</summary>
    public int MinDocuments { get; init; } = 1;
}

/// <summary>Cache-hint stage options.</summary>
public sealed record CacheHintOptions
{
    /// <summary>Runs the stage (Anthropic only).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Also put a breakpoint on the newest message, so multi-turn conversations read their history from cache.</summary>
    public bool Conversation { get; init; }
}

/// <summary>Output-cap stage options.</summary>
public sealed record OutputCapOptions
{
    /// <summary>Applies <see cref="OutputLimits"/>.</summary>
    public bool Enabled { get; init; } = true;
}
