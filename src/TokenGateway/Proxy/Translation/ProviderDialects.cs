using TokenGateway.Core.Dialects;
using TokenGateway.Core.Translation;
using TokenGateway.Providers;

namespace TokenGateway.Proxy.Translation;

/// <summary>
/// Which API a provider speaks for a model, and so whether a request must be translated (issue #16): a Claude model
/// on <c>/v1/chat/completions</c> or <c>/v1/responses</c> goes to its provider's <c>/v1/messages</c>, an OpenAI,
/// Azure OpenAI or OpenAI-compatible model on <c>/v1/messages</c> goes to its provider's <c>/v1/chat/completions</c>.
/// </summary>
internal static class ProviderDialects
{
    /// <summary>The API family a provider serves a model on; null when it serves both (the simulator, for a model of neither family).</summary>
    public static bool? IsAnthropic(ProviderType type, string model) => type switch
    {
        ProviderType.Anthropic => true,
        ProviderType.OpenAI or ProviderType.AzureOpenAI or ProviderType.OpenAICompatible => false,
        // The simulator serves both APIs and, like the real providers, each model family on its own API only.
        _ when model.StartsWith("claude", StringComparison.OrdinalIgnoreCase) => true,
        _ when IsOpenAIFamily(model) => false,
        _ => null,
    };

    /// <summary>
    /// The dialect the upstream call uses for a <paramref name="client"/> request to a model of
    /// <paramref name="type"/>: the client's own when the provider serves it, the translated dialect otherwise, or null
    /// when no translation exists (embeddings to Anthropic). count_tokens for an OpenAI-API model yields
    /// <see cref="LlmDialect.OpenAIChat"/>: it is answered by the gateway, never forwarded.
    /// </summary>
    public static LlmDialect? Upstream(LlmDialect client, ProviderType type, string model)
    {
        var anthropic = IsAnthropic(type, model);
        if (anthropic is null || anthropic == client.IsAnthropic())
        {
            return client;
        }

        if (client == LlmDialect.AnthropicCountTokens && !anthropic.Value)
        {
            return LlmDialect.OpenAIChat; // OpenAI APIs have no count endpoint: the gateway counts the translated body itself
        }

        var upstream = anthropic.Value ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
        return DialectTranslator.CanTranslate(client, upstream) && DialectTranslator.CanTranslateAnswer(client, upstream) ? upstream : null;
    }

    /// <summary>The provider path of a translated call.</summary>
    public static string PathOf(LlmDialect upstream) => upstream switch
    {
        LlmDialect.AnthropicMessages => "/v1/messages",
        LlmDialect.OpenAIChat => "/v1/chat/completions",
        _ => throw new ArgumentOutOfRangeException(nameof(upstream), upstream, "Only Messages and Chat Completions are translation targets."),
    };

    /// <summary>Translation knobs for the provider: compatible servers get the older <c>max_tokens</c> field.</summary>
    public static TranslationOptions OptionsFor(ProviderType type) => type == ProviderType.OpenAICompatible ? _compatible : TranslationOptions.Default;

    private static readonly TranslationOptions _compatible = new() { OpenAIMaxTokensField = "max_tokens" };

    private static bool IsOpenAIFamily(string model)
    {
        var m = model.StartsWith("ft:", StringComparison.OrdinalIgnoreCase) ? model[3..] : model;
        return m.StartsWith("gpt-", StringComparison.OrdinalIgnoreCase) || m.StartsWith("chatgpt-", StringComparison.OrdinalIgnoreCase)
            || m.StartsWith("text-embedding", StringComparison.OrdinalIgnoreCase)
            || (m.Length >= 2 && (m[0] == 'o' || m[0] == 'O') && char.IsAsciiDigit(m[1]));
    }
}
