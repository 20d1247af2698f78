using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Translation;

/// <summary>
/// One entry point per concern for the host: which translation applies between the client's dialect and the
/// upstream's, and the translated request, answer, error or stream translator.
/// </summary>
public static class DialectTranslator
{
    /// <summary>True when a request of <paramref name="client"/> can be served by an upstream speaking <paramref name="upstream"/>.</summary>
    public static bool CanTranslate(LlmDialect client, LlmDialect upstream) => (client, upstream) switch
    {
        (LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages) => true,
        (LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat) => true,
        (LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages) => true,
        _ => false,
    };

    /// <summary>True when the answer (and stream) of <paramref name="upstream"/> can be translated back for <paramref name="client"/>.</summary>
    public static bool CanTranslateAnswer(LlmDialect client, LlmDialect upstream) =>
        (client, upstream) is (LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages) or (LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat)
            or (LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages);

    /// <summary>Translates a client request body for the upstream's dialect.</summary>
    /// <exception cref="NotSupportedException">The pair is not supported (check <see cref="CanTranslate"/> first).</exception>
    public static RequestTranslation TranslateRequest(LlmDialect client, LlmDialect upstream, JsonObject body, TranslationOptions? options = null) =>
        (client, upstream) switch
        {
            (LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages) => ChatToMessagesRequest.Translate(body, options),
            (LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat) => MessagesToChatRequest.Translate(body, options),
            (LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages) => ResponsesToMessagesRequest.Translate(body, options),
            _ => throw new NotSupportedException($"No translation from {client} to {upstream}."),
        };

    /// <summary>
    /// Translates a complete upstream answer for the client, or returns null with <paramref name="error"/> when it
    /// cannot be represented (the host answers 502 <c>upstream_error</c>).
    /// </summary>
    /// <param name="client">The client's dialect.</param>
    /// <param name="upstream">The upstream's dialect.</param>
    /// <param name="answer">The upstream's JSON answer.</param>
    /// <param name="created">Unix seconds for OpenAI's <c>created</c> (from the host's clock).</param>
    /// <param name="error">Why the answer could not be translated.</param>
    public static JsonObject? TranslateAnswer(LlmDialect client, LlmDialect upstream, JsonObject answer, long created, out string? error)
    {
        ArgumentNullException.ThrowIfNull(answer);
        error = null;
        return (client, upstream) switch
        {
            (LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages) => ResponseTranslator.MessageToChatCompletion(answer, created),
            (LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat) => ResponseTranslator.ChatCompletionToMessage(answer, out error),
            (LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages) => ResponseTranslator.MessageToResponse(answer, created),
            _ => throw new NotSupportedException($"No answer translation from {upstream} to {client}."),
        };
    }

    /// <summary>
    /// Translates an upstream error body into the client's envelope (the status is kept by the caller); null when the
    /// body is not the upstream's envelope or no translation is needed.
    /// </summary>
    public static JsonObject? TranslateError(LlmDialect client, LlmDialect upstream, JsonObject body, int status)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (client.IsAnthropic() == upstream.IsAnthropic())
        {
            return null;
        }

        return client.IsAnthropic()
            ? ResponseTranslator.OpenAIErrorToAnthropic(body, status)
            : ResponseTranslator.AnthropicErrorToOpenAI(body);
    }

    /// <summary>Creates the stream translator for one streamed answer.</summary>
    /// <param name="client">The client's dialect.</param>
    /// <param name="upstream">The upstream's dialect.</param>
    /// <param name="includeUsage"><see cref="RequestTranslation.ClientIncludeUsage"/> of the request.</param>
    /// <param name="created">Unix seconds for OpenAI's <c>created</c> (Responses: <c>created_at</c>).</param>
    public static SseEventTranslator CreateStreamTranslator(LlmDialect client, LlmDialect upstream, bool includeUsage, long created) =>
        (client, upstream) switch
        {
            (LlmDialect.OpenAIChat, LlmDialect.AnthropicMessages) => new AnthropicToChatStreamTranslator(includeUsage, created),
            (LlmDialect.AnthropicMessages, LlmDialect.OpenAIChat) => new ChatToAnthropicStreamTranslator(),
            (LlmDialect.OpenAIResponses, LlmDialect.AnthropicMessages) => new AnthropicToResponsesStreamTranslator(created),
            _ => throw new NotSupportedException($"No stream translation from {upstream} to {client}."),
        };
}
