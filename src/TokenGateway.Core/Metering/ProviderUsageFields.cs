using System.Text.Json;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Metering;

/// <summary>
/// The raw counters of a provider <c>usage</c> object as read from the wire (absent fields stay null), and their
/// normalisation into <see cref="TokenUsage"/>.
/// </summary>
internal struct ProviderUsageFields
{
    public int? PromptTokens;
    public int? CompletionTokens;
    public int? InputTokens;
    public int? OutputTokens;
    public int? CachedTokens;
    public int? ReasoningTokens;
    public int? CacheReadInputTokens;
    public int? CacheCreationInputTokens;
    public int? Ephemeral5mInputTokens;
    public int? Ephemeral1hInputTokens;

    /// <summary>True when any counter was present.</summary>
    public readonly bool Any =>
        PromptTokens is not null || CompletionTokens is not null || InputTokens is not null || OutputTokens is not null
        || CacheReadInputTokens is not null || CacheCreationInputTokens is not null;

    /// <summary>Overwrites fields with those present in <paramref name="later"/> (Anthropic's cumulative <c>message_delta</c>).</summary>
    public void MergeFrom(in ProviderUsageFields later)
    {
        PromptTokens = later.PromptTokens ?? PromptTokens;
        CompletionTokens = later.CompletionTokens ?? CompletionTokens;
        InputTokens = later.InputTokens ?? InputTokens;
        OutputTokens = later.OutputTokens ?? OutputTokens;
        CachedTokens = later.CachedTokens ?? CachedTokens;
        ReasoningTokens = later.ReasoningTokens ?? ReasoningTokens;
        CacheReadInputTokens = later.CacheReadInputTokens ?? CacheReadInputTokens;
        CacheCreationInputTokens = later.CacheCreationInputTokens ?? CacheCreationInputTokens;
        Ephemeral5mInputTokens = later.Ephemeral5mInputTokens ?? Ephemeral5mInputTokens;
        Ephemeral1hInputTokens = later.Ephemeral1hInputTokens ?? Ephemeral1hInputTokens;
    }

    /// <summary>Maps the provider's fields to the normalised meaning documented on <see cref="TokenUsage"/>.</summary>
    public readonly TokenUsage Normalize(LlmDialect dialect)
    {
        switch (dialect)
        {
            case LlmDialect.AnthropicMessages:
            {
                var cacheRead = CacheReadInputTokens ?? 0;
                var oneHour = Ephemeral1hInputTokens ?? 0;
                var fiveMinutes = Ephemeral5mInputTokens ?? 0;

                // cache_creation_input_tokens is the total; the TTL breakdown is newer and optional.
                var cacheWrite = CacheCreationInputTokens ?? (fiveMinutes + oneHour);
                return new TokenUsage(
                    InputTokens: (InputTokens ?? PromptTokens ?? 0) + cacheRead + cacheWrite,
                    OutputTokens: OutputTokens ?? CompletionTokens ?? 0,
                    CachedInputTokens: cacheRead,
                    CacheWriteTokens: cacheWrite,
                    CacheWrite1hTokens: Math.Min(oneHour, cacheWrite));
            }

            case LlmDialect.AnthropicCountTokens:
                // count_tokens is free: its input_tokens is an answer, not a bill.
                return default;

            case LlmDialect.OpenAIResponses:
                return new TokenUsage(
                    InputTokens: InputTokens ?? PromptTokens ?? 0,
                    OutputTokens: OutputTokens ?? CompletionTokens ?? 0,
                    CachedInputTokens: CachedTokens ?? 0,
                    ReasoningTokens: ReasoningTokens ?? 0);

            default:
                // Chat and embeddings (embeddings report no completion tokens).
                return new TokenUsage(
                    InputTokens: PromptTokens ?? InputTokens ?? 0,
                    OutputTokens: CompletionTokens ?? OutputTokens ?? 0,
                    CachedInputTokens: CachedTokens ?? 0,
                    ReasoningTokens: ReasoningTokens ?? 0);
        }
    }

    /// <summary>
    /// Reads a usage object; the reader is on its <see cref="JsonTokenType.StartObject"/> and ends on the matching end.
    /// </summary>
    public static ProviderUsageFields Read(ref Utf8JsonReader reader)
    {
        var fields = default(ProviderUsageFields);
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var name = reader.ValueSpan;
            reader.Read();
            if (reader.TokenType is JsonTokenType.StartObject)
            {
                if (name.SequenceEqual("prompt_tokens_details"u8) || name.SequenceEqual("input_tokens_details"u8))
                {
                    ReadDetails(ref reader, ref fields, isInput: true);
                }
                else if (name.SequenceEqual("completion_tokens_details"u8) || name.SequenceEqual("output_tokens_details"u8))
                {
                    ReadDetails(ref reader, ref fields, isInput: false);
                }
                else if (name.SequenceEqual("cache_creation"u8))
                {
                    ReadCacheCreation(ref reader, ref fields);
                }
                else
                {
                    reader.Skip();
                }

                continue;
            }

            if (reader.TokenType is JsonTokenType.StartArray)
            {
                reader.Skip();
                continue;
            }

            if (!TryInt(ref reader, out var value))
            {
                continue;
            }

            if (name.SequenceEqual("prompt_tokens"u8))
            {
                fields.PromptTokens = value;
            }
            else if (name.SequenceEqual("completion_tokens"u8))
            {
                fields.CompletionTokens = value;
            }
            else if (name.SequenceEqual("input_tokens"u8))
            {
                fields.InputTokens = value;
            }
            else if (name.SequenceEqual("output_tokens"u8))
            {
                fields.OutputTokens = value;
            }
            else if (name.SequenceEqual("cache_read_input_tokens"u8))
            {
                fields.CacheReadInputTokens = value;
            }
            else if (name.SequenceEqual("cache_creation_input_tokens"u8))
            {
                fields.CacheCreationInputTokens = value;
            }
        }

        return fields;
    }

    private static void ReadDetails(ref Utf8JsonReader reader, ref ProviderUsageFields fields, bool isInput)
    {
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isCached = reader.ValueTextEquals("cached_tokens"u8);
            var isReasoning = reader.ValueTextEquals("reasoning_tokens"u8);
            reader.Read();
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }
            else if (TryInt(ref reader, out var value))
            {
                if (isInput && isCached)
                {
                    fields.CachedTokens = value;
                }
                else if (!isInput && isReasoning)
                {
                    fields.ReasoningTokens = value;
                }
            }
        }
    }

    private static void ReadCacheCreation(ref Utf8JsonReader reader, ref ProviderUsageFields fields)
    {
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var is5m = reader.ValueTextEquals("ephemeral_5m_input_tokens"u8);
            var is1h = reader.ValueTextEquals("ephemeral_1h_input_tokens"u8);
            reader.Read();
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }
            else if (TryInt(ref reader, out var value))
            {
                if (is5m)
                {
                    fields.Ephemeral5mInputTokens = value;
                }
                else if (is1h)
                {
                    fields.Ephemeral1hInputTokens = value;
                }
            }
        }
    }

    private static bool TryInt(ref Utf8JsonReader reader, out int value)
    {
        value = 0;
        if (reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }

        if (reader.TryGetInt32(out value))
        {
            value = Math.Max(0, value);
            return true;
        }

        // A counter beyond int range is nonsense from a provider; clamp rather than fail the meter.
        value = reader.TryGetInt64(out var big) && big > int.MaxValue ? int.MaxValue : 0;
        return true;
    }
}
