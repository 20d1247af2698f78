namespace TokenGateway.Simulator.Generation;

/// <summary>A tiny deterministic PRNG (SplitMix64): same seed, same sequence, on every runtime.</summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [min, max).</summary>
    public int Next(int min, int max) => min + (int)(Next() % (ulong)(max - min));

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
}

/// <summary>FNV-1a 64-bit hashing, used for request seeds and prompt-prefix keys (stable across processes).</summary>
internal static class Fnv
{
    public const ulong Offset = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong Hash(ReadOnlySpan<byte> data, ulong hash = Offset)
    {
        foreach (var b in data)
        {
            hash = (hash ^ b) * Prime;
        }

        return hash;
    }

    public static ulong Hash(ReadOnlySpan<char> data, ulong hash = Offset)
    {
        foreach (var c in data)
        {
            hash = (hash ^ c) * Prime;
            hash = (hash ^ (uint)(c >> 8)) * Prime;
        }

        return hash;
    }

    public static ulong Mix(ulong hash, long value)
    {
        var v = (ulong)value;
        for (var i = 0; i < 8; i++)
        {
            hash = (hash ^ (v & 0xFF)) * Prime;
            v >>= 8;
        }

        return hash;
    }
}
