namespace TokenGateway.Core.Dialects;

/// <summary>The API surface a request was sent to; decides parsing, usage extraction and the error envelope.</summary>
public enum LlmDialect
{
    /// <summary>OpenAI <c>POST /v1/chat/completions</c>.</summary>
    OpenAIChat,
    /// <summary>OpenAI <c>POST /v1/responses</c>.</summary>
    OpenAIResponses,
    /// <summary>OpenAI <c>POST /v1/embeddings</c>.</summary>
    OpenAIEmbeddings,
    /// <summary>Anthropic <c>POST /v1/messages</c>.</summary>
    AnthropicMessages,
    /// <summary>Anthropic <c>POST /v1/messages/count_tokens</c> (free: metered with zero cost).</summary>
    AnthropicCountTokens,
}

/// <summary>Helpers over <see cref="LlmDialect"/>.</summary>
public static class LlmDialects
{
    /// <summary>True for the Anthropic surfaces, whose error envelope is <c>{"type":"error","error":{…}}</c>.</summary>
    public static bool IsAnthropic(this LlmDialect dialect) =>
        dialect is LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens;

    /// <summary>Maps a request path to its dialect; false for paths that are not LLM routes.</summary>
    public static bool TryFromPath(string path, out LlmDialect dialect)
    {
        switch (path.TrimEnd('/'))
        {
            case "/v1/chat/completions": dialect = LlmDialect.OpenAIChat; return true;
            case "/v1/responses": dialect = LlmDialect.OpenAIResponses; return true;
            case "/v1/embeddings": dialect = LlmDialect.OpenAIEmbeddings; return true;
            case "/v1/messages": dialect = LlmDialect.AnthropicMessages; return true;
            case "/v1/messages/count_tokens": dialect = LlmDialect.AnthropicCountTokens; return true;
            default: dialect = default; return false;
        }
    }
}
