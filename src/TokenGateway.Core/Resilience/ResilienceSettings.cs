namespace TokenGateway.Core.Resilience;

/// <summary>
/// The effective per-request resilience settings: gateway defaults ← model (<c>Models:{name}:Resilience</c>) ←
/// team policy (<c>"resilience"</c>), as merged by <see cref="ResilienceSettingsResolver"/>.
/// </summary>
public sealed record ResilienceSettings
{
    /// <summary>The built-in defaults (what an empty <c>Resilience</c> section yields).</summary>
    public static ResilienceSettings Default { get; } = new();

    /// <summary>Time to open a connection to a destination.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time from sending the request to the response headers.</summary>
    public TimeSpan ResponseHeadersTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest silence between body chunks.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Deadline for the whole request (all attempts, back-offs and fallbacks).</summary>
    public TimeSpan TotalTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Attempts per model, the first included.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Back-off before the first retry.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Upper bound of one back-off.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Share of each back-off drawn at random, 0-1.</summary>
    public double Jitter { get; init; } = 0.5;

    /// <summary>Longest provider <c>Retry-After</c> waited for.</summary>
    public TimeSpan RetryAfterCap { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Continue an Anthropic stream cut after its first byte (team opt-in).</summary>
    public bool ContinueStreams { get; init; }

    /// <summary>Longest fallback chain.</summary>
    public int MaxFallbacks { get; init; } = ResilienceLimits.DefaultMaxFallbacks;
}

/// <summary>
/// Overrides of the per-request resilience settings, the same shape in the model catalogue
/// (<c>Models:{name}:Resilience</c>) and in team policies (<c>"resilience": {…}</c>); absent fields inherit.
/// </summary>
public sealed record ResilienceOverrides
{
    /// <summary>Timeout overrides.</summary>
    public TimeoutOverrides? Timeouts { get; init; }

    /// <summary>Retry overrides.</summary>
    public RetryOverrides? Retry { get; init; }

    /// <summary>Continue Anthropic streams cut after the first byte on the next attempt.</summary>
    public bool? ContinueStreams { get; init; }
}

/// <summary>Timeout overrides; null fields inherit.</summary>
public sealed record TimeoutOverrides
{
    /// <summary>See <see cref="ResilienceSettings.ConnectTimeout"/>.</summary>
    public TimeSpan? Connect { get; init; }

    /// <summary>See <see cref="ResilienceSettings.ResponseHeadersTimeout"/>.</summary>
    public TimeSpan? ResponseHeaders { get; init; }

    /// <summary>See <see cref="ResilienceSettings.IdleTimeout"/>.</summary>
    public TimeSpan? Idle { get; init; }

    /// <summary>See <see cref="ResilienceSettings.TotalTimeout"/>.</summary>
    public TimeSpan? Total { get; init; }
}

/// <summary>Retry overrides; null fields inherit.</summary>
public sealed record RetryOverrides
{
    /// <summary>See <see cref="ResilienceSettings.MaxAttempts"/>.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>See <see cref="ResilienceSettings.BaseDelay"/>.</summary>
    public TimeSpan? BaseDelay { get; init; }

    /// <summary>See <see cref="ResilienceSettings.MaxDelay"/>.</summary>
    public TimeSpan? MaxDelay { get; init; }

    /// <summary>See <see cref="ResilienceSettings.Jitter"/>.</summary>
    public double? Jitter { get; init; }

    /// <summary>See <see cref="ResilienceSettings.RetryAfterCap"/>.</summary>
    public TimeSpan? RetryAfterCap { get; init; }
}

/// <summary>Merges defaults ← model ← team into one <see cref="ResilienceSettings"/>.</summary>
public static class ResilienceSettingsResolver
{
    /// <summary>
    /// Applies <paramref name="model"/>'s then <paramref name="team"/>'s overrides to <paramref name="defaults"/>.
    /// </summary>
    /// <remarks>
    /// The result is always usable: per-attempt timeouts never exceed the total deadline and the base delay never
    /// exceeds the max delay (a team may lower the total below a model's header timeout; the smaller one wins).
    /// </remarks>
    public static ResilienceSettings Resolve(ResilienceSettings defaults, ResilienceOverrides? model, ResilienceOverrides? team)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        if (model is null && team is null)
        {
            return defaults;
        }

        var merged = Apply(Apply(defaults, model), team);
        var total = merged.TotalTimeout;
        return merged with
        {
            ConnectTimeout = Min(merged.ConnectTimeout, total),
            ResponseHeadersTimeout = Min(merged.ResponseHeadersTimeout, total),
            IdleTimeout = Min(merged.IdleTimeout, total),
            BaseDelay = Min(merged.BaseDelay, merged.MaxDelay),
        };
    }

    private static ResilienceSettings Apply(ResilienceSettings s, ResilienceOverrides? o)
    {
        if (o is null)
        {
            return s;
        }

        var t = o.Timeouts;
        var r = o.Retry;
        return s with
        {
            ConnectTimeout = t?.Connect ?? s.ConnectTimeout,
            ResponseHeadersTimeout = t?.ResponseHeaders ?? s.ResponseHeadersTimeout,
            IdleTimeout = t?.Idle ?? s.IdleTimeout,
            TotalTimeout = t?.Total ?? s.TotalTimeout,
            MaxAttempts = r?.MaxAttempts ?? s.MaxAttempts,
            BaseDelay = r?.BaseDelay ?? s.BaseDelay,
            MaxDelay = r?.MaxDelay ?? s.MaxDelay,
            Jitter = r?.Jitter ?? s.Jitter,
            RetryAfterCap = r?.RetryAfterCap ?? s.RetryAfterCap,
            ContinueStreams = o.ContinueStreams ?? s.ContinueStreams,
        };
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a <= b ? a : b;
}
