using System.Buffers;
using System.Text;
using System.Text.Json;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>Extracts the provider's <c>usage</c> from a complete (non-streaming) response body without building a DOM.</summary>
public static class ResponseUsageReader
{
    private static readonly JsonReaderOptions _options = new() { MaxDepth = 256, CommentHandling = JsonCommentHandling.Skip };

    /// <summary>
    /// Reads the top-level <c>usage</c> of a chat, Responses, embeddings or Anthropic messages body, normalised as
    /// described on <see cref="TokenUsage"/>. Returns false when the body carries no usage or is not valid JSON.
    /// </summary>
    /// <remarks>
    /// For <see cref="LlmDialect.AnthropicCountTokens"/> the answer (<c>{"input_tokens":n}</c>) is recognised and
    /// mapped to zero billed usage, since counting is free.
    /// </remarks>
    public static bool TryRead(LlmDialect dialect, ReadOnlySpan<byte> body, out TokenUsage usage)
    {
        usage = default;
        if (body.IsEmpty)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(body, _options);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.CurrentDepth > 0)
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    continue;
                }

                var isUsage = reader.ValueTextEquals("usage"u8);
                var isCountAnswer = dialect == LlmDialect.AnthropicCountTokens && reader.ValueTextEquals("input_tokens"u8);
                reader.Read();
                if (isUsage && reader.TokenType == JsonTokenType.StartObject)
                {
                    var fields = ProviderUsageFields.Read(ref reader);
                    if (!fields.Any)
                    {
                        return false;
                    }

                    usage = fields.Normalize(dialect);
                    return true;
                }

                if (isCountAnswer && reader.TokenType == JsonTokenType.Number)
                {
                    usage = default;
                    return true;
                }

                // Skip large values (choices, output, data, content) without materialising them.
                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // A malformed upstream body: the caller falls back to an estimate.
        }

        return false;
    }

    /// <summary>
    /// Tokens of the generated text in a response body (message content, refusals, reasoning, tool-call names and
    /// arguments, Responses <c>output_text</c>, Anthropic <c>text</c>/<c>thinking</c>/<c>tool_use</c> input), used only
    /// when the body carries no usage.
    /// </summary>
    internal static int CountOutputText(ReadOnlySpan<byte> body, ITokenizerRegistry tokenizers, string encoding)
    {
        var text = new ArrayBufferWriter<byte>(Math.Min(body.Length, 64 * 1024) + 16);
        try
        {
            var reader = new Utf8JsonReader(body, _options);
            var inOutput = 0; // depth of the enclosing choices/output/content value, 0 when outside
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    if (inOutput > 0 && reader.CurrentDepth < inOutput && reader.TokenType is JsonTokenType.EndArray or JsonTokenType.EndObject)
                    {
                        inOutput = 0;
                    }

                    continue;
                }

                if (inOutput == 0)
                {
                    var isOutput = reader.CurrentDepth == 1
                        && (reader.ValueTextEquals("choices"u8) || reader.ValueTextEquals("output"u8) || reader.ValueTextEquals("content"u8));
                    reader.Read();
                    if (isOutput && reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                    {
                        inOutput = reader.CurrentDepth + 1;
                    }
                    else
                    {
                        reader.Skip();
                    }

                    continue;
                }

                var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8)
                    || reader.ValueTextEquals("refusal"u8) || reader.ValueTextEquals("arguments"u8)
                    || reader.ValueTextEquals("thinking"u8) || reader.ValueTextEquals("name"u8)
                    || reader.ValueTextEquals("reasoning_content"u8);
                var isToolInput = reader.ValueTextEquals("input"u8);
                reader.Read();
                if (isText && reader.TokenType == JsonTokenType.String)
                {
                    var span = text.GetSpan(reader.ValueSpan.Length + 1);
                    var n = reader.CopyString(span);
                    span[n] = (byte)'\n';
                    text.Advance(n + 1);
                }
                else if (isToolInput && reader.TokenType == JsonTokenType.StartObject)
                {
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    var raw = body[start..((int)reader.TokenStartIndex + 1)];
                    text.Write(raw);
                }
            }
        }
        catch (JsonException)
        {
            // Count whatever was read before the body turned malformed.
        }

        if (text.WrittenCount == 0)
        {
            return 0;
        }

        var chars = ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(text.WrittenCount));
        try
        {
            var count = Encoding.UTF8.GetChars(text.WrittenSpan, chars);
            return tokenizers.Count(encoding, chars.AsSpan(0, count));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }
}
