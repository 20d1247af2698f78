namespace TokenGateway.Core.Metering;

/// <summary>
/// Token counts for one upstream call, normalised across providers.
/// </summary>
/// <remarks>
/// <see cref="InputTokens"/> is the total prompt size including cached and cache-write tokens (OpenAI's
/// <c>prompt_tokens</c>; Anthropic's <c>input_tokens + cache_read_input_tokens + cache_creation_input_tokens</c>),
/// so <c>InputTokens - CachedInputTokens - CacheWriteTokens</c> is the uncached remainder billed at the input price.
/// <see cref="OutputTokens"/> includes <see cref="ReasoningTokens"/>.
/// </remarks>
public readonly record struct TokenUsage(
    int InputTokens,
    int OutputTokens,
    int CachedInputTokens = 0,
    int CacheWriteTokens = 0,
    int CacheWrite1hTokens = 0,
    int ReasoningTokens = 0)
{
    /// <summary>Adds two usages field by field (used to sum repair attempts).</summary>
    public static TokenUsage operator +(TokenUsage a, TokenUsage b) => new(
        a.InputTokens + b.InputTokens,
        a.OutputTokens + b.OutputTokens,
        a.CachedInputTokens + b.CachedInputTokens,
        a.CacheWriteTokens + b.CacheWriteTokens,
        a.CacheWrite1hTokens + b.CacheWrite1hTokens,
        a.ReasoningTokens + b.ReasoningTokens);

    /// <summary>Input plus output.</summary>
    public int TotalTokens => InputTokens + OutputTokens;
}
