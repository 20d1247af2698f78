using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TokenGateway.Core.Caching;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Remembers what <see cref="TextCompactor"/> made of a text. Chats and agents re-send their whole history on every
/// turn, and RAG prompts re-send the same documents; compacting a text again gives the same answer (the compactor is
/// deterministic: its choices depend only on the text, the options and the tokenizer's counts), so the work is done
/// once per distinct text instead of once per request.
/// </summary>
/// <remarks>
/// Keyed by what was cached (a whole message, or a JSON block inside one), the options, the tokenizer encoding and a
/// seeded XxHash128 of the text; a hit is used only when the stored
/// original equals the text (ordinal), so a hash collision can never substitute another text. Bounded: two generations
/// of at most <see cref="GenerationChars"/> characters (originals plus results) each; when the current one fills up it
/// becomes the previous one and the older is dropped (an entry found in the previous generation is promoted).
/// </remarks>
internal static class CompactionCache
{
    /// <summary>Texts shorter than this are compacted directly.</summary>
    public const int MinChars = 256;

    /// <summary>Characters (originals plus results) per generation: about 8 MB of UTF-16.</summary>
    public const long GenerationChars = 4_000_000;

    private static readonly long _seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
    private static readonly GenerationalCache<Key, Entry> _entries =
        new(GenerationChars, static e => e.Original.Length + (e.Compacted?.Length ?? 0L));

    /// <summary>What a cached text was made into.</summary>
    public enum Kind : byte
    {
        /// <summary>A whole message text through <see cref="TextCompactor.Compact"/>.</summary>
        Message = 1,

        /// <summary>A JSON value that starts a line in prose, replaced by its best form (a new question under the same records).</summary>
        EmbeddedJson = 2,
    }

    /// <summary>The compaction of <paramref name="text"/>, from the cache or computed by <paramref name="compactor"/>.</summary>
    public static string Compact(TextCompactor compactor, CompactOptions options, string encoding, string text) =>
        text.Length < MinChars ? compactor.Compact(text) : GetOrAdd(Kind.Message, options, encoding, text, compactor.Compact);

    /// <summary>The result of <paramref name="compute"/> for <paramref name="text"/> (a deterministic function of the text, the options and the encoding), cached.</summary>
    public static string GetOrAdd(Kind kind, CompactOptions options, string encoding, string text, Func<string, string> compute)
    {
        if (text.Length < MinChars)
        {
            return compute(text);
        }

        var key = new Key(kind, options, encoding, XxHash128.HashToUInt128(MemoryMarshal.AsBytes(text.AsSpan()), _seed), text.Length);

        // A hit counts only when the stored original is this text: a hash collision never substitutes another text.
        if (_entries.TryGetValue(key, out var entry) && string.Equals(entry.Original, text, StringComparison.Ordinal))
        {
            return entry.Compacted ?? text;
        }

        var result = compute(text);
        _entries.Add(key, new Entry(text, string.Equals(result, text, StringComparison.Ordinal) ? null : result));
        return result;
    }

    /// <summary>Forgets everything (tests).</summary>
    internal static void Clear() => _entries.Clear();

    /// <summary>Characters held across both generations (tests, diagnostics).</summary>
    internal static long Chars => _entries.Size;

    /// <summary>Entries across both generations (tests, diagnostics).</summary>
    internal static int Count => _entries.Count;

    private readonly record struct Key(Kind Kind, CompactOptions Options, string Encoding, UInt128 Hash, int Length);

    /// <summary>A compacted text; <see cref="Compacted"/> is null when compaction left the text unchanged.</summary>
    private sealed record Entry(string Original, string? Compacted);
}
