using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using TokenGateway.Core.Optimization.Toon;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Lossless text rewrites: whitespace outside code fences, JSON minification, and TOON for JSON that TOON encodes in
/// fewer tokens. Every choice is made by counting tokens, and every output is a fixed point (compacting it again
/// changes nothing).
/// </summary>
internal sealed class TextCompactor(CompactOptions options, Func<string, int> count, string? encoding = null)
{
    /// <summary>The one-line primer that tells the model how to read a TOON block.</summary>
    public const string ToonPrimer = "TOON data ([N] = item count, {fields} = row columns):";

    private static readonly JsonWriterOptions _writerOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public string Compact(string text)
    {
        if (options.Json && TryWholeJson(text, out var whole))
        {
            return whole;
        }

        var sb = new StringBuilder(text.Length);
        foreach (var (segment, isFence) in SplitFences(text))
        {
            if (isFence)
            {
                sb.Append(options.Json ? CompactJsonFence(segment) : segment);
            }
            else
            {
                var prose = options.Json ? CompactEmbeddedJson(segment) : segment;
                sb.Append(options.Whitespace ? NormalizeWhitespace(prose) : prose);
            }
        }

        return sb.ToString();
    }

    /// <summary>Trailing whitespace removed and runs of blank lines collapsed to one; indentation untouched.</summary>
    public static string NormalizeWhitespace(string text)
    {
        var lines = text.Split('\n');
        var sb = new StringBuilder(text.Length);
        var blank = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd(' ', '\t', '\r');
            if (line.Length == 0 && i > 0 && i < lines.Length - 1)
            {
                if (++blank > 1)
                {
                    continue;
                }
            }
            else
            {
                blank = 0;
            }

            if (i > 0)
            {
                sb.Append('\n');
            }

            sb.Append(line);
        }

        return sb.ToString();
    }

    /// <summary>Splits text into prose and fenced code blocks (``` or ~~~ fences, closing fence included).</summary>
    internal static List<(string Segment, bool IsFence)> SplitFences(string text)
    {
        var result = new List<(string, bool)>();
        var start = 0;
        var pos = 0;
        string? fence = null;
        var fenceStart = 0;
        while (pos <= text.Length)
        {
            var end = text.IndexOf('\n', pos);
            var lineEnd = end < 0 ? text.Length : end;
            var trimmed = text.AsSpan(pos, lineEnd - pos).TrimStart(' ');
            if (fence is null)
            {
                if (trimmed.StartsWith("```") || trimmed.StartsWith("~~~"))
                {
                    fence = trimmed[..3].ToString();
                    if (pos > start)
                    {
                        result.Add((text[start..pos], false));
                    }

                    fenceStart = pos;
                }
            }
            else if (trimmed.TrimEnd(" \r").SequenceEqual(fence) || (trimmed.StartsWith(fence) && trimmed[3..].TrimEnd(" \r`~").IsEmpty))
            {
                var close = end < 0 ? text.Length : end + 1;
                result.Add((text[fenceStart..close], true));
                start = close;
                fence = null;
            }

            if (end < 0)
            {
                break;
            }

            pos = end + 1;
        }

        if (fence is not null)
        {
            result.Add((text[fenceStart..], true)); // unterminated fence: code to the end, never touched
        }
        else if (start < text.Length)
        {
            result.Add((text[start..], false));
        }

        return result;
    }

    private bool TryWholeJson(string text, out string result)
    {
        result = text;
        var trimmed = text.AsSpan().Trim();
        if (trimmed.Length < options.MinJsonChars || !(trimmed[0] is '{' or '[') || !(trimmed[^1] is '}' or ']'))
        {
            return false;
        }

        using var document = TryParse(trimmed.ToString());
        if (document is null)
        {
            return false;
        }

        result = Best(document.RootElement, fenced: true, original: text);
        return true;
    }

    private string CompactJsonFence(string fence)
    {
        var firstNewline = fence.IndexOf('\n');
        if (firstNewline < 0)
        {
            return fence;
        }

        var info = fence[..firstNewline].Trim().TrimStart('`', '~').Trim();
        if (!info.Equals("json", StringComparison.OrdinalIgnoreCase))
        {
            return fence;
        }

        var closing = fence.TrimEnd('\n', '\r', ' ').LastIndexOf('\n');
        if (closing <= firstNewline)
        {
            return fence;
        }

        var body = fence[(firstNewline + 1)..closing];
        using var document = body.Length >= options.MinJsonChars ? TryParse(body) : null;
        if (document is null)
        {
            return fence;
        }

        var trailing = fence.EndsWith('\n') ? "\n" : string.Empty;
        var minified = Minify(document.RootElement);
        var jsonFence = "```json\n" + minified + "\n```" + trailing;
        var toon = ToonCandidate(document.RootElement, minified);
        var candidate = toon is null ? jsonFence : toon + trailing;
        return count(candidate) < count(fence) ? candidate : fence;
    }

    /// <summary>Rewrites JSON values that start a line in prose (as apps paste records into prompts).</summary>
    private string CompactEmbeddedJson(string prose)
    {
        if (prose.Length < options.MinJsonChars || (prose.IndexOf('{') < 0 && prose.IndexOf('[') < 0))
        {
            return prose;
        }

        var sb = new StringBuilder(prose.Length);
        var pos = 0;
        var copied = 0;
        while (pos < prose.Length)
        {
            var lineEnd = prose.IndexOf('\n', pos);
            if (lineEnd < 0)
            {
                lineEnd = prose.Length;
            }

            var indent = pos;
            while (indent < lineEnd && prose[indent] is ' ' or '\t')
            {
                indent++;
            }

            if (indent < lineEnd && prose[indent] is '{' or '[' && TryReadJson(prose, indent, out var length))
            {
                var valueEnd = indent + length;
                var restOfLine = prose.IndexOf('\n', valueEnd);
                var tail = prose.AsSpan(valueEnd, (restOfLine < 0 ? prose.Length : restOfLine) - valueEnd);
                if (tail.Trim().IsEmpty && length >= options.MinJsonChars)
                {
                    var original = prose[indent..valueEnd];
                    var replacement = encoding is null
                        ? BestOfBlock(original)
                        : CompactionCache.GetOrAdd(CompactionCache.Kind.EmbeddedJson, options, encoding, original, BestOfBlock);
                    sb.Append(prose, copied, indent - copied).Append(replacement);
                    copied = valueEnd;
                    pos = valueEnd;
                    continue;
                }
            }

            pos = lineEnd + 1;
        }

        if (copied == 0)
        {
            return prose;
        }

        sb.Append(prose, copied, prose.Length - copied);
        return sb.ToString();
    }

    /// <summary>The best form of a JSON value that starts a line in prose (the same value in another message gives the same answer).</summary>
    private string BestOfBlock(string original)
    {
        using var document = JsonDocument.Parse(original);
        return Best(document.RootElement, fenced: true, original: original);
    }

    /// <summary>The smallest of {original, minified JSON, TOON block} by token count.</summary>
    private string Best(JsonElement value, bool fenced, string original)
    {
        var minified = Minify(value);
        var best = original;
        var bestTokens = count(original);
        var minifiedTokens = count(minified);
        if (minifiedTokens < bestTokens || (minifiedTokens == bestTokens && minified.Length < best.Length))
        {
            best = minified;
            bestTokens = minifiedTokens;
        }

        if (fenced && ToonCandidate(value, minified) is { } toon && count(toon) < bestTokens)
        {
            best = toon;
        }

        return best;
    }

    /// <summary>The TOON block when it beats minified JSON by the policy's minimum gain and decodes back losslessly.</summary>
    private string? ToonCandidate(JsonElement value, string minified)
    {
        if (!options.Toon || value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array))
        {
            return null;
        }

        string toon;
        try
        {
            toon = ToonEncoder.Encode(value);
            if (!JsonSemantics.AreEquivalent(value, ToonDecoder.Decode(toon)))
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            return null;
        }

        var block = ToonPrimer + "\n```toon\n" + toon + "\n```";
        var threshold = count(minified) * (100 - options.ToonMinGainPercent) / 100.0;
        return count(block) <= threshold ? block : null;
    }

    internal static string Minify(JsonElement value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, _writerOptions))
        {
            value.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static JsonDocument? TryParse(string text)
    {
        try
        {
            return JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads one complete JSON value starting at <paramref name="start"/>; its length in chars.</summary>
    private static bool TryReadJson(string text, int start, out int length)
    {
        length = 0;
        var bytes = Encoding.UTF8.GetBytes(text[start..]);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            if (!reader.Read() || !reader.TrySkip())
            {
                return false;
            }
        }
        catch (JsonException)
        {
            return false;
        }

        length = Encoding.UTF8.GetCharCount(bytes.AsSpan(0, (int)reader.BytesConsumed));
        return true;
    }
}
