using System.Globalization;

namespace TokenGateway.Core.Resilience;

/// <summary>What a provider's rate-limit headers said about one key: remaining requests/tokens and when they reset.</summary>
/// <param name="RemainingRequests">Requests left in the window, if sent.</param>
/// <param name="RemainingTokens">Tokens left in the window, if sent.</param>
/// <param name="RequestsResetAt">When the request window resets, if sent.</param>
/// <param name="TokensResetAt">When the token window resets, if sent.</param>
public readonly record struct RateLimitSnapshot(
    long? RemainingRequests = null,
    long? RemainingTokens = null,
    DateTimeOffset? RequestsResetAt = null,
    DateTimeOffset? TokensResetAt = null)
{
    /// <summary>True when no header was found.</summary>
    public bool IsEmpty => RemainingRequests is null && RemainingTokens is null && RequestsResetAt is null && TokensResetAt is null;

    /// <summary>
    /// Reads OpenAI (<c>x-ratelimit-remaining-requests|tokens</c>, <c>x-ratelimit-reset-requests|tokens</c> as
    /// <c>1m2.5s</c>/<c>20ms</c>) and Anthropic (<c>anthropic-ratelimit-requests|tokens-remaining|reset</c> as RFC 3339)
    /// headers through <paramref name="header"/>, which returns a header's first value or null.
    /// </summary>
    public static RateLimitSnapshot Parse<TState>(TState state, Func<TState, string, string?> header, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(header);
        var remainingRequests = ParseCount(header(state, "x-ratelimit-remaining-requests")) ?? ParseCount(header(state, "anthropic-ratelimit-requests-remaining"));
        var remainingTokens = ParseCount(header(state, "x-ratelimit-remaining-tokens")) ?? ParseCount(header(state, "anthropic-ratelimit-tokens-remaining"));
        var requestsReset = ParseReset(header(state, "x-ratelimit-reset-requests"), now) ?? ParseReset(header(state, "anthropic-ratelimit-requests-reset"), now);
        var tokensReset = ParseReset(header(state, "x-ratelimit-reset-tokens"), now) ?? ParseReset(header(state, "anthropic-ratelimit-tokens-reset"), now);
        return new RateLimitSnapshot(remainingRequests, remainingTokens, requestsReset, tokensReset);
    }

    /// <summary>
    /// When the key is next usable if a window is spent (remaining 0) — the later of the spent windows' resets —
    /// or null when nothing is known to be spent.
    /// </summary>
    public DateTimeOffset? ExhaustedUntil()
    {
        DateTimeOffset? until = null;
        if (RemainingRequests == 0 && RequestsResetAt is { } r)
        {
            until = r;
        }

        if (RemainingTokens == 0 && TokensResetAt is { } t && (until is null || t > until))
        {
            until = t;
        }

        return until;
    }

    /// <summary>The latest reset among the windows the headers named, or null.</summary>
    public DateTimeOffset? LatestReset() => (RequestsResetAt, TokensResetAt) switch
    {
        ({ } a, { } b) => a > b ? a : b,
        ({ } a, null) => a,
        (null, { } b) => b,
        _ => null,
    };

    private static long? ParseCount(string? value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0 ? n : null;

    /// <summary>Parses a reset: RFC 3339 (Anthropic) or an OpenAI duration such as <c>6m0s</c>, <c>12.5s</c>, <c>20ms</c>.</summary>
    internal static DateTimeOffset? ParseReset(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var text = value.Trim();
        if (TryParseDuration(text, out var duration))
        {
            return now + duration;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
            ? at
            : null;
    }

    internal static bool TryParseDuration(ReadOnlySpan<char> text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (text.IsEmpty)
        {
            return false;
        }

        double totalMs = 0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (i == start || !double.TryParse(text[start..i], NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            double scale = text[unitStart..i] switch
            {
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1_000,
                "ms" => 1,
                _ => -1,
            };
            if (scale < 0)
            {
                return false;
            }

            totalMs += number * scale;
        }

        if (!double.IsFinite(totalMs) || totalMs > TimeSpan.FromDays(1).TotalMilliseconds)
        {
            return false;
        }

        duration = TimeSpan.FromMilliseconds(totalMs);
        return true;
    }
}
