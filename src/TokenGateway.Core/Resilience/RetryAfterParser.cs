using System.Globalization;

namespace TokenGateway.Core.Resilience;

/// <summary>Parses the providers' retry hints: <c>retry-after-ms</c> (OpenAI) and <c>Retry-After</c> (seconds or HTTP-date).</summary>
public static class RetryAfterParser
{
    /// <summary>Longest hint accepted as meaningful; larger values are clamped (a day is "not soon").</summary>
    public static readonly TimeSpan MaxHint = TimeSpan.FromDays(1);

    /// <summary>
    /// Reads the hint; <paramref name="retryAfterMs"/> wins when both are valid (it is the more precise one).
    /// A date in the past yields zero. Returns false when neither header holds a valid value.
    /// </summary>
    public static bool TryParse(string? retryAfterMs, string? retryAfter, DateTimeOffset now, out TimeSpan delay)
    {
        if (!string.IsNullOrWhiteSpace(retryAfterMs)
            && double.TryParse(retryAfterMs.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)
            && double.IsFinite(ms) && ms >= 0)
        {
            delay = Clamp(TimeSpan.FromMilliseconds(Math.Min(ms, MaxHint.TotalMilliseconds)));
            return true;
        }

        if (!string.IsNullOrWhiteSpace(retryAfter))
        {
            var value = retryAfter.Trim();
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                if (double.IsFinite(seconds) && seconds >= 0)
                {
                    delay = Clamp(TimeSpan.FromSeconds(Math.Min(seconds, MaxHint.TotalSeconds)));
                    return true;
                }
            }
            else if (DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var date)
                || DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out date))
            {
                delay = Clamp(date - now);
                return true;
            }
        }

        delay = default;
        return false;
    }

    private static TimeSpan Clamp(TimeSpan value) => value < TimeSpan.Zero ? TimeSpan.Zero : value > MaxHint ? MaxHint : value;
}

/// <summary>Jittered exponential back-off; pure given the random draw.</summary>
public static class Backoff
{
    /// <summary>
    /// The delay before retry number <paramref name="retry"/> (1 = the first retry): <c>base × 2^(retry-1)</c>
    /// capped at <paramref name="maxDelay"/>, of which the share <paramref name="jitter"/> is scaled by
    /// <paramref name="random01"/> (a draw in [0, 1)), so the delay lies in <c>[d × (1 - jitter), d]</c>.
    /// </summary>
    public static TimeSpan Compute(int retry, TimeSpan baseDelay, TimeSpan maxDelay, double jitter, double random01)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retry, 1);
        if (baseDelay <= TimeSpan.Zero || maxDelay <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        // 2^(retry-1) overflows nothing below 2^62 ticks; cap the exponent so huge retry numbers stay at maxDelay.
        var exponent = Math.Min(retry - 1, 30);
        var ticks = Math.Min((double)baseDelay.Ticks * Math.Pow(2, exponent), maxDelay.Ticks);
        var j = Math.Clamp(jitter, 0, 1);
        var r = Math.Clamp(random01, 0, 1);
        return TimeSpan.FromTicks((long)(ticks * (1 - (j * r))));
    }
}
