using Microsoft.ML.Tokenizers;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Optimization;

/// <summary>
/// Exact token counts for the texts of one request, remembered per line chunk (in <see cref="TokenCountCache"/>) so a
/// text that shares chunks with one already counted (a slot and the JSON value inside it, a TOON block and the slot it
/// was put into, the same document in the next request) only pays for the chunks that differ.
/// </summary>
/// <remarks>
/// <para>Tiktoken encodes each pre-token of its split regex independently, so the count of a text is the sum of the
/// counts of its parts whenever the parts are cut at a pre-token boundary that the split of each part reproduces.
/// A chunk boundary is placed before a character that follows a line feed and is printable ASCII other than
/// <c>/</c>. No alternative of the o200k_base or cl100k_base split pattern can match a line feed followed by such a
/// character inside one pre-token: letter pre-tokens exclude line feeds, punctuation pre-tokens may only continue
/// with <c>[\r\n/]</c> (o200k) or <c>[\r\n]</c> (cl100k) after one, and whitespace pre-tokens end before a non-space.
/// Matching after the boundary sees the same characters as matching on the suffix alone (the patterns have no
/// look-behind), and the last pre-token before it — a whitespace run ending in a line feed, or punctuation followed
/// by line feeds — is the same span whether the text ends there or continues. Special tokens contain no line feed.</para>
/// <para>Counts are raw tiktoken counts summed per chunk, scaled once at the end exactly as
/// <see cref="TiktokenTokenizerRegistry.Count"/> scales the whole text, so the result equals it bit for bit.</para>
/// </remarks>
internal sealed class ChunkedTokenCounter
{
    /// <summary>Texts shorter than this are counted whole (chunking would not pay for its hashing).</summary>
    private const int MinChunkedLength = 256;

    private readonly Tokenizer _tokenizer;
    private readonly bool _estimate;

    private ChunkedTokenCounter(Tokenizer tokenizer, bool estimate)
    {
        _tokenizer = tokenizer;
        _estimate = estimate;
    }

    /// <summary>A chunked counter for <paramref name="encoding"/>, or null when the registry's counts cannot be reproduced.</summary>
    public static ChunkedTokenCounter? TryCreate(ITokenizerRegistry tokenizers, string encoding) =>
        tokenizers is TiktokenTokenizerRegistry
            ? new ChunkedTokenCounter(tokenizers.Get(encoding), TiktokenTokenizerRegistry.IsEstimate(encoding))
            : null;

    /// <summary>Tokens of <paramref name="text"/>, equal to <see cref="TiktokenTokenizerRegistry.Count"/>.</summary>
    public int Count(string text)
    {
        var raw = text.Length < MinChunkedLength ? JsonTokenText.CountText(_tokenizer, text) : CountRaw(text);
        return raw == 0 ? 0 : _estimate ? (int)Math.Ceiling(raw * TiktokenTokenizerRegistry.ClaudeCalibration) : raw;
    }

    private int CountRaw(string text)
    {
        var total = 0;
        var start = 0;
        var span = text.AsSpan();
        while (start < span.Length)
        {
            var end = NextBoundary(span, start);
            total += CountChunk(span[start..end]);
            start = end;
        }

        return total;
    }

    /// <summary>The next chunk boundary after <paramref name="start"/>, or the end of the text.</summary>
    internal static int NextBoundary(ReadOnlySpan<char> text, int start)
    {
        var pos = start;
        while (true)
        {
            var newline = text[pos..].IndexOf('\n');
            if (newline < 0)
            {
                return text.Length;
            }

            var next = pos + newline + 1;
            if (next >= text.Length)
            {
                return text.Length;
            }

            if (IsBoundaryStart(text[next]))
            {
                return next;
            }

            pos = next;
        }
    }

    private static bool IsBoundaryStart(char c) => c is > ' ' and < '\u007f' and not '/';

    // Chunks of 32+ chars are remembered by TokenCountCache (hashed, never copied); shorter ones are counted.
    private int CountChunk(ReadOnlySpan<char> chunk) => JsonTokenText.CountText(_tokenizer, chunk);
}
