using System.Globalization;
using System.Text;

namespace TokenGateway.Core.Resilience;

/// <summary>
/// Chooses one of a provider's keys for each attempt: never a key cooling down after a 429 or known to have spent its
/// window, then the fewest outstanding requests, then the most remaining requests and tokens the provider reported.
/// </summary>
/// <remarks>
/// The selector never sees a key: it works on positions (<c>0…Count-1</c>) labelled <c>{provider}#{index}</c>, so
/// nothing it logs or prints can leak one. Thread-safe; the lock is held only for a scan of a handful of keys.
/// </remarks>
public sealed class KeySelector
{
    private readonly KeyState[] _keys;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();

    /// <summary>Creates a selector over <paramref name="count"/> keys of <paramref name="providerId"/>.</summary>
    public KeySelector(string providerId, int count, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(providerId);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentNullException.ThrowIfNull(time);
        ProviderId = providerId;
        _time = time;
        _keys = new KeyState[count];
        var labels = new string[count];
        var scopes = new string[count];
        for (var i = 0; i < count; i++)
        {
            labels[i] = $"{providerId}#{i}";
            scopes[i] = CircuitScopes.Key(providerId, i);
        }

        Labels = labels;
        ScopeIds = scopes;
    }

    /// <summary>The provider.</summary>
    public string ProviderId { get; }

    /// <summary>Number of keys.</summary>
    public int Count => _keys.Length;

    /// <summary>Safe labels of the keys (<c>openai#0</c>, …), for logs and metrics.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Circuit-breaker scope id of each key.</summary>
    public IReadOnlyList<string> ScopeIds { get; }

    /// <summary>
    /// Picks the best usable key and counts it as outstanding; returns -1 when every key is cooling down or refused by
    /// <paramref name="isUsable"/>. Pair every success with <see cref="Release"/>.
    /// </summary>
    /// <param name="state">State passed to <paramref name="isUsable"/> (lets callers use a static lambda).</param>
    /// <param name="isUsable">An extra filter (e.g. the key's circuit breaker), or null.</param>
    /// <param name="after">Judge cooldowns as of this long from now (the attempt's planned delay).</param>
    public int TryAcquire<TState>(TState state, Func<TState, int, bool>? isUsable, TimeSpan after = default)
    {
        var now = _time.GetUtcNow() + after;
        lock (_lock)
        {
            var best = -1;
            for (var i = 0; i < _keys.Length; i++)
            {
                ref var k = ref _keys[i];
                if (k.CoolingUntil > now || (isUsable is not null && !isUsable(state, i)))
                {
                    continue;
                }

                if (best < 0 || IsBetter(in k, in _keys[best]))
                {
                    best = i;
                }
            }

            if (best >= 0)
            {
                _keys[best].Outstanding++;
                // Count the request against the reported remainder until the provider's next headers correct it.
                if (_keys[best].RemainingRequests is > 0)
                {
                    _keys[best].RemainingRequests--;
                }
            }

            return best;
        }
    }

    /// <summary>Picks a key with no extra filter; see <see cref="TryAcquire{TState}"/>.</summary>
    public int TryAcquire() => TryAcquire<object?>(null, null);

    /// <summary>
    /// Ends an attempt on key <paramref name="index"/>: records the provider's rate-limit headers, and after a 429
    /// cools the key down until <paramref name="retryAfter"/>, else the reported reset, else one second.
    /// </summary>
    public void Release(int index, in RateLimitSnapshot rateLimits, bool rateLimited = false, TimeSpan? retryAfter = null)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            ref var k = ref _keys[index];
            if (k.Outstanding > 0)
            {
                k.Outstanding--;
            }

            if (rateLimits.RemainingRequests is { } rr)
            {
                k.RemainingRequests = rr;
            }

            if (rateLimits.RemainingTokens is { } rt)
            {
                k.RemainingTokens = rt;
            }

            var until = rateLimits.ExhaustedUntil();
            if (rateLimited)
            {
                until = retryAfter is { } ra ? now + ra : rateLimits.LatestReset() ?? now + TimeSpan.FromSeconds(1);
            }

            if (until is { } u && u > k.CoolingUntil)
            {
                k.CoolingUntil = u;
            }
        }
    }

    /// <summary>How long until the first cooling key is usable again; zero when one is usable now.</summary>
    public TimeSpan NextAvailableIn()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var soonest = TimeSpan.MaxValue;
            foreach (var k in _keys)
            {
                var wait = k.CoolingUntil - now;
                soonest = wait <= TimeSpan.Zero ? TimeSpan.Zero : wait < soonest ? wait : soonest;
            }

            return soonest;
        }
    }

    /// <summary>True when key <paramref name="index"/> is cooling down now.</summary>
    public bool IsCooling(int index)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            return _keys[index].CoolingUntil > now;
        }
    }

    /// <summary>Outstanding attempts on key <paramref name="index"/>.</summary>
    public int Outstanding(int index)
    {
        lock (_lock)
        {
            return _keys[index].Outstanding;
        }
    }

    /// <summary>A one-line state summary by label (no key material): outstanding, remaining, cooling.</summary>
    public override string ToString()
    {
        var now = _time.GetUtcNow();
        var sb = new StringBuilder();
        lock (_lock)
        {
            for (var i = 0; i < _keys.Length; i++)
            {
                var k = _keys[i];
                sb.Append(i == 0 ? "" : "; ").Append(Labels[i])
                    .Append(CultureInfo.InvariantCulture, $" outstanding={k.Outstanding}")
                    .Append(CultureInfo.InvariantCulture, $" remainingRequests={k.RemainingRequests?.ToString(CultureInfo.InvariantCulture) ?? "?"}")
                    .Append(CultureInfo.InvariantCulture, $" remainingTokens={k.RemainingTokens?.ToString(CultureInfo.InvariantCulture) ?? "?"}");
                if (k.CoolingUntil > now)
                {
                    sb.Append(CultureInfo.InvariantCulture, $" coolingFor={(k.CoolingUntil - now).TotalSeconds:0.###}s");
                }
            }
        }

        return sb.ToString();
    }

    private static bool IsBetter(in KeyState a, in KeyState b)
    {
        if (a.Outstanding != b.Outstanding)
        {
            return a.Outstanding < b.Outstanding;
        }

        // Unknown remainders rank above known ones: an unused key is worth trying.
        var ar = a.RemainingRequests ?? long.MaxValue;
        var br = b.RemainingRequests ?? long.MaxValue;
        if (ar != br)
        {
            return ar > br;
        }

        return (a.RemainingTokens ?? long.MaxValue) > (b.RemainingTokens ?? long.MaxValue);
    }

    private struct KeyState
    {
        public int Outstanding;
        public long? RemainingRequests;
        public long? RemainingTokens;
        public DateTimeOffset CoolingUntil;
    }
}

/// <summary>Names of circuit-breaker scopes: one per destination, one per provider key.</summary>
public static class CircuitScopes
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _destinations = new(StringComparer.Ordinal);

    /// <summary>The scope of a YARP destination (<c>dest:openai-0</c>); cached, destination ids are a configured set.</summary>
    public static string Destination(string destinationId)
    {
        if (_destinations.TryGetValue(destinationId, out var scope))
        {
            return scope;
        }

        scope = "dest:" + destinationId;
        // ConcurrentDictionary.Count takes every lock: only paid on a miss, and the bound keeps the cache small.
        if (_destinations.Count < 4096)
        {
            _destinations.TryAdd(destinationId, scope);
        }

        return scope;
    }

    /// <summary>The scope of a provider key by position (<c>key:openai#1</c>).</summary>
    public static string Key(string providerId, int index) => string.Create(CultureInfo.InvariantCulture, $"key:{providerId}#{index}");
}

/// <summary>The circuit-breaker state the planner reads (implemented over Polly in the host).</summary>
public interface ICircuitStates
{
    /// <summary>True when the breaker of <paramref name="scopeId"/> refuses attempts now; <paramref name="retryAfter"/> is the time left.</summary>
    bool IsOpen(string scopeId, out TimeSpan retryAfter);
}
