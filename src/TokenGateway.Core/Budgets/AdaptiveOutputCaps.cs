using System.Collections.Concurrent;

namespace TokenGateway.Core.Budgets;

/// <summary>The resolved settings of <c>maxTokens.adaptive</c> (defaults applied).</summary>
/// <param name="Floor">The learned cap never goes below this.</param>
/// <param name="MarginPercent">Added to the p99 answer length, in percent of it.</param>
/// <param name="MinSamples">Answers observed before the cap acts.</param>
public sealed record AdaptiveMaxTokensSettings(int Floor, int MarginPercent, int MinSamples)
{
    /// <summary>Default floor: 256 tokens.</summary>
    public const int DefaultFloor = 256;

    /// <summary>Default margin: 20 % above the p99.</summary>
    public const int DefaultMarginPercent = 20;

    /// <summary>Default warm-up: 50 answers.</summary>
    public const int DefaultMinSamples = 50;

    /// <summary>The settings of an enabled policy section; null when absent or disabled.</summary>
    public static AdaptiveMaxTokensSettings? From(AdaptiveMaxTokensPolicy? policy) => policy is { Enabled: true }
        ? new AdaptiveMaxTokensSettings(policy.Floor ?? DefaultFloor, policy.MarginPercent ?? DefaultMarginPercent, policy.MinSamples ?? DefaultMinSamples)
        : null;
}

/// <summary>
/// The adaptive output cap: per team and model, the lengths of the last <see cref="Window"/> complete answers, and
/// from them a <c>max_tokens</c> ceiling = p99 × (1 + margin), clamped to [floor, ceiling]. A truncated answer (it used
/// all the <c>max_tokens</c> it was sent with, which is when providers report <c>finish_reason: length</c> /
/// <c>stop_reason: max_tokens</c>) doubles that route's cap (up to the ceiling) for the next <see cref="Window"/>
/// answers. In memory, per process; nothing acts before <see cref="AdaptiveMaxTokensSettings.MinSamples"/> answers.
/// </summary>
/// <remarks>
/// Reading the cap (admission, every request) is one dictionary lookup and a volatile read. Observing (after the
/// answer, off the request path) takes the route's lock, writes one slot of a fixed ring and recomputes the p99 over
/// at most <see cref="Window"/> values on the stack: no allocation after the route's first answer.
/// </remarks>
public sealed class AdaptiveOutputCaps
{
    /// <summary>Answers remembered per team and model.</summary>
    public const int Window = 512;

    /// <summary>Largest accepted <c>marginPercent</c>.</summary>
    public const int MaxMarginPercent = 1000;

    private readonly ConcurrentDictionary<(string Team, string Model), Route> _routes = new();

    /// <summary>
    /// The learned ceiling for <paramref name="team"/>'s answers from <paramref name="model"/>, or null while warming up.
    /// </summary>
    /// <param name="ceiling">The policy cap, else the model's maximum output: the result never exceeds it.</param>
    public int? CapFor(string team, string model, AdaptiveMaxTokensSettings settings, int ceiling)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (!_routes.TryGetValue((team, model), out var route) || route.Samples < settings.MinSamples)
        {
            return null;
        }

        return route.Cap(settings, ceiling);
    }

    /// <summary>Records one complete answer of <paramref name="outputTokens"/> (per choice) sent with <paramref name="sentMaxTokens"/>.</summary>
    public void Observe(string team, string model, int outputTokens, int? sentMaxTokens, AdaptiveMaxTokensSettings settings, int ceiling)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (outputTokens < 0)
        {
            return;
        }

        var route = _routes.GetOrAdd((team, model), static _ => new Route());
        var truncated = sentMaxTokens is { } sent && sent > 0 && outputTokens >= sent;
        route.Add(outputTokens, truncated ? sentMaxTokens!.Value : null, settings, ceiling);
    }

    /// <summary>
    /// The cap rule: p99 × (1 + margin), at least <paramref name="raisedTo"/> and the floor, at most
    /// <paramref name="ceiling"/> (and at least 1). A negative <paramref name="p99"/> (no answers yet) gives the ceiling.
    /// Shared with the insights recommendation for oversized <c>max_tokens</c>.
    /// </summary>
    public static int CapFrom(int p99, int raisedTo, AdaptiveMaxTokensSettings settings, int ceiling)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var learned = p99 < 0 ? ceiling : (int)Math.Min(int.MaxValue, (long)Math.Ceiling(p99 * (1 + (settings.MarginPercent / 100.0))));
        var cap = Math.Max(Math.Max(learned, raisedTo), settings.Floor);
        return Math.Max(1, Math.Min(cap, ceiling));
    }

    /// <summary>Nearest-rank 99th percentile of <paramref name="values"/> (at most a few thousand; sorted on the stack).</summary>
    public static int Percentile99(ReadOnlySpan<int> values)
    {
        if (values.IsEmpty)
        {
            return -1;
        }

        Span<int> sorted = values.Length <= 4096 ? stackalloc int[values.Length] : new int[values.Length];
        values.CopyTo(sorted);
        sorted.Sort();
        var rank = (int)Math.Ceiling(0.99 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private sealed class Route
    {
        private readonly Lock _lock = new();
        private readonly int[] _ring = new int[Window];
        private int _next;
        private int _count;
        private volatile int _p99 = -1;
        private volatile int _raisedTo;
        private int _raiseLeft;

        public int Samples => Volatile.Read(ref _count);

        public int Cap(AdaptiveMaxTokensSettings settings, int ceiling) => CapFrom(_p99, _raisedTo, settings, ceiling);

        public void Add(int outputTokens, int? truncatedAt, AdaptiveMaxTokensSettings settings, int ceiling)
        {
            lock (_lock)
            {
                _ring[_next] = outputTokens;
                _next = (_next + 1) % Window;
                Volatile.Write(ref _count, Math.Min(_count + 1, Window));
                if (truncatedAt is { } sent)
                {
                    // The answer wanted more than it was given: double this route's cap for the next window of answers.
                    _raisedTo = (int)Math.Min(ceiling, Math.Max((long)Cap(settings, ceiling), sent) * 2);
                    _raiseLeft = Window;
                }
                else if (_raiseLeft > 0 && --_raiseLeft == 0)
                {
                    _raisedTo = 0;
                }

                _p99 = Percentile99(_ring.AsSpan(0, _count));
            }
        }

    }
}
