namespace TokenGateway.Auth;

/// <summary>
/// The gateway's estimate of an admin key's strength, checked at start. Estimate = length × log2(pool), where the pool
/// is the sum of the sizes of the character classes the key uses: lower-case letters 26, upper-case letters 26,
/// digits 10, other printable ASCII (punctuation and space) 33, anything outside ASCII 100. It is an upper bound — it
/// assumes every character was drawn at random from the pool — so a key must also use at least
/// <see cref="MinimumDistinctCharacters"/> different characters (which rules out <c>aaaa…</c> and short repeats).
/// A key from <c>openssl rand -base64 32</c> scores about 289 bits; <c>openssl rand -hex 32</c> about 331.
/// </summary>
internal static class AdminKeyStrength
{
    /// <summary>Keys scoring below this are refused at start.</summary>
    public const double MinimumBits = 128;

    /// <summary>Keys with fewer different characters are refused whatever their length.</summary>
    public const int MinimumDistinctCharacters = 8;

    /// <summary>length × log2(pool of the character classes used).</summary>
    public static double EstimateBits(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        bool lower = false, upper = false, digit = false, symbol = false, other = false;
        foreach (var c in key)
        {
            if (c is >= 'a' and <= 'z') { lower = true; }
            else if (c is >= 'A' and <= 'Z') { upper = true; }
            else if (c is >= '0' and <= '9') { digit = true; }
            else if (c is >= ' ' and <= '~') { symbol = true; }
            else { other = true; }
        }

        var pool = (lower ? 26 : 0) + (upper ? 26 : 0) + (digit ? 10 : 0) + (symbol ? 33 : 0) + (other ? 100 : 0);
        return pool <= 1 ? 0 : key.Length * Math.Log2(pool);
    }

    /// <summary>Null when the key is strong enough, else why not (without the key).</summary>
    public static string? Weakness(string key)
    {
        var bits = EstimateBits(key);
        if (bits < MinimumBits)
        {
            return $"it scores about {Math.Floor(bits):0} bits (length {key.Length} × log2 of the character classes used); at least {MinimumBits:0} are required";
        }

        var distinct = key.Distinct().Count();
        return distinct < MinimumDistinctCharacters
            ? $"it uses only {distinct} different characters; at least {MinimumDistinctCharacters} are required"
            : null;
    }
}
