namespace TokenGateway.Core.Resilience;

/// <summary>One invalid resilience setting: its path (configuration or policy JSON style) and what is wrong.</summary>
public sealed record SettingError(string Field, string Message);

/// <summary>How <see cref="ResilienceValidation"/> names fields.</summary>
public enum SettingPathStyle
{
    /// <summary>Configuration keys: <c>Resilience:Retry:MaxAttempts</c>.</summary>
    Configuration,
    /// <summary>Policy JSON paths: <c>resilience.retry.maxAttempts</c>.</summary>
    Json,
}

/// <summary>Checks resilience settings against <see cref="ResilienceLimits"/>; reports every problem at once.</summary>
public static class ResilienceValidation
{
    /// <summary>Validates the gateway-wide section, cross-field rules included.</summary>
    public static IReadOnlyList<SettingError> Validate(ResilienceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<SettingError>();
        var p = new PathBuilder(ResilienceOptions.SectionName, SettingPathStyle.Configuration);
        var t = options.Timeouts ?? new TimeoutOptions();
        var r = options.Retry ?? new RetryOptions();
        var b = options.CircuitBreaker ?? new CircuitBreakerOptions();
        CheckTimeouts(new TimeoutOverrides { Connect = t.Connect, ResponseHeaders = t.ResponseHeaders, Idle = t.Idle, Total = t.Total }, p.Child("Timeouts"), errors);
        CheckRetry(new RetryOverrides { MaxAttempts = r.MaxAttempts, BaseDelay = r.BaseDelay, MaxDelay = r.MaxDelay, Jitter = r.Jitter, RetryAfterCap = r.RetryAfterCap }, p.Child("Retry"), errors);
        if (t.Connect > t.Total)
        {
            errors.Add(new(p.Child("Timeouts").Field("Connect"), $"Must not exceed Timeouts:Total ({t.Connect} > {t.Total})."));
        }

        if (t.ResponseHeaders is { } headers && headers > t.Total)
        {
            errors.Add(new(p.Child("Timeouts").Field("ResponseHeaders"), $"Must not exceed Timeouts:Total ({headers} > {t.Total})."));
        }

        var breaker = p.Child("CircuitBreaker");
        if (!(b.FailureRatio > 0 && b.FailureRatio <= 1))
        {
            errors.Add(new(breaker.Field("FailureRatio"), $"Must be greater than 0 and at most 1 (got {b.FailureRatio})."));
        }

        if (b.MinimumThroughput < 2)
        {
            errors.Add(new(breaker.Field("MinimumThroughput"), $"Must be at least 2 (got {b.MinimumThroughput})."));
        }

        CheckRange(b.SamplingDuration, ResilienceLimits.MinBreakerDuration, ResilienceLimits.MaxBreakDuration, breaker.Field("SamplingDuration"), errors);
        CheckRange(b.BreakDuration, ResilienceLimits.MinBreakerDuration, ResilienceLimits.MaxBreakDuration, breaker.Field("BreakDuration"), errors);
        if (options.MaxFallbacks < 0 || options.MaxFallbacks > ResilienceLimits.MaxFallbacks)
        {
            errors.Add(new(p.Field("MaxFallbacks"), $"Must be between 0 and {ResilienceLimits.MaxFallbacks} (got {options.MaxFallbacks})."));
        }

        return errors;
    }

    /// <summary>Validates overrides (model catalogue or team policy) rooted at <paramref name="prefix"/>.</summary>
    /// <param name="overrides">The overrides.</param>
    /// <param name="prefix">Path of the section, e.g. <c>Models:gpt-4o:Resilience</c> or <c>resilience</c>.</param>
    /// <param name="style">How field names are written.</param>
    /// <param name="errors">Receives the problems found.</param>
    public static void Validate(ResilienceOverrides overrides, string prefix, SettingPathStyle style, ICollection<SettingError> errors)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        ArgumentNullException.ThrowIfNull(errors);
        var p = new PathBuilder(prefix, style);
        if (overrides.Timeouts is { } t)
        {
            CheckTimeouts(t, p.Child("Timeouts"), errors);
        }

        if (overrides.Retry is { } r)
        {
            CheckRetry(r, p.Child("Retry"), errors);
        }
    }

    private static void CheckTimeouts(TimeoutOverrides t, PathBuilder p, ICollection<SettingError> errors)
    {
        CheckPositive(t.Connect, ResilienceLimits.MaxAttemptTimeout, p.Field("Connect"), errors);
        CheckPositive(t.ResponseHeaders, ResilienceLimits.MaxAttemptTimeout, p.Field("ResponseHeaders"), errors);
        CheckPositive(t.Idle, ResilienceLimits.MaxAttemptTimeout, p.Field("Idle"), errors);
        CheckPositive(t.Total, ResilienceLimits.MaxTotalTimeout, p.Field("Total"), errors);
    }

    private static void CheckRetry(RetryOverrides r, PathBuilder p, ICollection<SettingError> errors)
    {
        if (r.MaxAttempts is { } attempts && (attempts < 1 || attempts > ResilienceLimits.MaxAttempts))
        {
            errors.Add(new(p.Field("MaxAttempts"), $"Must be between 1 (no retries) and {ResilienceLimits.MaxAttempts} (got {attempts})."));
        }

        if (r.BaseDelay is { } baseDelay)
        {
            CheckRange(baseDelay, TimeSpan.Zero, ResilienceLimits.MaxBackoff, p.Field("BaseDelay"), errors);
        }

        if (r.MaxDelay is { } maxDelay)
        {
            CheckRange(maxDelay, TimeSpan.Zero, ResilienceLimits.MaxBackoff, p.Field("MaxDelay"), errors);
        }

        if (r is { BaseDelay: { } b, MaxDelay: { } m } && b > m)
        {
            errors.Add(new(p.Field("BaseDelay"), $"Must not exceed {p.Name("MaxDelay")} ({b} > {m})."));
        }

        if (r.Jitter is { } jitter && !(jitter >= 0 && jitter <= 1))
        {
            errors.Add(new(p.Field("Jitter"), $"Must be between 0 and 1 (got {jitter})."));
        }

        if (r.RetryAfterCap is { } cap)
        {
            CheckRange(cap, TimeSpan.Zero, ResilienceLimits.MaxRetryAfterCap, p.Field("RetryAfterCap"), errors);
        }
    }

    private static void CheckPositive(TimeSpan? value, TimeSpan max, string field, ICollection<SettingError> errors)
    {
        if (value is { } v && (v <= TimeSpan.Zero || v > max))
        {
            errors.Add(new(field, $"Must be greater than 0 and at most {max} (got {v})."));
        }
    }

    private static void CheckRange(TimeSpan value, TimeSpan min, TimeSpan max, string field, ICollection<SettingError> errors)
    {
        if (value < min || value > max)
        {
            errors.Add(new(field, $"Must be between {min} and {max} (got {value})."));
        }
    }

    private readonly record struct PathBuilder(string Prefix, SettingPathStyle Style)
    {
        public PathBuilder Child(string name) => new(Field(name), Style);

        public string Field(string name) => Style == SettingPathStyle.Configuration ? $"{Prefix}:{name}" : $"{Prefix}.{Name(name)}";

        public string Name(string name) => Style == SettingPathStyle.Configuration ? name : char.ToLowerInvariant(name[0]) + name[1..];
    }
}
