namespace TokenGateway.Core.Resilience;

/// <summary>
/// Configuration section <c>Resilience</c>: the gateway-wide defaults for timeouts, retries, circuit breakers and
/// fallbacks. Models (<c>Models:{name}:Resilience</c>) and team policies (<c>"resilience"</c>) override the
/// per-request parts through <see cref="ResilienceOverrides"/>; the breaker is shared state and stays gateway-wide.
/// </summary>
public sealed class ResilienceOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Resilience";

    /// <summary>
    /// False bypasses the whole attempt pipeline (no planner, breakers, retries, fallbacks, per-attempt header timer or
    /// continuation): each request is forwarded once, as before issue #13. For measuring the pipeline's cost; on by default.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Per-attempt timeouts and the total deadline.</summary>
    public TimeoutOptions Timeouts { get; set; } = new();

    /// <summary>Retry count and back-off.</summary>
    public RetryOptions Retry { get; set; } = new();

    /// <summary>Circuit breaker per destination and per provider key.</summary>
    public CircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>Continue an Anthropic stream cut after its first byte on the next attempt (off by default; teams opt in).</summary>
    public bool ContinueStreams { get; set; }

    /// <summary>Longest fallback chain tried after a model's own deployments and keys (0 turns fallbacks off).</summary>
    public int MaxFallbacks { get; set; } = ResilienceLimits.DefaultMaxFallbacks;

    /// <summary>The per-request defaults as effective settings (no overrides applied).</summary>
    public ResilienceSettings ToSettings() => new()
    {
        ConnectTimeout = Timeouts.Connect,
        ResponseHeadersTimeout = Timeouts.ResponseHeaders ?? ResilienceSettings.Default.ResponseHeadersTimeout,
        IdleTimeout = Timeouts.Idle ?? ResilienceSettings.Default.IdleTimeout,
        TotalTimeout = Timeouts.Total,
        MaxAttempts = Retry.MaxAttempts,
        BaseDelay = Retry.BaseDelay,
        MaxDelay = Retry.MaxDelay,
        Jitter = Retry.Jitter,
        RetryAfterCap = Retry.RetryAfterCap,
        ContinueStreams = ContinueStreams,
        MaxFallbacks = MaxFallbacks,
    };
}

/// <summary>Per-attempt timeouts and the total deadline (section <c>Resilience:Timeouts</c>).</summary>
public sealed class TimeoutOptions
{
    /// <summary>Time to open a connection (TCP + TLS) to a destination.</summary>
    public TimeSpan Connect { get; set; } = ResilienceSettings.Default.ConnectTimeout;

    /// <summary>Time from sending the request to the response headers; null = <c>Gateway:UpstreamTimeout</c>.</summary>
    public TimeSpan? ResponseHeaders { get; set; }

    /// <summary>Longest silence between body chunks (streamed and buffered); null = <c>Gateway:UpstreamIdleTimeout</c>.</summary>
    public TimeSpan? Idle { get; set; }

    /// <summary>Deadline for the whole request: every attempt, back-off and fallback included.</summary>
    public TimeSpan Total { get; set; } = ResilienceSettings.Default.TotalTimeout;
}

/// <summary>Retry count and back-off (section <c>Resilience:Retry</c>).</summary>
public sealed class RetryOptions
{
    /// <summary>Attempts per model, the first included (1 = no retries); across its deployments and keys.</summary>
    public int MaxAttempts { get; set; } = ResilienceSettings.Default.MaxAttempts;

    /// <summary>Back-off before the first retry; doubles on each further retry.</summary>
    public TimeSpan BaseDelay { get; set; } = ResilienceSettings.Default.BaseDelay;

    /// <summary>Upper bound of one back-off.</summary>
    public TimeSpan MaxDelay { get; set; } = ResilienceSettings.Default.MaxDelay;

    /// <summary>Share of each back-off drawn at random (0 = fixed exponential, 1 = full jitter).</summary>
    public double Jitter { get; set; } = ResilienceSettings.Default.Jitter;

    /// <summary>Longest provider <c>Retry-After</c> the gateway waits for; a longer one is not waited out.</summary>
    public TimeSpan RetryAfterCap { get; set; } = ResilienceSettings.Default.RetryAfterCap;
}

/// <summary>Circuit breaker settings (section <c>Resilience:CircuitBreaker</c>), one breaker per destination and per key.</summary>
public sealed class CircuitBreakerOptions
{
    /// <summary>Share of failed attempts within <see cref="SamplingDuration"/> that opens the breaker (0-1].</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Attempts needed within <see cref="SamplingDuration"/> before the ratio is judged (at least 2).</summary>
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>Window over which the failure ratio is measured (at least 0.5 s).</summary>
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open breaker refuses attempts before one probe is let through (at least 0.5 s).</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>Bounds every resilience setting must respect (checked at start and on policy writes).</summary>
public static class ResilienceLimits
{
    /// <summary>Most attempts per model any configuration may ask for.</summary>
    public const int MaxAttempts = 10;

    /// <summary>Most fallback models in one chain.</summary>
    public const int MaxFallbacks = 10;

    /// <summary>Default length bound of a fallback chain.</summary>
    public const int DefaultMaxFallbacks = 3;

    /// <summary>Longest per-attempt timeout (connect, headers, idle).</summary>
    public static readonly TimeSpan MaxAttemptTimeout = TimeSpan.FromHours(1);

    /// <summary>Longest total deadline.</summary>
    public static readonly TimeSpan MaxTotalTimeout = TimeSpan.FromHours(24);

    /// <summary>Longest back-off delay (base or max).</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);

    /// <summary>Longest Retry-After cap.</summary>
    public static readonly TimeSpan MaxRetryAfterCap = TimeSpan.FromMinutes(5);

    /// <summary>Shortest sampling and break duration Polly accepts.</summary>
    public static readonly TimeSpan MinBreakerDuration = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest break duration.</summary>
    public static readonly TimeSpan MaxBreakDuration = TimeSpan.FromHours(1);
}
