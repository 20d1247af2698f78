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

    /// <summary>The encoding names this registry serves (case-insensitive; <c>o200k</c> and <c>cl100k</c> are accepted too).</summary>
    public static IReadOnlyList<string> SupportedEncodings { get; } = ["o200k_base", "cl100k_base", "claude"];

    /// <summary>True when <paramref name="encoding"/> names an encoding this registry serves.</summary>
    public static bool IsSupported(string? encoding) => encoding is not null && TryNormalize(encoding, out _);

    /// <summary>True for encodings that only estimate the provider's count.</summary>
    public static bool IsEstimate(string encoding) => string.Equals(encoding, "claude", StringComparison.OrdinalIgnoreCase);

    // Unknown names throw instead of falling back to o200k_base: a wrong count would bill and trim silently. The
    // model catalogue is validated at start-up (ModelCatalogOptionsValidator), so the hot path never sees one.
    private static string Normalize(string encoding) => TryNormalize(encoding, out var name)
        ? name
        : throw new ArgumentException($"Unknown tokenizer '{encoding}'. Supported: {string.Join(", ", SupportedEncodings)}.", nameof(encoding));

    private static bool TryNormalize(string encoding, out string name)
    {
        name = encoding.ToLowerInvariant() switch
        {
            "cl100k_base" or "cl100k" => "cl100k_base",
            "o200k_base" or "o200k" or "claude" => "o200k_base", // o200k_base is also the base of the Claude estimate
            _ => "",
        };
        return name.Length > 0;
    }
}
