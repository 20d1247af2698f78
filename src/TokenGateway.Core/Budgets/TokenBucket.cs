namespace TokenGateway.Core.Budgets;

/// <summary>
/// A per-minute token bucket: holds up to <see cref="Capacity"/> permits and refills at capacity per minute.
/// Weighted debits may drive it below zero (a settle that found more tokens than estimated), which delays later requests.
/// </summary>
internal sealed class TokenBucket
{
    private static readonly TimeSpan _window = TimeSpan.FromMinutes(1);

    private double _available;
    private DateTimeOffset _updated;

    public TokenBucket(long capacity, DateTimeOffset now)
    {
        Capacity = capacity;
        _available = capacity;
        _updated = now;
    }

    public long Capacity { get; private set; }

    public double Available => _available;

    /// <summary>Brings the bucket up to <paramref name="now"/> under the (possibly changed) <paramref name="capacity"/>.</summary>
    public void Refill(long capacity, DateTimeOffset now)
    {
        if (capacity != Capacity)
        {
            Capacity = capacity;
            _available = Math.Min(_available, capacity);
        }

        if (now > _updated)
        {
            var elapsed = (now - _updated).TotalSeconds;
            _available = Math.Min(Capacity, _available + (elapsed * Capacity / WindowSeconds));
            _updated = now;
        }
    }

    public bool CanTake(long permits) => _available >= permits;

    public void Take(long permits) => _available -= permits;

    /// <summary>Returns permits (or takes more when <paramref name="permits"/> is negative), never above capacity.</summary>
    public void Adjust(long permits) => _available = Math.Min(Capacity, _available + permits);

    /// <summary>How long until <paramref name="permits"/> are available.</summary>
    public TimeSpan TimeUntil(long permits)
    {
        var missing = permits - _available;
        return missing <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Ceiling(Math.Round(missing * WindowSeconds * 1000 / Capacity, 6)));
    }

    /// <summary>How long until the bucket is full again (the <c>x-ratelimit-reset-*</c> value).</summary>
    public TimeSpan TimeUntilFull() => TimeUntil(Capacity);

    public RateStatus Status() => new(Capacity, Math.Max(0, (long)Math.Floor(_available)), TimeUntilFull());

    private static double WindowSeconds => _window.TotalSeconds;
}
