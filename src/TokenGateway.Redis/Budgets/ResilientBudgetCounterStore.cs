using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Redis.Budgets;

/// <summary>
/// The store admission uses when Redis is configured: <see cref="RedisBudgetCounterStore"/> while Redis answers, and
/// the configured <see cref="RedisUnavailableMode"/> while it does not — fail closed (503 <c>budget_unavailable</c>
/// for hard budgets, local counters for the rest) or degrade to this replica's in-process counters.
/// </summary>
/// <remarks>
/// While Redis is down, one request per <see cref="RedisOptions.RetryInterval"/> tries it again; the others go to the
/// fallback at once, so a hung Redis costs one timeout per interval, not one per request. Local reservations carry the
/// id prefix <c>L</c> and settle locally. Each switch (to the fallback or back) starts a new episode: the first
/// reservation of a window in an episode asks admission to seed that window again from the ledger
/// (<see cref="ReserveResult.Unseeded"/>), so local counters start from what was spent, and Redis, once back, catches
/// up with what was spent while it was away (max semantics). A Redis reservation that cannot be settled while Redis is
/// down is charged locally and expires in Redis after its TTL; the ledger stays the truth.
/// </remarks>
internal sealed partial class ResilientBudgetCounterStore : IBudgetCounterStore, IDisposable
{
    private const string LocalPrefix = "L";

    private readonly RedisBudgetCounterStore _redis;
    private readonly InMemoryBudgetCounterStore _local;
    private readonly RedisUnavailableMode _mode;
    private readonly TimeSpan _retryInterval;
    private readonly TimeProvider _time;
    private readonly bool _requireSeeded;
    private readonly ILogger _logger;
    private readonly RedisBudgetMetrics? _metrics;
    private readonly ConcurrentDictionary<string, int> _seededInEpisode = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private int _episode;
    private bool _degraded;
    private long _retryAtTicks;

    public ResilientBudgetCounterStore(
        RedisBudgetCounterStore redis, InMemoryBudgetCounterStore local, RedisUnavailableMode mode, TimeSpan retryInterval,
        TimeProvider time, bool requireSeeded, ILogger<ResilientBudgetCounterStore> logger, RedisBudgetMetrics? metrics = null)
    {
        _redis = redis;
        _local = local;
        _mode = mode;
        _retryInterval = retryInterval;
        _time = time;
        _requireSeeded = requireSeeded;
        _logger = logger;
        _metrics = metrics;
        metrics?.Observe(() => IsDegraded);
    }

    /// <summary>True while Redis is considered unreachable.</summary>
    public bool IsDegraded => Volatile.Read(ref _degraded);

    /// <summary>What happens to admission while Redis is unreachable.</summary>
    public RedisUnavailableMode Mode => _mode;

    /// <inheritdoc />
    public async ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (ShouldTryRedis())
        {
            try
            {
                if (IsDegraded)
                {
                    // Probe before deciding: Redis coming back starts a new episode, whose windows are seeded again first.
                    await _redis.GetSnapshotAsync(request.TeamId, null, request.TeamBudget.Window.Key, cancellationToken);
                    MarkHealthy();
                }

                if (NeedsSeed(request))
                {
                    return new ReserveResult { Unseeded = true };
                }

                var result = await _redis.TryReserveAsync(request, cancellationToken);
                MarkHealthy();
                return result;
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                MarkDegraded(ex);
            }
        }

        var hard = request.TeamBudget.Limits.Enforced || request.KeyBudget is { Limits.Enforced: true };
        if (_mode == RedisUnavailableMode.FailClosed && hard)
        {
            _metrics?.Fallback("refused");
            var scope = request.TeamBudget.Limits.Enforced ? "team" : "key";
            return new ReserveResult
            {
                Denial = new ReserveDenial(DenialReason.StoreUnavailable, scope, _retryInterval < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : _retryInterval,
                    $"The shared budget counters cannot be reached, and the {scope}'s budget is hard: requests are refused until they are back. Retry shortly."),
            };
        }

        if (NeedsSeed(request))
        {
            return new ReserveResult { Unseeded = true };
        }

        _metrics?.Fallback("local");
        var local = await _local.TryReserveAsync(request, cancellationToken);
        return local.Reservation is { } reservation ? local with { Reservation = reservation with { Id = LocalPrefix + reservation.Id } } : local;
    }

    /// <inheritdoc />
    public async ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        if (IsLocal(reservation, out var local))
        {
            return await _local.SettleAsync(local, actualUsdMicros, actualTokens, cancellationToken);
        }

        try
        {
            var result = await _redis.SettleAsync(reservation, actualUsdMicros, actualTokens, cancellationToken);
            MarkHealthy();
            return result;
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            MarkDegraded(ex);
            LogSettleLost(_logger, reservation.TeamId);
            return await _local.SettleAsync(reservation, actualUsdMicros, actualTokens, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        if (IsLocal(reservation, out var local))
        {
            await _local.ReleaseAsync(local, cancellationToken);
            return;
        }

        try
        {
            await _redis.ReleaseAsync(reservation, cancellationToken);
            MarkHealthy();
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            MarkDegraded(ex); // the hold expires in Redis after its TTL
        }
    }

    /// <inheritdoc />
    public async ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken)
    {
        if (ShouldTryRedis())
        {
            try
            {
                var counters = await _redis.GetSnapshotAsync(teamId, keyId, periodKey, cancellationToken);
                MarkHealthy();
                return counters;
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                MarkDegraded(ex);
            }
        }

        return await _local.GetSnapshotAsync(teamId, keyId, periodKey, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken)
    {
        // The local store is always seeded too: it is what admission falls back to.
        await _local.SeedSpentAsync(teamId, keyId, window, spentUsdMicros, spentTokens, cancellationToken);
        if (ShouldTryRedis())
        {
            try
            {
                await _redis.SeedSpentAsync(teamId, keyId, window, spentUsdMicros, spentTokens, cancellationToken);
                MarkHealthy();
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                MarkDegraded(ex);
            }
        }

        if (keyId is null)
        {
            _seededInEpisode[SeedKey(teamId, window.Key)] = Volatile.Read(ref _episode);
        }
    }

    /// <inheritdoc />
    public async ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken)
    {
        var reaped = await _local.ReapExpiredAsync(cancellationToken);
        if (ShouldTryRedis())
        {
            try
            {
                reaped += await _redis.ReapExpiredAsync(cancellationToken);
                MarkHealthy();
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                MarkDegraded(ex);
            }
        }

        return reaped;
    }

    public void Dispose() => _local.Dispose();

    internal static bool IsUnavailable(Exception ex) => ex switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException => true,
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal),
        _ => false,
    };

    private static string SeedKey(string teamId, string windowKey) => teamId + "\n" + windowKey;

    private static bool IsLocal(BudgetReservation reservation, out BudgetReservation local)
    {
        if (reservation.Id.StartsWith(LocalPrefix, StringComparison.Ordinal))
        {
            local = reservation with { Id = reservation.Id[LocalPrefix.Length..] };
            return true;
        }

        local = reservation;
        return false;
    }

    private bool NeedsSeed(ReserveRequest request)
    {
        var episode = Volatile.Read(ref _episode);
        return _requireSeeded && episode > 0
            && (!_seededInEpisode.TryGetValue(SeedKey(request.TeamId, request.TeamBudget.Window.Key), out var seeded) || seeded != episode);
    }

    private bool ShouldTryRedis()
    {
        if (!Volatile.Read(ref _degraded))
        {
            return true;
        }

        // One caller per interval probes Redis; the rest use the fallback without waiting on a dead connection.
        var now = _time.GetTimestamp();
        var retryAt = Interlocked.Read(ref _retryAtTicks);
        return now >= retryAt && Interlocked.CompareExchange(ref _retryAtTicks, now + (long)(_retryInterval.TotalSeconds * _time.TimestampFrequency), retryAt) == retryAt;
    }

    private void MarkHealthy()
    {
        if (!Volatile.Read(ref _degraded))
        {
            return;
        }

        lock (_gate)
        {
            if (!_degraded)
            {
                return;
            }

            Interlocked.Increment(ref _episode);
            Volatile.Write(ref _degraded, false);
        }

        LogRecovered(_logger);
    }

    private void MarkDegraded(Exception ex)
    {
        Interlocked.Exchange(ref _retryAtTicks, _time.GetTimestamp() + (long)(_retryInterval.TotalSeconds * _time.TimestampFrequency));
        if (Volatile.Read(ref _degraded))
        {
            return;
        }

        lock (_gate)
        {
            if (_degraded)
            {
                return;
            }

            Interlocked.Increment(ref _episode);
            Volatile.Write(ref _degraded, true);
        }

        LogDegraded(_logger, _mode, ex.GetType().Name, ex.Message);
    }

    [LoggerMessage(2050, LogLevel.Warning, "Budget counters: Redis is unreachable; admission now runs in {Mode} mode ({Error}: {Message})")]
    private static partial void LogDegraded(ILogger logger, RedisUnavailableMode mode, string error, string message);

    [LoggerMessage(2051, LogLevel.Information, "Budget counters: Redis is reachable again; windows are re-seeded from the ledger on their next request")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(2052, LogLevel.Warning, "Budget counters: a settle for team {TeamId} could not reach Redis; charged to local counters (its Redis hold expires after the reservation TTL)")]
    private static partial void LogSettleLost(ILogger logger, string teamId);
}
