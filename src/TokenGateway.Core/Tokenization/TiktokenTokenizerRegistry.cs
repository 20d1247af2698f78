using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;

namespace TokenGateway.Core.Tokenization;

/// <summary>
/// Tiktoken encodings from the offline data packages, each loaded once on first use.
/// </summary>
/// <remarks>
/// Anthropic publishes no tokenizer. <c>claude</c> counts with o200k_base and scales by <see cref="ClaudeCalibration"/>,
/// an estimate used only before the call (admission, trimming); the provider's <c>usage</c> is the truth after it.
/// </remarks>
public sealed class TiktokenTokenizerRegistry : ITokenizerRegistry
{
    /// <summary>Ratio of Claude tokens to o200k_base tokens observed on mixed English/code/JSON text.</summary>
    public const double ClaudeCalibration = 1.15;

    private readonly ConcurrentDictionary<string, Lazy<Tokenizer>> _tokenizers = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A process-wide instance for code that is not composed through DI (CLI, benchmarks, simulator).</summary>
    public static TiktokenTokenizerRegistry Shared { get; } = new();

    /// <inheritdoc />
    public Tokenizer Get(string encoding) =>
        _tokenizers.GetOrAdd(Normalize(encoding), static e => new Lazy<Tokenizer>(() => TiktokenTokenizer.CreateForEncoding(e))).Value;

    /// <inheritdoc />
    public int Count(string encoding, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return 0;
        }

        var count = JsonTokenText.CountText(Get(encoding), text); // long texts hit TokenCountCache
        return IsEstimate(encoding) ? (int)Math.Ceiling(count * ClaudeCalibration) : count;
    }

    /// <summary>True for encodings that only estimate the provider's count.</summary>
    public static bool IsEstimate(string encoding) => string.Equals(encoding, "claude", StringComparison.OrdinalIgnoreCase);

    private static string Normalize(string encoding) => encoding.ToLowerInvariant() switch
    {
        "cl100k_base" or "cl100k" => "cl100k_base",
        _ => "o200k_base", // o200k_base, and the base of the Claude estimate
    };
}
