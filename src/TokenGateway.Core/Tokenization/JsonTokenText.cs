using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace TokenGateway.Core.Tokenization;

/// <summary>
/// Counts tokens of JSON values straight from a <see cref="JsonNode"/> tree, avoiding string materialisation.
/// </summary>
/// <remarks>
/// A string value parsed from the request is backed by a <see cref="JsonElement"/>; its raw UTF-8 bytes are
/// transcoded into a pooled char buffer and counted there unless the value contains escapes (then the BCL
/// unescapes it into a string). Objects and arrays that must be counted as JSON text (tool arguments, schemas)
/// are written once into a thread-local buffer rather than through <c>ToJsonString()</c>.
/// </remarks>
internal static class JsonTokenText
{
    private static readonly JsonWriterOptions _writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = true,
    };

    private static readonly string[] _roles = ["system", "user", "assistant", "developer", "tool", "function"];
    private static readonly ConditionalWeakTable<Tokenizer, int[]> _roleCounts = [];

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _scratch;

    /// <summary>Tokens of a chat role; the standard roles are counted once per tokenizer and cached.</summary>
    public static int CountRole(Tokenizer tokenizer, JsonNode? node)
    {
        if (node is JsonValue value && value.TryGetValue<JsonElement>(out var element) && element.ValueKind == JsonValueKind.String)
        {
            var index = StandardRole(JsonMarshal.GetRawUtf8Value(element)[1..^1]);
            if (index >= 0)
            {
                var counts = _roleCounts.GetValue(tokenizer, static t => Array.ConvertAll(_roles, r => t.CountTokens(r)));
                return counts[index];
            }
        }

        return Count(tokenizer, node);
    }

    private static int StandardRole(ReadOnlySpan<byte> raw) => raw switch
    {
        _ when raw.SequenceEqual("system"u8) => 0,
        _ when raw.SequenceEqual("user"u8) => 1,
        _ when raw.SequenceEqual("assistant"u8) => 2,
        _ when raw.SequenceEqual("developer"u8) => 3,
        _ when raw.SequenceEqual("tool"u8) => 4,
        _ when raw.SequenceEqual("function"u8) => 5,
        _ => -1,
    };

    /// <summary>Tokens of the text of <paramref name="node"/>: a string's content, or the compact JSON of anything else.</summary>
    public static int Count(Tokenizer tokenizer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                return 0;
            case JsonValue value:
                return CountValue(tokenizer, value);
            default:
                return CountJson(tokenizer, node);
        }
    }

    /// <summary>The string content of <paramref name="node"/>, or null when it is not a JSON string.</summary>
    public static string? GetString(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>True when <paramref name="node"/> is a JSON string equal to <paramref name="expected"/> (ordinal).</summary>
    public static bool StringEquals(JsonNode? node, string expected)
    {
        if (node is not JsonValue v)
        {
            return false;
        }

        if (v.TryGetValue<JsonElement>(out var element))
        {
            return element.ValueKind == JsonValueKind.String && element.ValueEquals(expected);
        }

        return v.TryGetValue<string>(out var s) && string.Equals(s, expected, StringComparison.Ordinal);
    }

    /// <summary>Texts at least this long are counted per line chunk (see <see cref="CountText"/>).</summary>
    public const int ChunkedMinChars = 256;

    /// <summary>
    /// Tokens of <paramref name="text"/> (zero for empty). Texts of <see cref="ChunkedMinChars"/> or more are counted as
    /// the sum of their line chunks, cut where <see cref="TiktokenChunks.NextBoundary"/> proves a
    /// tiktoken pre-token boundary (so the sum is exact), and every chunk goes through <see cref="TokenCountCache"/>:
    /// a long text that differs from one seen before in a few lines (a new question under the same documents, a
    /// request id in a log, a slot and the JSON value inside it) only tokenizes the chunks that changed.
    /// </summary>
    public static int CountText(Tokenizer tokenizer, ReadOnlySpan<char> text)
    {
        if (text.Length < ChunkedMinChars)
        {
            return text.IsEmpty ? 0 : CountSegment(tokenizer, text);
        }

        var total = 0;
        var start = 0;
        while (start < text.Length)
        {
            var end = TiktokenChunks.NextBoundary(text, start);
            total += CountSegment(tokenizer, text[start..end]);
            start = end;
        }

        return total;
    }

    /// <summary>Counts a text whose whole-text cache entry just missed: short texts directly, long ones per chunk.</summary>
    private static int CountFresh(Tokenizer tokenizer, ReadOnlySpan<char> text) =>
        text.Length < ChunkedMinChars ? tokenizer.CountTokens(text) : CountText(tokenizer, text);

    private static int CountSegment(Tokenizer tokenizer, ReadOnlySpan<char> text)
    {
        if (TokenCountCache.TryGet(tokenizer, text, out var key, out var cached))
        {
            return cached;
        }

        var count = tokenizer.CountTokens(text);
        TokenCountCache.Add(key, count);
        return count;
    }

    /// <summary>
    /// Tokens of a scalar element exactly as <see cref="Count"/> counts the node parsed from it: a string's content,
    /// the JSON text of a number or boolean, zero for null. Objects and arrays are not scalars (the caller uses the tree).
    /// </summary>
    public static int CountScalar(Tokenizer tokenizer, JsonElement element) =>
        element.ValueKind == JsonValueKind.Null ? 0 : CountElement(tokenizer, element); // a JSON null parses to a null node

    private static int CountElement(Tokenizer tokenizer, JsonElement element)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element);
        if (element.ValueKind == JsonValueKind.String)
        {
            raw = raw[1..^1]; // strip the quotes
            if (raw.IndexOf((byte)'\\') >= 0)
            {
                if (TokenCountCache.TryGet(tokenizer, raw, TokenCountCache.SegmentKind.JsonEscaped, out var key, out var cached))
                {
                    return cached;
                }

                var count = CountEscaped(tokenizer, JsonMarshal.GetRawUtf8Value(element));
                TokenCountCache.Add(key, count);
                return count;
            }
        }

        return CountUtf8(tokenizer, raw);
    }

    /// <summary>Tokens of a chat role element, as <see cref="CountRole(Tokenizer, JsonNode?)"/> counts its node.</summary>
    public static int CountRole(Tokenizer tokenizer, JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.String && StandardRole(JsonMarshal.GetRawUtf8Value(element)[1..^1]) is var index and >= 0)
        {
            return _roleCounts.GetValue(tokenizer, static t => Array.ConvertAll(_roles, r => t.CountTokens(r)))[index];
        }

        return CountScalar(tokenizer, element);
    }

    private static int CountValue(Tokenizer tokenizer, JsonValue value)
    {
        if (value.TryGetValue<JsonElement>(out var element))
        {
            return CountElement(tokenizer, element);
        }

        if (value.TryGetValue<string>(out var s))
        {
            return CountText(tokenizer, s);
        }

        return CountJson(tokenizer, value);
    }

    /// <summary>Tokens of the content of a JSON string with escapes (<paramref name="quoted"/> includes the quotes), unescaped into a pooled buffer.</summary>
    private static int CountEscaped(Tokenizer tokenizer, ReadOnlySpan<byte> quoted)
    {
        var reader = new Utf8JsonReader(quoted);
        reader.Read();
        var chars = ArrayPool<char>.Shared.Rent(quoted.Length);
        try
        {
            var length = reader.CopyString(chars);
            return CountFresh(tokenizer, chars.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    private static int CountJson(Tokenizer tokenizer, JsonNode node)
    {
        var buffer = _scratch ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(buffer, _writerOptions))
        {
            node.WriteTo(writer);
        }

        var count = CountUtf8(tokenizer, buffer.WrittenSpan);
        if (buffer.Capacity > 1 << 20)
        {
            _scratch = null; // do not pin a huge buffer to the thread forever
        }

        return count;
    }

    private static int CountUtf8(Tokenizer tokenizer, ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return 0;
        }

        if (TokenCountCache.TryGet(tokenizer, utf8, TokenCountCache.SegmentKind.Utf8, out var key, out var cached))
        {
            return cached;
        }

        var chars = ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(utf8.Length));
        try
        {
            var n = Encoding.UTF8.GetChars(utf8, chars);
            var count = CountFresh(tokenizer, chars.AsSpan(0, n));
            TokenCountCache.Add(key, count);
            return count;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }
}
