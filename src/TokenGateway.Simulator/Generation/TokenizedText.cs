using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Generation;

/// <summary>Output text together with the end offset of each of its tokens (for token-by-token streaming).</summary>
internal sealed class TokenizedText
{
    public static readonly TokenizedText Empty = new(string.Empty, []);

    public TokenizedText(string text, int[] tokenEnds)
    {
        Text = text;
        TokenEnds = tokenEnds;
    }

    public string Text { get; }

    /// <summary>Exclusive end offset in <see cref="Text"/> of each token, ascending; the last equals the text length.</summary>
    public int[] TokenEnds { get; }

    public int TokenCount => TokenEnds.Length;

    /// <summary>Splits <paramref name="text"/> into its real tokens under <paramref name="encoding"/> (an exact tiktoken encoding).</summary>
    public static TokenizedText FromText(string encoding, string text)
    {
        if (text.Length == 0)
        {
            return Empty;
        }

        var tokens = TiktokenTokenizerRegistry.Shared.Get(encoding).EncodeToTokens(text, out _);
        var ends = new int[tokens.Count];
        var last = 0;
        for (var i = 0; i < ends.Length; i++)
        {
            // Byte-level tokens that split one character share its offsets: they become empty pieces, so the piece
            // count always equals the real token count.
            last = Math.Max(last, Math.Min(text.Length, tokens[i].Offset.End.GetOffset(text.Length)));
            ends[i] = last;
        }

        ends[^1] = text.Length;
        return new TokenizedText(text, ends);
    }

    /// <summary>The first <paramref name="maxTokens"/> tokens (re-tokenized so the count stays exact).</summary>
    public TokenizedText Truncate(string encoding, int maxTokens)
    {
        if (maxTokens >= TokenCount)
        {
            return this;
        }

        if (maxTokens <= 0)
        {
            return Empty;
        }

        var cut = FromText(encoding, Text[..TokenEnds[maxTokens - 1]]);
        while (cut.TokenCount > maxTokens)
        {
            cut = FromText(encoding, cut.Text[..cut.TokenEnds[^2]]);
        }

        return cut;
    }

    /// <summary>The piece of token <paramref name="index"/>.</summary>
    public ReadOnlySpan<char> Piece(int index) =>
        Text.AsSpan(index == 0 ? 0 : TokenEnds[index - 1], TokenEnds[index] - (index == 0 ? 0 : TokenEnds[index - 1]));
}
