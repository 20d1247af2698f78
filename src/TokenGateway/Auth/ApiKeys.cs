using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace TokenGateway.Auth;

/// <summary>Generates and hashes gateway keys. Keys are never stored or logged; only their SHA-256 digest is.</summary>
internal static class ApiKeys
{
    public const string Prefix = "tg-";
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>A new random key: <c>tg-</c> + 43 base62 characters (≈256 bits).</summary>
    public static string Generate() => Prefix + RandomNumberGenerator.GetString(Alphabet, 43);

    /// <summary>Lower-case hex SHA-256 of the key. High-entropy random keys need no salt or stretching.</summary>
    /// <remarks>The whole key is hashed, however long: two keys that differ anywhere have different digests.</remarks>
    public static string Hash(ReadOnlySpan<char> key) => Digest(key).ToHex();

    /// <summary>The SHA-256 of the key as a value (no string): the authenticator's cache key.</summary>
    public static KeyDigest Digest(ReadOnlySpan<char> key)
    {
        var max = Encoding.UTF8.GetMaxByteCount(key.Length);
        byte[]? rented = null;
        var utf8 = max <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var n = Encoding.UTF8.GetBytes(key, utf8);
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(utf8[..n], digest);
            CryptographicOperations.ZeroMemory(utf8[..n]);
            return KeyDigest.From(digest);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// The part of a key safe to display and store (<c>tg-AbCd</c>): seven characters, so no eight-character piece of
    /// a key is ever persisted (the secret-redaction test scans for any).
    /// </summary>
    public static string DisplayPrefix(string key) => key[..Math.Min(key.Length, 7)];

    /// <summary>Extracts the presented key from <c>Authorization: Bearer</c>, <c>x-api-key</c> or <c>api-key</c>.</summary>
    public static bool TryRead(HttpRequest request, out string key)
    {
        var found = TryReadSpan(request, out var span);
        key = found ? span.ToString() : "";
        return found;
    }

    /// <summary>
    /// <see cref="TryRead(HttpRequest, out string)"/> without a copy: the key as a slice of the header's value (the hot
    /// path hashes it straight from there).
    /// </summary>
    public static bool TryReadSpan(HttpRequest request, out ReadOnlySpan<char> key)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            key = authorization.AsSpan(7).Trim();
            return key.Length > 0;
        }

        key = request.Headers["x-api-key"].ToString().AsSpan().Trim();
        if (key.Length == 0)
        {
            key = request.Headers["api-key"].ToString().AsSpan().Trim();
        }

        return key.Length > 0;
    }

    /// <summary>Constant-time comparison of two hex digests.</summary>
    public static bool DigestEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));
}

/// <summary>A SHA-256 digest held as four words: equality and hashing without a hex string.</summary>
internal readonly record struct KeyDigest(ulong A, ulong B, ulong C, ulong D)
{
    public static KeyDigest From(ReadOnlySpan<byte> digest) => new(
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest),
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest[8..]),
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest[16..]),
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest[24..]));

    /// <summary>Lower-case hex, as stored (<see cref="ApiKeys.Hash"/>).</summary>
    public string ToHex()
    {
        Span<byte> bytes = stackalloc byte[32];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes, A);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], B);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[16..], C);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[24..], D);
        return Convert.ToHexStringLower(bytes);
    }

    // The words are uniformly random: any one of them is a good hash code.
    public override int GetHashCode() => (int)A ^ (int)(A >> 32);
}
