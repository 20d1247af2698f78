using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Caching;

namespace TokenGateway.Caching;

/// <summary>
/// The response cache's storage: a <see cref="HybridCache"/> (Microsoft.Extensions.Caching.Hybrid) with an in-process
/// first level bounded by bytes and, when <c>ConnectionStrings:Redis</c> is set, a Redis second level. Its stampede
/// protection makes concurrent identical misses share one upstream call.
/// </summary>
/// <remarks>
/// The HybridCache, its memory cache and its Redis cache live in a private service provider owned by this store, so
/// nothing here registers an <see cref="IMemoryCache"/> or <c>IDistributedCache</c> in the gateway's container (other
/// components may register their own). The first level's <see cref="MemoryCacheOptions.SizeLimit"/> counts entry bytes:
/// HybridCache sizes each entry by its serialized payload because <see cref="CachedAnswer"/> is not an immutable type.
/// </remarks>
internal sealed class ResponseCacheStore : IDisposable
{
    private readonly ServiceProvider _inner;
    private readonly HybridCache _cache;
    private readonly ConcurrentDictionary<TimeSpan, HybridCacheEntryOptions> _entryOptions = new();

    public ResponseCacheStore(IOptions<ResponseCacheOptions> options, IConfiguration configuration, ResponseCacheClock clock, ILoggerFactory loggers)
    {
        var o = options.Value;
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(clock.Time);
        services.AddSingleton<IMemoryCache>(new MemoryCache(new MemoryCacheOptions
        {
            SizeLimit = o.MemoryLimitBytes,
#pragma warning disable CS0618 // MemoryCache measures expiry with ISystemClock only; the adapter reads the cache's TimeProvider
            Clock = new TimeProviderClock(clock.Time),
#pragma warning restore CS0618
        }, loggers));
        var redis = configuration.GetConnectionString("Redis");
        if (!string.IsNullOrWhiteSpace(redis))
        {
            services.AddStackExchangeRedisCache(r =>
            {
                r.Configuration = redis;
                r.InstanceName = o.RedisInstanceName;
            });
            HasSecondLevel = true;
        }

        services.AddHybridCache(h =>
        {
            h.MaximumPayloadBytes = o.MaximumPayloadBytes;
            h.MaximumKeyLength = 256;
        }).AddSerializer<CachedAnswer, CachedAnswerSerializer>();
        _inner = services.BuildServiceProvider();
        _cache = _inner.GetRequiredService<HybridCache>();
        MaximumPayloadBytes = o.MaximumPayloadBytes;
    }

    /// <summary>True when entries are also kept in Redis.</summary>
    public bool HasSecondLevel { get; }

    /// <summary>The library's payload limit (a team's <c>maxEntryBytes</c> is capped by it).</summary>
    public int MaximumPayloadBytes { get; }

    /// <summary>
    /// The stored answer for <paramref name="key"/>, or the one <paramref name="factory"/> produces: concurrent callers
    /// of the same key share one factory call. A factory that throws stores nothing and every waiter gets the exception.
    /// </summary>
    public ValueTask<CachedAnswer> GetOrCreateAsync<TState>(string key, TState state, Func<TState, CancellationToken, ValueTask<CachedAnswer>> factory, TimeSpan ttl) =>
        // No token: the factory is the first caller's own request pipeline, which observes its own RequestAborted; each
        // caller bounds its wait itself (Task.WaitAsync) so one caller leaving never cancels the others' answer.
        _cache.GetOrCreateAsync(key, state, factory, EntryOptions(ttl), tags: null, CancellationToken.None);

    /// <summary>Stores (or replaces) <paramref name="answer"/>.</summary>
    public ValueTask SetAsync(string key, CachedAnswer answer, TimeSpan ttl) => _cache.SetAsync(key, answer, EntryOptions(ttl));

    public void Dispose() => _inner.Dispose();

    private HybridCacheEntryOptions EntryOptions(TimeSpan ttl) =>
        _entryOptions.GetOrAdd(ttl, static t => new HybridCacheEntryOptions { Expiration = t, LocalCacheExpiration = t });

#pragma warning disable CS0618 // see the constructor
    private sealed class TimeProviderClock(TimeProvider time) : Microsoft.Extensions.Internal.ISystemClock
    {
        public DateTimeOffset UtcNow => time.GetUtcNow();
    }
#pragma warning restore CS0618

    private sealed class CachedAnswerSerializer : IHybridCacheSerializer<CachedAnswer>
    {
        public CachedAnswer Deserialize(ReadOnlySequence<byte> source) =>
            CachedAnswer.Deserialize(source) ?? throw new InvalidOperationException("The stored response-cache entry has another format version.");

        public void Serialize(CachedAnswer value, IBufferWriter<byte> target) => value.Serialize(target);
    }
}
