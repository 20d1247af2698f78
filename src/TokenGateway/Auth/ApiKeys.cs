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
    public static string Hash(ReadOnlySpan<char> key)
    {
        var max = Encoding.UTF8.GetMaxByteCount(key.Length);
        byte[]? rented = null;
        var utf8 = max <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var n = Encoding.UTF8.GetBytes(key, utf8);
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(utf8[..n], digest);
            return Convert.ToHexStringLower(digest);
        }
        finally
        {
            if (rented is not null)
            {
                CryptographicOperations.ZeroMemory(rented);
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
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            key = authorization[7..].Trim();
            return key.Length > 0;
        }

        key = request.Headers["x-api-key"].ToString().Trim();
        if (key.Length == 0)
        {
            key = request.Headers["api-key"].ToString().Trim();
        }

        return key.Length > 0;
    }

    /// <summary>Constant-time comparison of two hex digests.</summary>
    public static bool DigestEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));
}
