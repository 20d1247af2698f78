using System.Collections.Concurrent;
using TokenGateway.Core.Teams;

namespace TokenGateway.Auth;

/// <summary>The identity a valid virtual key resolves to.</summary>
internal readonly record struct CallerIdentity(string TeamId, string KeyId);

/// <summary>
/// Validates virtual keys against the store with a short-lived in-memory cache so the hot path rarely touches the
/// database. Revocation through the admin API evicts the cache entry at once.
/// </summary>
internal sealed class VirtualKeyAuthenticator(ITeamStore store, TimeProvider time)
{
    private static readonly TimeSpan _ttl = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (VirtualKey? Key, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<CallerIdentity?> AuthenticateAsync(string presentedKey, CancellationToken cancellationToken)
    {
        if (!presentedKey.StartsWith(ApiKeys.Prefix, StringComparison.Ordinal) || presentedKey.Length > 64)
        {
            return null;
        }

        var hash = ApiKeys.Hash(presentedKey);
        var now = time.GetUtcNow();
        if (!_cache.TryGetValue(hash, out var entry) || entry.Until <= now)
        {
            var key = await store.FindKeyByHashAsync(hash, cancellationToken);
            entry = (key, now + _ttl);
            if (_cache.Count > 100_000)
            {
                _cache.Clear();
            }

            _cache[hash] = entry;
        }

        return entry.Key is { } k && k.IsActive(now) ? new CallerIdentity(k.TeamId, k.Id) : null;
    }

    /// <summary>Authenticates the key presented in <paramref name="request"/>'s headers, if any.</summary>
    public ValueTask<CallerIdentity?> AuthenticateAsync(HttpRequest request, CancellationToken cancellationToken) =>
        ApiKeys.TryRead(request, out var key) ? AuthenticateAsync(key, cancellationToken) : ValueTask.FromResult<CallerIdentity?>(null);

    /// <summary>Forgets every cached lookup (after a revocation).</summary>
    public void Invalidate() => _cache.Clear();
}
