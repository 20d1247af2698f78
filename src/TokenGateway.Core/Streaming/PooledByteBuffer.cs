using System.Buffers;

namespace TokenGateway.Core.Streaming;

/// <summary>
/// A growable byte buffer on <see cref="ArrayPool{T}.Shared"/>: the one held-bytes store of the stream path (the
/// framer's incomplete event and joined data, the meter's delivered text, the translator's raw-string scratch).
/// </summary>
/// <remarks>
/// A mutable struct held in a field (never copied, never <c>readonly</c>): it adds no allocation of its own. Grows to
/// at least 256 bytes and doubles; <see cref="Dispose"/> returns the array and leaves it empty and reusable. Not
/// thread-safe.
/// </remarks>
internal struct PooledByteBuffer : IDisposable
{
    private const int MinimumRent = 256;

    private byte[]? _array;

    /// <summary>Bytes written so far.</summary>
    public int Length { get; private set; }

    /// <summary>The bytes written so far; valid until the next write or <see cref="Dispose"/>.</summary>
    public readonly Span<byte> Written => _array is null ? default : _array.AsSpan(0, Length);

    /// <summary>Appends <paramref name="bytes"/>.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Length += bytes.Length;
    }

    /// <summary>Free space of at least <paramref name="sizeHint"/> bytes after what is written; commit with <see cref="Advance"/>.</summary>
    public Span<byte> GetSpan(int sizeHint)
    {
        var required = Length + sizeHint;
        var capacity = _array?.Length ?? 0;
        if (required > capacity)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(required, Math.Max(MinimumRent, capacity * 2)));
            if (_array is not null)
            {
                _array.AsSpan(0, Length).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(_array);
            }

            _array = grown;
        }

        return _array.AsSpan(Length);
    }

    /// <summary>Commits <paramref name="count"/> bytes written into the span from <see cref="GetSpan"/>.</summary>
    public void Advance(int count) => Length += count;

    /// <summary>Drops everything after the first <paramref name="length"/> bytes (0: empty); keeps the array.</summary>
    public void Truncate(int length) => Length = length;

    /// <summary>Returns the array to the pool; the buffer is empty afterwards.</summary>
    public void Dispose()
    {
        if (_array is not null)
        {
            ArrayPool<byte>.Shared.Return(_array);
            _array = null;
        }

        Length = 0;
    }
}
