using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>The usage to bill for one upstream call, and whether the gateway had to estimate it.</summary>
public readonly record struct MeteredUsage(TokenUsage Usage, bool Estimated);

/// <summary>
/// Decides the billable usage of a finished response: the provider's <c>usage</c> when it was seen, otherwise an
/// estimate from the pre-flight input count and the output actually delivered (never zero input, never twice).
/// </summary>
public static class UsageEstimator
{
    /// <summary>
    /// Usage for a stream that ended (normally, cut by the upstream, or abandoned by the client).
    /// </summary>
    /// <param name="meter">The stream's tap.</param>
    /// <param name="preflightInputTokens">The pre-flight count of the prompt as sent.</param>
    /// <param name="tokenizers">Tokenizers for counting the delivered output.</param>
    /// <param name="encoding">The model card's tokenizer encoding.</param>
    public static MeteredUsage ForStream(SseStreamMeter meter, int preflightInputTokens, ITokenizerRegistry tokenizers, string encoding)
    {
        ArgumentNullException.ThrowIfNull(meter);
        if (meter.Usage is { } usage)
        {
            return new MeteredUsage(usage, Estimated: false);
        }

        var delivered = meter.DeliveredOutputTokens(tokenizers, encoding);
        if (meter.StartUsage is { } start)
        {
            // Anthropic told us the exact input (and cache) side in message_start; only the output is estimated.
            return new MeteredUsage(start with { OutputTokens = Math.Max(start.OutputTokens, delivered) }, Estimated: true);
        }

        return new MeteredUsage(new TokenUsage(Math.Max(0, preflightInputTokens), delivered), Estimated: true);
    }

    /// <summary>
    /// Usage for a complete non-streaming body: its <c>usage</c> when present, else the pre-flight input plus the
    /// tokens of the generated text found in the body.
    /// </summary>
    public static MeteredUsage ForBody(
        LlmDialect dialect, ReadOnlySpan<byte> body, int preflightInputTokens, ITokenizerRegistry tokenizers, string encoding)
    {
        ArgumentNullException.ThrowIfNull(tokenizers);
        if (ResponseUsageReader.TryRead(dialect, body, out var usage))
        {
            return new MeteredUsage(usage, Estimated: false);
        }

        if (dialect == LlmDialect.AnthropicCountTokens)
        {
            return new MeteredUsage(default, Estimated: false); // free endpoint
        }

        var output = dialect == LlmDialect.OpenAIEmbeddings ? 0 : ResponseUsageReader.CountOutputText(body, tokenizers, encoding);
        return new MeteredUsage(new TokenUsage(Math.Max(0, preflightInputTokens), output), Estimated: true);
    }

    /// <summary>Usage for a call that produced no usable response (connect failure, error status, abort before the body).</summary>
    public static MeteredUsage NoResponse(int preflightInputTokens, int deliveredOutputTokens = 0) =>
        new(new TokenUsage(Math.Max(0, preflightInputTokens), Math.Max(0, deliveredOutputTokens)), Estimated: true);
}
