namespace TokenGateway.Core.Tokenization;

/// <summary>
/// Where a text may be cut so that the tiktoken counts of the pieces add up to the count of the whole text.
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
/// </remarks>
internal static class TiktokenChunks
{
    /// <summary>The next chunk boundary after <paramref name="start"/>, or the end of the text.</summary>
    public static int NextBoundary(ReadOnlySpan<char> text, int start)
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
}
