namespace TokenGateway.Simulator.Prompts;

/// <summary>What the simulator infers from a model name: its tokenizer, whether it reasons, its embedding width.</summary>
internal readonly record struct ModelProfile(string Encoding, bool IsReasoning, bool IsClaude, int EmbeddingDimensions)
{
    /// <summary>Names listed by <c>GET /v1/models</c>.</summary>
    public static readonly string[] KnownModels =
    [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
        "o1", "o3", "o3-mini", "o4-mini", "gpt-4", "gpt-4-turbo", "gpt-3.5-turbo",
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest",
    ];

    /// <summary>Derives the profile from a model (or Azure deployment) name.</summary>
    public static ModelProfile For(string model)
    {
        var m = model.ToLowerInvariant();
        if (m.StartsWith("claude", StringComparison.Ordinal))
        {
            return new("claude", false, true, 0);
        }

        var encoding = m.StartsWith("gpt-4o", StringComparison.Ordinal) || m.StartsWith("gpt-4.1", StringComparison.Ordinal) ||
            m.StartsWith("gpt-5", StringComparison.Ordinal) || m.StartsWith("chatgpt-4o", StringComparison.Ordinal) || IsOSeries(m) ||
            m.StartsWith("gpt-oss", StringComparison.Ordinal)
            ? "o200k_base"
            : m.StartsWith("gpt-4", StringComparison.Ordinal) || m.StartsWith("gpt-3.5", StringComparison.Ordinal) ||
              m.StartsWith("gpt-35", StringComparison.Ordinal) || m.Contains("ada", StringComparison.Ordinal) ||
              m.StartsWith("text-embedding", StringComparison.Ordinal)
                ? "cl100k_base"
                : "o200k_base";
        var reasoning = IsOSeries(m) || (m.StartsWith("gpt-5", StringComparison.Ordinal) && !m.Contains("chat", StringComparison.Ordinal));
        var dimensions = m.Contains("large", StringComparison.Ordinal) ? 3072 : 1536;
        return new(encoding, reasoning, false, dimensions);
    }

    /// <summary>
    /// True for a model name of OpenAI's families (gpt-*, chatgpt-*, o-series, text-embedding-*, davinci/babbage,
    /// fine-tunes <c>ft:…</c>): Anthropic's API answers them 404. Other non-Claude names (an OpenAI-compatible server's
    /// <c>llama-…</c>, a test's <c>sim-…</c>) are served on every route, as a stand-in for those servers.
    /// </summary>
    public static bool IsOpenAIModel(string model)
    {
        var m = model.ToLowerInvariant();
        if (m.StartsWith("ft:", StringComparison.Ordinal))
        {
            m = m[3..];
        }

        return m.StartsWith("gpt-", StringComparison.Ordinal) || m.StartsWith("chatgpt-", StringComparison.Ordinal)
            || m.StartsWith("text-embedding", StringComparison.Ordinal) || m.StartsWith("davinci", StringComparison.Ordinal)
            || m.StartsWith("babbage", StringComparison.Ordinal) || m.StartsWith("omni-", StringComparison.Ordinal) || IsOSeries(m);
    }

    /// <summary>True for a Claude model name: OpenAI's and Azure's APIs answer them 404.</summary>
    public static bool IsClaudeModel(string model) => model.StartsWith("claude", StringComparison.OrdinalIgnoreCase);

    private static bool IsOSeries(string m) => m.Length >= 2 && m[0] == 'o' && char.IsAsciiDigit(m[1]);
}
