namespace TokenGateway.Simulator.Prompts;

/// <summary>
/// Input-side usage of one request. <see cref="TotalTokens"/> is the whole prompt; for OpenAI <see cref="CachedTokens"/>
/// is a part of it, for Anthropic the uncached rest is <see cref="UncachedTokens"/> (Anthropic's <c>input_tokens</c>).
/// </summary>
internal readonly record struct PromptUsage(int TotalTokens, int CachedTokens = 0, int CacheWrite5mTokens = 0, int CacheWrite1hTokens = 0)
{
    public int CacheWriteTokens => CacheWrite5mTokens + CacheWrite1hTokens;

    public int UncachedTokens => TotalTokens - CachedTokens - CacheWriteTokens;
}
