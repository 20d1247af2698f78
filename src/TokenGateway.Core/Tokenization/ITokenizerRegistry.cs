using Microsoft.ML.Tokenizers;

namespace TokenGateway.Core.Tokenization;

/// <summary>Hands out one shared tokenizer per encoding (tokenizers are expensive to load and thread-safe to use).</summary>
public interface ITokenizerRegistry
{
    /// <summary>Returns the tokenizer for an encoding name (<c>o200k_base</c>, <c>cl100k_base</c>, <c>claude</c>).</summary>
    Tokenizer Get(string encoding);

    /// <summary>Counts the tokens of <paramref name="text"/> under <paramref name="encoding"/>, calibrated where the encoding is an estimate.</summary>
    int Count(string encoding, ReadOnlySpan<char> text);
}
