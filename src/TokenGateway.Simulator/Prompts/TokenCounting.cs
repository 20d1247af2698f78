using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Prompts;

/// <summary>Counts text the way the simulator bills it: the real tiktoken encodings, the calibrated estimate for Claude.</summary>
internal static class TokenCounting
{
    public static int Count(string encoding, ReadOnlySpan<char> text) => TiktokenTokenizerRegistry.Shared.Count(encoding, text);

    /// <summary>The exact encoding used to build output text (Claude output is built and reported with raw o200k_base).</summary>
    public static string OutputEncoding(string encoding) => TiktokenTokenizerRegistry.IsEstimate(encoding) ? "o200k_base" : encoding;

    /// <summary>Count under <see cref="OutputEncoding"/>: exact, never calibrated.</summary>
    public static int CountOutput(string encoding, ReadOnlySpan<char> text) =>
        text.IsEmpty ? 0 : TiktokenTokenizerRegistry.Shared.Get(OutputEncoding(encoding)).CountTokens(text);
}
