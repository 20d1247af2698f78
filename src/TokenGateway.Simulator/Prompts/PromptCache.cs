using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace TokenGateway.Simulator.Prompts;

/// <summary>
/// The simulated provider-side prompt cache: a bounded set of prompt-prefix keys with a sliding TTL.
/// </summary>
/// <remarks>
/// Keys are 64-bit hashes of (model, prefix). Entries expire <see cref="SimulatorOptions.PromptCacheTtl"/> after their last
/// use (or the TTL a request asked for); when the capacity is reached the oldest inserted keys are evicted first.
/// </remarks>
internal sealed class PromptCache
{
    private readonly ConcurrentDictionary<ulong, long> _expiry = new();
    private readonly ConcurrentQueue<ulong> _order = new();
    private readonly TimeProvider _time;
    private readonly int _capacity;

    public PromptCache(IOptions<SimulatorOptions> options, TimeProvider time)
    {
        Enabled = options.Value.PromptCaching;
        DefaultTtl = options.Value.PromptCacheTtl;
        _capacity = options.Value.PromptCacheCapacity;
        _time = time;
    }

    public bool Enabled { get; }

    public TimeSpan DefaultTtl { get; }

    /// <summary>True when <paramref name="key"/> is warm; a hit refreshes its TTL.</summary>
    public bool TryHit(ulong key, TimeSpan ttl)
    {
        var now = _time.GetUtcNow().UtcTicks;
        if (_expiry.TryGetValue(key, out var expires) && expires > now)
        {
            _expiry[key] = Math.Max(expires, now + ttl.Ticks);
            return true;
        }

        return false;
    }

    /// <summary>Warms <paramref name="key"/> for <paramref name="ttl"/>.</summary>
    public void Store(ulong key, TimeSpan ttl)
    {
        var expires = _time.GetUtcNow().UtcTicks + ttl.Ticks;
        var added = false;
        _expiry.AddOrUpdate(key, _ => { added = true; return expires; }, (_, old) => Math.Max(old, expires));
        if (!added)
        {
            return;
        }

        _order.Enqueue(key);
        while (_expiry.Count > _capacity && _order.TryDequeue(out var oldest))
        {
            _expiry.TryRemove(oldest, out _);
        }
    }

    /// <summary>Forgets every cached prefix.</summary>
    public void Clear()
    {
        _expiry.Clear();
        _order.Clear();
    }
}
