using TokenGateway.Core.Dialects;
using TokenGateway.Providers;
using TokenGateway.Proxy.Translation;

namespace TokenGateway.IntegrationTests.Translation;

/// <summary>Which API the upstream call uses for each client route and provider type (docs/translation.md, first table).</summary>
public sealed class ProviderDialectsTests
{
    [Theory]
    [InlineData(LlmDialect.OpenAIChat, ProviderType.Anthropic, "claude-sonnet-4-5", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.OpenAIChat, ProviderType.OpenAI, "gpt-4o", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.OpenAI, "gpt-4o", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.AzureOpenAI, "my-deployment", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.OpenAICompatible, "gemini-2.5-flash", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.Anthropic, "claude-haiku-4-5", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.AnthropicCountTokens, ProviderType.OpenAI, "gpt-4o", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicCountTokens, ProviderType.Anthropic, "claude-haiku-4-5", LlmDialect.AnthropicCountTokens)]
    [InlineData(LlmDialect.OpenAIResponses, ProviderType.OpenAI, "gpt-4o", LlmDialect.OpenAIResponses)]
    [InlineData(LlmDialect.OpenAIResponses, ProviderType.Anthropic, "claude-haiku-4-5", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.OpenAIResponses, ProviderType.Simulator, "claude-haiku-4-5", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.OpenAIEmbeddings, ProviderType.OpenAI, "text-embedding-3-small", LlmDialect.OpenAIEmbeddings)]
    // The simulator serves both APIs, each model family on its own, like the real providers.
    [InlineData(LlmDialect.OpenAIChat, ProviderType.Simulator, "claude-haiku-4-5", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.Simulator, "o3-mini", LlmDialect.OpenAIChat)]
    [InlineData(LlmDialect.AnthropicMessages, ProviderType.Simulator, "sim-model", LlmDialect.AnthropicMessages)]
    [InlineData(LlmDialect.OpenAIChat, ProviderType.Simulator, "sim-model", LlmDialect.OpenAIChat)]
    public void Upstream_ClientRouteAndProvider_PicksTheProvidersApi(LlmDialect client, ProviderType type, string model, LlmDialect expected) =>
        Assert.Equal(expected, ProviderDialects.Upstream(client, type, model));

    [Theory]
    [InlineData(LlmDialect.OpenAIEmbeddings, ProviderType.Anthropic)]
    public void Upstream_NoTranslation_Null(LlmDialect client, ProviderType type) =>
        Assert.Null(ProviderDialects.Upstream(client, type, "claude-haiku-4-5"));

    [Theory]
    [InlineData(null, "/v1/chat/completions", "/v1/chat/completions")]
    [InlineData("/v1beta/openai", "/v1/chat/completions", "/v1beta/openai/chat/completions")]
    [InlineData("/v1beta/openai/", "/v1/embeddings", "/v1beta/openai/embeddings")]
    [InlineData("/v1beta/openai", "/openai/deployments/x/chat/completions", "/openai/deployments/x/chat/completions")]
    public void MapPath_PathPrefix_ReplacesTheLeadingV1(string? prefix, string path, string expected) =>
        Assert.Equal(expected, new ProviderOptions { PathPrefix = prefix }.MapPath(path).Value);
}
