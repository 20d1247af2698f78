using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace TokenGateway.Core.Optimization;

/// <summary>Stages a <see cref="NoOpScan"/> proved unable to change a request.</summary>
[Flags]
internal enum ProvenNoOps
{
    None = 0,

    /// <summary><see cref="Stages.CompactStage"/> leaves every slot and every tool description as it is.</summary>
    Compact = 1,

    /// <summary><see cref="Stages.DedupeStage"/> finds no block repeated across slots.</summary>
    Dedupe = 2,
}

/// <summary>
/// A conservative pre-check over the parsed document of an untouched request (raw UTF-8 string values, no strings,
/// no nodes): proves, for the compact and dedupe stages, that the stage cannot change the request, so the pipeline
/// need not materialize the body as a tree and read every text as UTF-16 only to find nothing to do.
/// </summary>
/// <remarks>
/// <para>Every string value of the body outside the top-level <c>tools</c> is checked (a superset of the slots
/// <see cref="RequestText.Slots"/> yields); under <c>tools</c>, every <c>description</c> (a superset of what the
/// compact stage tidies). Any value the scan cannot decide exactly — a <c>\u</c> escape, an escaped <c>/</c>
/// (dedupe only), invalid UTF-8, a possible code fence, too many long blocks — makes the verdict "may change" and the
/// stage runs as before.</para>
/// <para>Compact cannot change a text (<see cref="Stages.TextCompactor.Compact"/> returns it as is) when it holds no
/// <c>{</c> or <c>[</c> (no JSON to minify or encode as TOON), no run of three backticks or tildes (no fence), no
/// space, tab or CR before a line feed or at the end (no trailing whitespace) and no three line feeds in a row (no run
/// of blank lines). A tool description is tidied with the same whitespace rules plus a trim of both ends, so it must
/// also start and end with a character that is not whitespace (a non-ASCII edge counts as possible whitespace).</para>
/// <para>Dedupe replaces a block (text between runs of two or more line feeds, trimmed) only when the same block of
/// at least <see cref="DedupeOptions.MinTokens"/> characters occurs in an earlier slot. Without <c>\u</c> and
/// <c>\/</c> escapes a string has exactly one JSON encoding, so equal blocks have equal raw bytes; blocks whose raw
/// length reaches the minimum (the raw form is never shorter than the UTF-16 text) are hashed, and any hash seen in
/// another string value makes the verdict "may change" (a collision only costs the fast path).</para>
/// </remarks>
internal static class NoOpScan
{
    private const int MaxBlocks = 64;

    /// <summary>The bytes the per-character decoder must see; every other byte is an ordinary character (or part of one).</summary>
    private static readonly System.Buffers.SearchValues<byte> _special = System.Buffers.SearchValues.Create("\\{[`~"u8);

    public static ProvenNoOps Scan(JsonElement root, int dedupeMinTokens)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ProvenNoOps.None;
        }

        var state = new State(dedupeMinTokens);
        Span<ulong> hashes = stackalloc ulong[MaxBlocks];
        Span<int> owners = stackalloc int[MaxBlocks];
        foreach (var property in root.EnumerateObject())
        {
            if (property.NameEquals("tools"u8))
            {
                Descriptions(property.Value, ref state);
            }
            else
            {
                Texts(property.Value, ref state, hashes, owners);
            }

            if (!state.Compact && !state.Dedupe)
            {
                return ProvenNoOps.None;
            }
        }

        return (state.Compact ? ProvenNoOps.Compact : ProvenNoOps.None) | (state.Dedupe ? ProvenNoOps.Dedupe : ProvenNoOps.None);
    }

    private static void Texts(JsonElement element, ref State state, Span<ulong> hashes, Span<int> owners)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Texts(property.Value, ref state, hashes, owners);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Texts(item, ref state, hashes, owners);
                }

                break;
            case JsonValueKind.String:
                Text(Raw(element), ref state, hashes, owners);
                break;
        }
    }

    private static void Descriptions(JsonElement element, ref State state)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Value.ValueKind == JsonValueKind.String)
                    {
                        if (property.NameEquals("description"u8) && !DescriptionUnchanged(Raw(property.Value)))
                        {
                            state.Compact = false;
                        }
                    }
                    else
                    {
                        Descriptions(property.Value, ref state);
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Descriptions(item, ref state);
                }

                break;
        }
    }

    /// <summary>The raw bytes of a string value between its quotes, escapes as sent.</summary>
    private static ReadOnlySpan<byte> Raw(JsonElement value)
    {
        var raw = JsonMarshal.GetRawUtf8Value(value);
        return raw.Length >= 2 && raw[0] == (byte)'"' ? raw[1..^1] : raw;
    }

    /// <summary>Decodes the next character class of a raw string: an ASCII character, or 0x80 for any byte of a non-ASCII one.</summary>
    private static bool Next(ReadOnlySpan<byte> raw, ref int i, out byte c, out bool slashEscape)
    {
        slashEscape = false;
        var b = raw[i];
        if (b != (byte)'\\')
        {
            c = b >= 0x80 ? (byte)0x80 : b;
            i++;
            return true;
        }

        c = (i + 1 < raw.Length ? raw[i + 1] : (byte)0) switch
        {
            (byte)'n' => (byte)'\n',
            (byte)'r' => (byte)'\r',
            (byte)'t' => (byte)'\t',
            (byte)'f' => (byte)'\f',
            (byte)'b' => (byte)'\b',
            (byte)'"' => (byte)'"',
            (byte)'\\' => (byte)'\\',
            (byte)'/' => (byte)'/',
            _ => 0, // \u escape: undecidable here
        };
        slashEscape = c == (byte)'/';
        i += 2;
        return c != 0;
    }

    private static void Text(ReadOnlySpan<byte> raw, ref State state, Span<ulong> hashes, Span<int> owners)
    {
        var owner = state.Strings++;
        if (raw.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0 && !Utf8.IsValid(raw))
        {
            state.Compact = state.Dedupe = false; // the stages fail on it as before
            return;
        }

        var compact = state.Compact;
        var dedupe = state.Dedupe;
        byte prev = 0;
        var newlines = 0;
        var fenceRun = 0;
        var keyStart = -1;         // raw index of the first non-whitespace character of the current block
        var keyEnd = 0;            // raw index after its last non-whitespace character
        var keyFirstAscii = true;  // the block's first non-whitespace character is ASCII
        var keyLastAscii = true;   // and its last one
        var i = 0;
        while (i < raw.Length && (compact || dedupe))
        {
            // A run of ordinary characters (no escape, brace, bracket, backtick or tilde; so no line feed either):
            // it ends a run of line feeds, resets a backtick run, and its first and last non-space bytes bound the block.
            var ordinary = raw[i..].IndexOfAny(_special);
            if (ordinary != 0)
            {
                var run = raw.Slice(i, ordinary < 0 ? raw.Length - i : ordinary);
                if (newlines >= 2)
                {
                    dedupe &= Block(raw, keyStart, keyEnd, keyFirstAscii && keyLastAscii, owner, ref state, hashes, owners);
                    keyStart = -1;
                }

                newlines = 0;
                fenceRun = 0;
                var first = run.IndexOfAnyExcept((byte)' ');
                if (first >= 0)
                {
                    var last = run.LastIndexOfAnyExcept((byte)' ');
                    if (keyStart < 0)
                    {
                        keyStart = i + first;
                        keyFirstAscii = run[first] < 0x80;
                    }

                    keyEnd = i + last + 1;
                    keyLastAscii = run[last] < 0x80;
                }

                prev = run[^1] >= 0x80 ? (byte)0x80 : run[^1];
                i += run.Length;
                continue;
            }

            var at = i;
            if (!Next(raw, ref i, out var c, out var slash))
            {
                compact = dedupe = false;
                break;
            }

            dedupe &= !slash;
            if (c is (byte)'{' or (byte)'[')
            {
                compact = false;
            }

            fenceRun = c is (byte)'`' or (byte)'~' ? (c == prev ? fenceRun + 1 : 1) : 0;
            if (fenceRun >= 3)
            {
                compact = dedupe = false; // a possible fence: fenced blocks split differently
            }

            if (c == (byte)'\n')
            {
                if (prev is (byte)' ' or (byte)'\t' or (byte)'\r')
                {
                    compact = false;
                }

                if (++newlines >= 3)
                {
                    compact = false;
                }
            }
            else
            {
                if (newlines >= 2)
                {
                    dedupe &= Block(raw, keyStart, keyEnd, keyFirstAscii && keyLastAscii, owner, ref state, hashes, owners);
                    keyStart = -1;
                }

                newlines = 0;
                if (c is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\f'))
                {
                    if (keyStart < 0)
                    {
                        keyStart = at;
                        keyFirstAscii = c != 0x80;
                    }

                    keyEnd = i;
                    keyLastAscii = c != 0x80; // a non-ASCII edge might be Unicode whitespace that a trim removes
                }
            }

            prev = c;
        }

        if (compact && prev is (byte)' ' or (byte)'\t' or (byte)'\r')
        {
            compact = false; // trailing whitespace at the end of the text
        }

        if (dedupe)
        {
            dedupe = Block(raw, keyStart, keyEnd, keyFirstAscii && keyLastAscii, owner, ref state, hashes, owners);
        }

        state.Compact = compact;
        state.Dedupe = dedupe;
    }

    /// <summary>Records one trimmed block; false when it might repeat a block of another string or cannot be decided.</summary>
    private static bool Block(ReadOnlySpan<byte> raw, int start, int end, bool edgeAscii, int owner, ref State state, Span<ulong> hashes, Span<int> owners)
    {
        if (start < 0 || end - start < state.MinTokens)
        {
            return true; // empty, or shorter than any block dedupe replaces
        }

        if (!edgeAscii)
        {
            return false;
        }

        var hash = XxHash3.HashToUInt64(raw[start..end]);
        for (var k = 0; k < state.Blocks; k++)
        {
            if (hashes[k] == hash)
            {
                return owners[k] == owner;
            }
        }

        if (state.Blocks == MaxBlocks)
        {
            return false;
        }

        hashes[state.Blocks] = hash;
        owners[state.Blocks] = owner;
        state.Blocks++;
        return true;
    }

    /// <summary>True when <c>NormalizeWhitespace(d).Trim()</c> is <c>d</c>.</summary>
    private static bool DescriptionUnchanged(ReadOnlySpan<byte> raw)
    {
        if (raw.IsEmpty)
        {
            return true;
        }

        if (raw.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0 && !Utf8.IsValid(raw))
        {
            return false;
        }

        byte prev = 0;
        var newlines = 0;
        var first = true;
        var i = 0;
        while (i < raw.Length)
        {
            if (!Next(raw, ref i, out var c, out _))
            {
                return false;
            }

            if (first && (IsAsciiWhiteSpace(c) || c == 0x80))
            {
                return false;
            }

            first = false;
            if (c == (byte)'\n')
            {
                if (prev is (byte)' ' or (byte)'\t' or (byte)'\r' || ++newlines >= 3)
                {
                    return false;
                }
            }
            else
            {
                newlines = 0;
            }

            prev = c;
        }

        return !IsAsciiWhiteSpace(prev) && prev != 0x80;
    }

    private static bool IsAsciiWhiteSpace(byte c) => c is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f';

    private struct State(int minTokens)
    {
        public bool Compact = true;
        public bool Dedupe = true;
        public int Strings;
        public int Blocks;
        public readonly int MinTokens = minTokens;
    }
}
