using BitFaster.Caching.Lru;
using TokenGateway.Core.Changes;
using TokenGateway.Core.Teams;

namespace TokenGateway.Auth;

/// <summary>The identity a valid virtual key resolves to.</summary>
internal readonly record struct CallerIdentity(string TeamId, string KeyId);

/// <summary>
/// Validates virtual keys against the store with a short-lived in-memory cache so the hot path rarely touches the
/// database. Revocation through the admin API evicts that key's cache entry at once.
/// </summary>
/// <remarks>
/// The cache is a bounded LRU (BitFaster.Caching): a flood of unknown keys evicts the least recently used entries one
/// by one instead of wiping every cached key, and a miss costs no <c>ConcurrentDictionary.Count</c> (which takes every
/// lock of the dictionary). Entries expire after 30 s (or <c>Changes:PollInterval</c>) by the injected
/// <see cref="TimeProvider"/>. When the refresh of an expired entry fails (the store is unreachable) the expired entry
/// keeps being served, re-checked every <see cref="StaleRetry"/>; a key this process has never seen still needs the
/// store. With an <see cref="IChangeNotifier"/>, a revocation announced by any replica drops the key here (Redis
/// pub/sub), and a lost connection drops every entry.
/// </remarks>
internal sealed class VirtualKeyAuthenticator
{
    /// <summary>Most key lookups kept (hits and misses alike).</summary>
    internal const int Capacity = 100_000;

    private static readonly TimeSpan _defaultTtl = TimeSpan.FromSeconds(30);

    /// <summary>How long a stale entry is served after a failed refresh before the store is asked again.</summary>
    internal static readonly TimeSpan StaleRetry = TimeSpan.FromSeconds(5);
    private readonly ConcurrentLru<KeyDigest, Entry> _cache = new(Capacity);
    private readonly ITeamStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _ttl;
    private long _generation;

    public VirtualKeyAuthenticator(ITeamStore store, TimeProvider time, IChangeNotifier? changes = null, TimeSpan? ttl = null)
    {
        _store = store;
        _time = time;
        _ttl = ttl ?? _defaultTtl;
        changes?.Subscribe(OnChange);
    }

    public ValueTask<CallerIdentity?> AuthenticateAsync(string presentedKey, CancellationToken cancellationToken) =>
        AuthenticateAsync(presentedKey.AsSpan(), cancellationToken);

    /// <summary>Authenticates a key read from a header without copying it; the key is hashed before anything else.</summary>
    public ValueTask<CallerIdentity?> AuthenticateAsync(ReadOnlySpan<char> presentedKey, CancellationToken cancellationToken)
    {
        if (!presentedKey.StartsWith(ApiKeys.Prefix, StringComparison.Ordinal) || presentedKey.Length > 64)
        {
            return ValueTask.FromResult<CallerIdentity?>(null);
        }

        var digest = ApiKeys.Digest(presentedKey);
        var now = _time.GetUtcNow();
        if (_cache.TryGet(digest, out var entry) && entry.Until > now)
        {
            return ValueTask.FromResult(entry.Key is { } k && k.IsActive(now) ? new CallerIdentity(k.TeamId, k.Id) : (CallerIdentity?)null);
        }

        return LookUpAsync(digest, entry, now, cancellationToken);
    }

    private async ValueTask<CallerIdentity?> LookUpAsync(KeyDigest digest, Entry? entry, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // A revocation that lands while the store is being read must not be undone by caching the older answer.
        var generation = Volatile.Read(ref _generation);
        VirtualKey? key;
        try
        {
            key = await _store.FindKeyByHashAsync(digest.ToHex(), cancellationToken);
        }
        catch (Exception) when (entry is not null && !cancellationToken.IsCancellationRequested)
        {
            // The store is unreachable (a shared PostgreSQL outage): keep serving what this process last knew about
            // the key, and ask again after a short pause rather than on every request.
            entry = entry with { Until = now + StaleRetry };
            if (generation == Volatile.Read(ref _generation))
            {
                _cache.AddOrUpdate(digest, entry);
            }

            return entry.Key is { } stale && stale.IsActive(now) ? new CallerIdentity(stale.TeamId, stale.Id) : null;
        }

        entry = new Entry(key, now + _ttl);
        if (generation == Volatile.Read(ref _generation))
        {
            _cache.AddOrUpdate(digest, entry);
        }

        return entry.Key is { } k && k.IsActive(now) ? new CallerIdentity(k.TeamId, k.Id) : null;
    }

    /// <summary>Authenticates the key presented in <paramref name="request"/>'s headers, if any.</summary>
    public ValueTask<CallerIdentity?> AuthenticateAsync(HttpRequest request, CancellationToken cancellationToken) =>
        ApiKeys.TryReadSpan(request, out var key) ? AuthenticateAsync(key, cancellationToken) : ValueTask.FromResult<CallerIdentity?>(null);

    /// <summary>Forgets the cached lookup of key <paramref name="keyId"/> (after its revocation); other keys stay cached.</summary>
    public void Invalidate(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);

        Interlocked.Increment(ref _generation);

        // Revocation is a rare admin action: a scan of the bounded cache is cheaper than a second index kept per hit.
        foreach (var (digest, entry) in _cache)
        {
            if (entry.Key?.Id == keyId)
            {
                _cache.TryRemove(digest);
            }
        }
    }

    private void OnChange(GatewayChange change)
    {
        if (change.Kind == ChangeKind.Key)
        {
            Invalidate(change.Id);
        }
        else if (change.Kind == ChangeKind.All)
        {
            Interlocked.Increment(ref _generation);
            _cache.Clear();
        }
    }

    /// <summary>Number of cached lookups (tests).</summary>
    internal int Count => _cache.Count;

    private sealed record Entry(VirtualKey? Key, DateTimeOffset Until);
}
