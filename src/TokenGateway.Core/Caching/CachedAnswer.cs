using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Caching;

/// <summary>
/// One stored answer: the complete non-streaming response JSON of its dialect (a streamed answer is accumulated into
/// it), the usage it was billed for, the model that produced it and when it was stored.
/// </summary>
/// <remarks>
/// One representation per dialect serves both transports: a non-streamed hit gets the JSON (with a fresh id), a streamed
/// hit gets the same answer replayed as the dialect's SSE events. The binary layout is versioned
/// (<see cref="Serialize"/>); an entry of another version reads as absent.
/// </remarks>
public sealed class CachedAnswer
{
    private const byte FormatVersion = 1;

    /// <summary>Creates an answer.</summary>
    public CachedAnswer(LlmDialect dialect, string model, ReadOnlyMemory<byte> body, TokenUsage usage, DateTimeOffset storedAt)
    {
        ArgumentNullException.ThrowIfNull(model);
        Dialect = dialect;
        Model = model;
        Body = body;
        Usage = usage;
        StoredAt = storedAt;
    }

    /// <summary>The dialect of <see cref="Body"/>.</summary>
    public LlmDialect Dialect { get; }

    /// <summary>The catalogue model that produced the answer.</summary>
    public string Model { get; }

    /// <summary>The complete response JSON (UTF-8).</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>The usage the original answer was billed for (what a hit would have cost).</summary>
    public TokenUsage Usage { get; }

    /// <summary>When the answer was stored.</summary>
    public DateTimeOffset StoredAt { get; }

    /// <summary>Writes the versioned binary form.</summary>
    public void Serialize(IBufferWriter<byte> target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var model = Encoding.UTF8.GetBytes(Model);
        var length = 1 + 1 + 8 + (6 * 4) + 4 + model.Length + 4 + Body.Length;
        var span = target.GetSpan(length);
        span[0] = FormatVersion;
        span[1] = (byte)Dialect;
        BinaryPrimitives.WriteInt64LittleEndian(span[2..], StoredAt.ToUnixTimeMilliseconds());
        var at = 10;
        foreach (var value in (ReadOnlySpan<int>)[Usage.InputTokens, Usage.OutputTokens, Usage.CachedInputTokens, Usage.CacheWriteTokens, Usage.CacheWrite1hTokens, Usage.ReasoningTokens])
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], value);
            at += 4;
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[at..], model.Length);
        at += 4;
        model.CopyTo(span[at..]);
        at += model.Length;
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], Body.Length);
        at += 4;
        Body.Span.CopyTo(span[at..]);
        target.Advance(length);
    }

    /// <summary>Reads the binary form; null when it is of another version or damaged.</summary>
    public static CachedAnswer? Deserialize(ReadOnlySequence<byte> source)
    {
        var bytes = source.IsSingleSegment ? source.FirstSpan : source.ToArray();
        if (bytes.Length < 42 || bytes[0] != FormatVersion || bytes[1] > (byte)LlmDialect.AnthropicCountTokens)
        {
            return null;
        }

        var stored = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64LittleEndian(bytes[2..]));
        Span<int> u = stackalloc int[6];
        var at = 10;
        for (var i = 0; i < 6; i++, at += 4)
        {
            u[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[at..]);
        }

        var modelLength = BinaryPrimitives.ReadInt32LittleEndian(bytes[at..]);
        at += 4;
        if (modelLength < 0 || at + modelLength + 4 > bytes.Length)
        {
            return null;
        }

        var model = Encoding.UTF8.GetString(bytes.Slice(at, modelLength));
        at += modelLength;
        var bodyLength = BinaryPrimitives.ReadInt32LittleEndian(bytes[at..]);
        at += 4;
        if (bodyLength < 0 || at + bodyLength != bytes.Length)
        {
            return null;
        }

        return new CachedAnswer((LlmDialect)bytes[1], model, bytes.Slice(at, bodyLength).ToArray(),
            new TokenUsage(u[0], u[1], u[2], u[3], u[4], u[5]), stored);
    }
}
