using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace TokenGateway.Auth;

/// <summary>Back-off for failed admin-key attempts (section <c>Security:AdminThrottle</c>).</summary>
public sealed class AdminThrottleOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Security:AdminThrottle";

    /// <summary>Failed attempts from one client address answered without delay (typos happen).</summary>
    public int FreeFailures { get; set; } = 4;

    /// <summary>The first block, after failure <see cref="FreeFailures"/> + 1; each further failure doubles it.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest block.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>An address with no failure for this long starts again from zero.</summary>
    public TimeSpan ForgetAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Addresses tracked at once. When full (after dropping forgotten ones), new addresses share one bucket, so a flood
    /// of addresses neither grows memory nor escapes the back-off.
    /// </summary>
    public int MaxTrackedAddresses { get; set; } = 10_000;
}

/// <summary>
/// Per-client-address exponential back-off on failed admin-key attempts (admin API and dashboard login). After
/// <see cref="AdminThrottleOptions.FreeFailures"/> failures an address is blocked for BaseDelay × 2^(n − free − 1),
/// capped at MaxDelay; while blocked every attempt that carries a key — the right one included — gets 429 with
/// <c>Retry-After</c>, without the key being checked. A success clears the address. IPv6 clients are grouped by /64
/// (one host usually owns the whole prefix). The client address is the connection's: behind a reverse proxy, configure
/// ASP.NET Core's forwarded-headers middleware so it is the real client's.
/// </summary>
internal sealed class AdminLoginThrottle(TimeProvider time, IOptions<AdminThrottleOptions> options)
{
    private const string OverflowKey = "*";
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>True when <paramref name="address"/> must wait; <paramref name="retryAfter"/> says how long.</summary>
    public bool IsBlocked(IPAddress? address, out TimeSpan retryAfter)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            // An address the full table cannot track is judged by the shared overflow bucket, so a flood of fresh
            // addresses does not earn fresh guesses.
            if ((_entries.TryGetValue(Key(address), out var entry)
                    || (_entries.Count >= options.Value.MaxTrackedAddresses && _entries.TryGetValue(OverflowKey, out entry)))
                && entry.BlockedUntil > now)
            {
                retryAfter = entry.BlockedUntil - now;
                return true;
            }
        }

        retryAfter = TimeSpan.Zero;
        return false;
    }

    /// <summary>Counts a failed attempt; returns the block it starts (zero while failures are still free).</summary>
    public TimeSpan RecordFailure(IPAddress? address)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        lock (_gate)
        {
            var key = Key(address);
            if (!_entries.TryGetValue(key, out var entry))
            {
                if (_entries.Count >= o.MaxTrackedAddresses)
                {
                    Prune(now, o.ForgetAfter);
                }

                if (_entries.Count >= o.MaxTrackedAddresses)
                {
                    key = OverflowKey;
                    entry = _entries.GetValueOrDefault(key);
                }

                entry ??= new Entry();
                _entries[key] = entry;
            }

            if (now - entry.LastFailure > o.ForgetAfter && entry.BlockedUntil <= now)
            {
                entry.Failures = 0;
            }

            entry.Failures++;
            entry.LastFailure = now;
            var over = entry.Failures - o.FreeFailures;
            if (over <= 0)
            {
                return TimeSpan.Zero;
            }

            var delay = over > 30 ? o.MaxDelay : TimeSpan.FromTicks(Math.Min(o.MaxDelay.Ticks, o.BaseDelay.Ticks * (1L << Math.Min(over - 1, 40))));
            if (delay > o.MaxDelay || delay < TimeSpan.Zero)
            {
                delay = o.MaxDelay;
            }

            entry.BlockedUntil = now + delay;
            return delay;
        }
    }

    /// <summary>Forgets the address's failures (the right key was presented while not blocked).</summary>
    public void RecordSuccess(IPAddress? address)
    {
        lock (_gate)
        {
            _entries.Remove(Key(address));
        }
    }

    /// <summary>Addresses currently tracked (for tests and diagnostics).</summary>
    public int TrackedCount
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    private void Prune(DateTimeOffset now, TimeSpan forgetAfter)
    {
        foreach (var (key, entry) in _entries)
        {
            if (entry.BlockedUntil <= now && now - entry.LastFailure > forgetAfter)
            {
                _entries.Remove(key);
            }
        }
    }

    internal static string Key(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear(); // the /64 prefix
        return new IPAddress(bytes).ToString() + "/64";
    }

    private sealed class Entry
    {
        public int Failures;
        public DateTimeOffset LastFailure;
        public DateTimeOffset BlockedUntil;
    }
}
