using System.Security.Cryptography;

namespace TokenGateway.Storage.Sqlite;

/// <summary>
/// Makes ids like <c>team_01JD7Y4W5ZQ8M3K2N6P9R0S1T4</c>: a prefix plus 26 Crockford base32 characters (48-bit
/// millisecond time + 80 random bits, the ULID layout), so ids sort by creation time and paging by id lists oldest first.
/// </summary>
internal static class StorageIds
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string New(string prefix, DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)Math.Max(0, now.ToUnixTimeMilliseconds());
        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)(ms & 0xFF);
            ms >>= 8;
        }

        RandomNumberGenerator.Fill(bytes[6..]);

        // 128 bits → 26 characters of 5 bits (the first carries only 3).
        var hi = ((ulong)bytes[0] << 56) | ((ulong)bytes[1] << 48) | ((ulong)bytes[2] << 40) | ((ulong)bytes[3] << 32)
            | ((ulong)bytes[4] << 24) | ((ulong)bytes[5] << 16) | ((ulong)bytes[6] << 8) | bytes[7];
        var lo = ((ulong)bytes[8] << 56) | ((ulong)bytes[9] << 48) | ((ulong)bytes[10] << 40) | ((ulong)bytes[11] << 32)
            | ((ulong)bytes[12] << 24) | ((ulong)bytes[13] << 16) | ((ulong)bytes[14] << 8) | bytes[15];

        return string.Create(prefix.Length + 26, (prefix, hi, lo), static (span, state) =>
        {
            state.prefix.AsSpan().CopyTo(span);
            var chars = span[state.prefix.Length..];
            var (h, l) = (state.hi, state.lo);
            for (var i = 25; i >= 0; i--)
            {
                chars[i] = Alphabet[(int)(l & 0x1F)];
                l = (l >> 5) | ((h & 0x1F) << 59);
                h >>= 5;
            }
        });
    }
}
