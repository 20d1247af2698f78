using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.Tokenizers;
using TokenGateway.Core.Caching;

namespace TokenGateway.Core.Tokenization;

/// <summary>
/// Remembers the token counts of long text segments, keyed by a seeded 128-bit hash of their bytes.
/// </summary>
/// <remarks>
/// <para>LLM traffic repeats itself: every turn of a conversation re-sends the system prompt and the whole history,
/// RAG prompts re-send the same documents, agents re-send the same tool results. Counting a segment with a BPE
/// tokenizer costs about 60 µs per KB, and about 1 µs and 300 B even for a short text; hashing costs well under
/// 1 µs per KB. Segments shorter than
/// <see cref="MinBytes"/> are counted directly (hashing would not pay off).</para>
/// <para>The key is the tokenizer instance, the segment's length, how its bytes are read (raw UTF-8, escaped JSON
/// string content, UTF-16) and XxHash128 of the bytes with a per-process random seed, so a collision cannot be
/// precomputed. Memory is bounded: two generations of at most <see cref="GenerationCapacity"/> entries each; when
/// the current one fills up it becomes the previous one and the older is dropped (an approximate LRU: an entry
/// found in the previous generation is promoted).</para>
/// </remarks>
internal static class TokenCountCache
{
    /// <summary>Segments shorter than this (in bytes) are not cached.</summary>
    public const int MinBytes = 64;

    /// <summary>Entries per generation (two generations are kept).</summary>
    public const int GenerationCapacity = 16_384;

    private static readonly long _seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
    private static readonly GenerationalCache<Key, int> _counts = new(GenerationCapacity, static _ => 1);

    /// <summary>How the hashed bytes become the counted text.</summary>
    public enum SegmentKind : byte
    {
        /// <summary>UTF-8 text counted as it is.</summary>
        Utf8 = 1,

        /// <summary>The raw bytes of a JSON string with escapes; the unescaped string is counted.</summary>
        JsonEscaped = 2,

        /// <summary>UTF-16 text counted as it is.</summary>
        Utf16 = 3,
    }

    /// <summary>Looks up the count of <paramref name="bytes"/>; <paramref name="key"/> is then used to <see cref="Add"/> a miss.</summary>
    /// <returns>True with <paramref name="count"/> on a hit. False on a miss, and for short segments (then <paramref name="key"/> is default).</returns>
    public static bool TryGet(Tokenizer tokenizer, ReadOnlySpan<byte> bytes, SegmentKind kind, out Key key, out int count)
    {
        if (bytes.Length < MinBytes)
        {
            key = default;
            count = 0;
            return false;
        }

        key = new Key(tokenizer, XxHash128.HashToUInt128(bytes, _seed), bytes.Length, kind);
        return _counts.TryGetValue(key, out count);
    }

    /// <inheritdoc cref="TryGet(Tokenizer, ReadOnlySpan{byte}, SegmentKind, out Key, out int)"/>
    public static bool TryGet(Tokenizer tokenizer, ReadOnlySpan<char> text, out Key key, out int count) =>
        TryGet(tokenizer, MemoryMarshal.AsBytes(text), SegmentKind.Utf16, out key, out count);

    /// <summary>Remembers <paramref name="count"/> for a key returned by a missed <c>TryGet</c> (ignored for default keys).</summary>
    public static void Add(in Key key, int count)
    {
        if (key.Tokenizer is not null)
        {
            _counts.Add(key, count);
        }
    }

    /// <summary>Forgets everything (tests).</summary>
    internal static void Clear() => _counts.Clear();

    /// <summary>Number of cached counts across both generations (tests, diagnostics).</summary>
    internal static int Count => _counts.Count;

    /// <summary>A cache key: tokenizer instance, hash, length and reading of the bytes.</summary>
    public readonly record struct Key(Tokenizer Tokenizer, UInt128 Hash, int Length, SegmentKind Kind);
}
