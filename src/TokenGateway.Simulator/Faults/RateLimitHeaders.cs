using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace TokenGateway.Simulator.Faults;

/// <summary>
/// The providers' rate-limit headers on every answer: a one-minute window per API key whose remaining requests and
/// tokens drop with each request (tokens estimated as the providers do: prompt bytes / 4 plus the requested output).
/// Informational only: the simulator never refuses for a spent window (use <c>status=429</c> for that).
/// </summary>
public sealed class RateLimitHeaders(IOptions<SimulatorOptions> options, TimeProvider time)
{
    private const int MaxKeys = 100_000;
    private readonly SimulatorOptions _options = options.Value;
    private readonly ConcurrentDictionary<int, Window> _windows = new();

    /// <summary>Charges one request of <paramref name="tokens"/> to the key's window and writes the headers.</summary>
    internal void Apply(HttpContext context, bool anthropic, string? apiKey, long tokens)
    {
        if (!_options.RateLimitHeaders)
        {
            return;
        }

        if (_windows.Count >= MaxKeys)
        {
            _windows.Clear();
        }

        var now = time.GetUtcNow();
        var window = _windows.GetOrAdd((apiKey ?? string.Empty).GetHashCode(StringComparison.Ordinal), static _ => new Window());
        long requestsLeft, tokensLeft;
        DateTimeOffset resetsAt;
        lock (window)
        {
            if (now >= window.ResetsAt)
            {
                window.ResetsAt = now.AddMinutes(1);
                window.Requests = 0;
                window.Tokens = 0;
            }

            window.Requests++;
            window.Tokens += tokens;
            requestsLeft = Math.Max(0, _options.RateLimitRequestsPerMinute - window.Requests);
            tokensLeft = Math.Max(0, _options.RateLimitTokensPerMinute - window.Tokens);
            resetsAt = window.ResetsAt;
        }

        var headers = context.Response.Headers;
        var inv = CultureInfo.InvariantCulture;
        if (anthropic)
        {
            var reset = resetsAt.ToString("yyyy-MM-ddTHH:mm:ssZ", inv);
            headers["anthropic-ratelimit-requests-limit"] = _options.RateLimitRequestsPerMinute.ToString(inv);
            headers["anthropic-ratelimit-requests-remaining"] = requestsLeft.ToString(inv);
            headers["anthropic-ratelimit-requests-reset"] = reset;
            headers["anthropic-ratelimit-tokens-limit"] = _options.RateLimitTokensPerMinute.ToString(inv);
            headers["anthropic-ratelimit-tokens-remaining"] = tokensLeft.ToString(inv);
            headers["anthropic-ratelimit-tokens-reset"] = reset;
        }
        else
        {
            var reset = Math.Max(0, (resetsAt - now).TotalSeconds).ToString("0.###", inv) + "s";
            headers["x-ratelimit-limit-requests"] = _options.RateLimitRequestsPerMinute.ToString(inv);
            headers["x-ratelimit-remaining-requests"] = requestsLeft.ToString(inv);
            headers["x-ratelimit-reset-requests"] = reset;
            headers["x-ratelimit-limit-tokens"] = _options.RateLimitTokensPerMinute.ToString(inv);
            headers["x-ratelimit-remaining-tokens"] = tokensLeft.ToString(inv);
            headers["x-ratelimit-reset-tokens"] = reset;
        }
    }

    private sealed class Window
    {
        public DateTimeOffset ResetsAt;
        public long Requests;
        public long Tokens;
    }
}
