using System.Globalization;
using StackExchange.Redis;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Redis.Budgets;

/// <summary>
/// <see cref="IBudgetCounterStore"/> on Redis for many replicas: each operation is one Lua script
/// (<see cref="BudgetScripts"/>) over the team's hash-tagged keys, so check-then-commit is atomic across every replica
/// exactly as <see cref="InMemoryBudgetCounterStore"/>'s per-team lock is within one process (same arithmetic, same
/// denials). Redis errors propagate; <see cref="ResilientBudgetCounterStore"/> decides what happens then.
/// </summary>
internal sealed class RedisBudgetCounterStore : IBudgetCounterStore
{
    // Ended windows are kept this long so late settles still land on a live counter (as in the in-memory store).
    private static readonly long _retentionMs = (long)TimeSpan.FromHours(1).TotalMilliseconds;

    private static readonly RedisScript _reserve = new(BudgetScripts.Reserve);
    private static readonly RedisScript _settle = new(BudgetScripts.Settle);
    private static readonly RedisScript _release = new(BudgetScripts.Release);
    private static readonly RedisScript _snapshot = new(BudgetScripts.Snapshot);
    private static readonly RedisScript _seed = new(BudgetScripts.Seed);
    private static readonly RedisScript _reap = new(BudgetScripts.Reap);

    private readonly IConnectionMultiplexer _redis;
    private readonly string _prefix;
    private readonly TimeProvider? _clock;
    private readonly bool _requireSeeded;
    private readonly TimeSpan _defaultTtl;

    /// <summary>Creates the store.</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="prefix">Key prefix (<see cref="RedisOptions.KeyPrefix"/>).</param>
    /// <param name="clock">Null = Redis <c>TIME</c> (production); a clock = that clock (tests).</param>
    /// <param name="requireSeeded">
    /// True when admission seeds windows from a ledger: a window without the seeded marker (Redis lost it) is then
    /// reported as <see cref="ReserveResult.Unseeded"/> instead of being decided from zero.
    /// </param>
    /// <param name="reservationTtl">The reservation TTL, used to keep window hashes alive past their end.</param>
    public RedisBudgetCounterStore(IConnectionMultiplexer redis, string prefix, TimeProvider? clock, bool requireSeeded, TimeSpan reservationTtl)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(prefix);
        _redis = redis;
        _prefix = prefix;
        _clock = clock;
        _requireSeeded = requireSeeded;
        _defaultTtl = reservationTtl;
    }

    private IDatabase Database => _redis.GetDatabase();

    /// <inheritdoc />
    public async ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var keys = new RedisKeys(_prefix, request.TeamId);
        var keyBudget = request.KeyBudget is { } kb && request.KeyId is not null ? kb : (BudgetLine?)null;
        var id = "r" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 10));
        var ttlMs = (long)request.Ttl.TotalMilliseconds;
        RedisKey[] redisKeys =
        [
            keys.Window(null, request.TeamBudget.Window.Key),
            keyBudget is { } k ? keys.Window(request.KeyId, k.Window.Key) : keys.Unused,
            keys.Rate(null),
            request.KeyId is not null ? keys.Rate(request.KeyId) : keys.Unused,
            keys.Reservations,
            keys.ReservationData,
        ];
        var team = request.TeamBudget.Limits;
        var key = keyBudget?.Limits;
        RedisValue[] args =
        [
            Now(),
            id,
            ttlMs,
            request.TeamBudget.Window.End.ToUnixTimeMilliseconds(),
            keyBudget?.Window.End.ToUnixTimeMilliseconds() ?? 0,
            Flag(keyBudget is not null),
            request.InputTokens,
            request.InputCostMicros,
            request.MaxOutputTokens,
            request.MinOutputTokens,
            request.OutputMicrosPerMillion,
            Flag(team.Hard),
            Optional(team.UsdMicros),
            Optional(team.Tokens),
            Flag(key?.Hard ?? false),
            Optional(key?.UsdMicros),
            Optional(key?.Tokens),
            Optional(request.TeamRate.RequestsPerMinute),
            Optional(request.TeamRate.TokensPerMinute),
            Optional(request.KeyRate?.RequestsPerMinute),
            Optional(request.KeyRate?.TokensPerMinute),
            Flag(request.KeyId is not null),
            Flag(_requireSeeded),
            _retentionMs,
        ];

        var raw = (RedisResult[])(await _reserve.EvaluateAsync(Database, redisKeys, args).ConfigureAwait(false))!; // the script always returns an array
        var outcome = (string)raw[0]!;
        if (outcome == "unseeded")
        {
            return new ReserveResult { Unseeded = true };
        }

        var now = DateTimeOffset.FromUnixTimeMilliseconds(Long(raw[1]));
        var scope = (string)raw[2]!;
        var blocked = (string)raw[3]! == "1";
        var granted = Long(raw[4]);
        var teamUsed = (Usd: Long(raw[5]) + Long(raw[6]), Tokens: Long(raw[7]) + Long(raw[8]));
        var keyUsed = (Usd: Long(raw[9]) + Long(raw[10]), Tokens: Long(raw[11]) + Long(raw[12]));
        var teamRpm = Bucket(raw[13], raw[14]);
        var teamTpm = Bucket(raw[15], raw[16]);
        var keyRpm = Bucket(raw[17], raw[18]);
        var keyTpm = Bucket(raw[19], raw[20]);
        var rateTokens = request.InputTokens + granted;

        ReserveDenial? denial = outcome switch
        {
            "ok" => null,
            "budget" => BudgetDenial(request, keyBudget, scope, blocked, (string)raw[22]!, now),
            "rpm" => RpmDenial(scope, scope == "key" ? keyRpm : teamRpm, scope == "key" ? request.KeyRate!.Value.RequestsPerMinute!.Value : request.TeamRate.RequestsPerMinute!.Value),
            "tpmx" => new ReserveDenial(DenialReason.TokensPerMinuteExceedsLimit, scope, TimeSpan.FromMinutes(1),
                $"This request needs {rateTokens} tokens (input + max_tokens), more than the {scope}'s limit of {TpmLimit(request, scope)} tokens per minute; lower max_tokens or shorten the input."),
            "tpm" => new ReserveDenial(DenialReason.TokensPerMinute, scope, (scope == "key" ? keyTpm : teamTpm)!.Value.TimeUntil(rateTokens),
                $"The {scope}'s limit of {TpmLimit(request, scope)} tokens per minute is reached."),
            _ => throw new InvalidOperationException("Unexpected reserve outcome '" + outcome + "'."),
        };

        BudgetReservation? reservation = null;
        if (denial is null)
        {
            reservation = new BudgetReservation
            {
                Id = id,
                TeamId = request.TeamId,
                KeyId = request.KeyId,
                TeamWindow = request.TeamBudget.Window,
                KeyWindow = keyBudget?.Window,
                UsdMicros = checked(request.InputCostMicros + UsdMicros.CostOf(granted, request.OutputMicrosPerMillion)),
                Tokens = request.InputTokens + granted,
                OutputTokens = (int)granted,
                RateTokens = rateTokens,
                ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(Long(raw[21])),
            };
        }

        return new ReserveResult
        {
            Reservation = reservation,
            Denial = denial,
            Requests = Binding(teamRpm, request.TeamRate.RequestsPerMinute, keyRpm, request.KeyRate?.RequestsPerMinute),
            Tokens = Binding(teamTpm, request.TeamRate.TokensPerMinute, keyTpm, request.KeyRate?.TokensPerMinute),
            RemainingUsdMicros = InMemoryBudgetCounterStore.Remaining(team.UsdMicros, teamUsed.Usd, key?.UsdMicros, keyUsed.Usd),
            RemainingTokens = InMemoryBudgetCounterStore.Remaining(team.Tokens, teamUsed.Tokens, key?.Tokens, keyUsed.Tokens),
        };
    }

    /// <inheritdoc />
    public async ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        actualUsdMicros = Math.Max(0, actualUsdMicros);
        actualTokens = Math.Max(0, actualTokens);
        var redisKeys = ReservationKeys(reservation, out var keyWindow);
        RedisValue[] args =
        [
            Now(),
            reservation.Id,
            reservation.UsdMicros,
            reservation.Tokens,
            actualUsdMicros,
            actualTokens,
            reservation.RateTokens - actualTokens, // correct the tokens-per-minute estimate to what was used
            Flag(keyWindow is not null),
            Flag(reservation.KeyId is not null),
            reservation.TeamWindow.End.ToUnixTimeMilliseconds(),
            keyWindow?.End.ToUnixTimeMilliseconds() ?? 0,
            _retentionMs + (long)_defaultTtl.TotalMilliseconds,
        ];
        var raw = (RedisResult[])(await _settle.EvaluateAsync(Database, redisKeys, args).ConfigureAwait(false))!; // always an array
        var team = new SpendChange(Long(raw[1]), Long(raw[2]), Long(raw[3]), Long(raw[4]));
        SpendChange? key = keyWindow is null ? null : new SpendChange(Long(raw[5]), Long(raw[6]), Long(raw[7]), Long(raw[8]));
        return new SettleResult((string)raw[0]! == "1", team, key);
    }

    /// <inheritdoc />
    public async ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        var redisKeys = ReservationKeys(reservation, out var keyWindow);
        RedisValue[] args =
        [
            Now(),
            reservation.Id,
            reservation.UsdMicros,
            reservation.Tokens,
            reservation.RateTokens,
            Flag(keyWindow is not null),
            Flag(reservation.KeyId is not null),
        ];
        await _release.EvaluateAsync(Database, redisKeys, args).ConfigureAwait(false);
    }

    /// <summary>
    /// The keys the settle and release scripts take (reservation set and data, team and key windows, team and key
    /// buckets), and the key window the reservation holds: none when it had no key or no key budget.
    /// </summary>
    private RedisKey[] ReservationKeys(BudgetReservation reservation, out BudgetWindow? keyWindow)
    {
        var keys = new RedisKeys(_prefix, reservation.TeamId);
        keyWindow = reservation.KeyWindow is { } kw && reservation.KeyId is not null ? kw : null;
        return
        [
            keys.Reservations,
            keys.ReservationData,
            keys.Window(null, reservation.TeamWindow.Key),
            keyWindow is { } w ? keys.Window(reservation.KeyId, w.Key) : keys.Unused,
            keys.Rate(null),
            reservation.KeyId is not null ? keys.Rate(reservation.KeyId) : keys.Unused,
        ];
    }

    /// <inheritdoc />
    public async ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        ArgumentNullException.ThrowIfNull(periodKey);
        var keys = new RedisKeys(_prefix, teamId);
        var raw = (RedisResult[])(await _snapshot.EvaluateAsync(Database, [keys.Reservations, keys.ReservationData, keys.Window(keyId, periodKey)], [Now()]).ConfigureAwait(false))!;
        return new BudgetCounters(Long(raw[0]), Long(raw[1]), Long(raw[2]), Long(raw[3]), (int)Long(raw[4]));
    }

    /// <inheritdoc />
    public async ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        var keys = new RedisKeys(_prefix, teamId);
        await _seed.EvaluateAsync(Database, [keys.Window(keyId, window.Key)],
            [Now(), spentUsdMicros, spentTokens, window.End.ToUnixTimeMilliseconds(), _retentionMs + (long)_defaultTtl.TotalMilliseconds]).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Scans the primaries for reservation sets under the prefix; a reservation also disappears lazily when its team reserves or is read.</remarks>
    public async ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken)
    {
        var reaped = 0;
        var pattern = _prefix + "{*}:res";
        foreach (var server in _redis.GetServers())
        {
            if (!server.IsConnected || server.IsReplica)
            {
                continue;
            }

            await foreach (var set in server.KeysAsync(pattern: pattern, pageSize: 500).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                var data = (RedisKey)((string)set! + "d");
                reaped += (int)(await _reap.EvaluateAsync(Database, [set, data], [Now()]).ConfigureAwait(false));
            }
        }

        return reaped;
    }

    private RedisValue Now() => _clock is null ? RedisValue.EmptyString : _clock.GetUtcNow().ToUnixTimeMilliseconds();

    private static RedisValue Flag(bool value) => value ? "1" : "0";

    private static RedisValue Optional(long? value) => value is { } v ? v : RedisValue.EmptyString;

    private static long Long(RedisResult value) => long.Parse((string)value!, NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static BucketState? Bucket(RedisResult level, RedisResult capacity)
    {
        var l = (string?)level;
        return string.IsNullOrEmpty(l)
            ? null
            : new BucketState(double.Parse(l, NumberStyles.Float, CultureInfo.InvariantCulture), (long)double.Parse((string)capacity!, NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    private static long TpmLimit(ReserveRequest request, string scope) =>
        (scope == "key" ? request.KeyRate!.Value.TokensPerMinute : request.TeamRate.TokensPerMinute)!.Value; // the script denied on this limit

    private static ReserveDenial BudgetDenial(ReserveRequest request, BudgetLine? keyBudget, string scope, bool blocked, string detail, DateTimeOffset now)
    {
        var window = scope == "key" && keyBudget is { } kb ? kb.Window : request.TeamBudget.Window;
        var message = detail switch
        {
            "usd" => $"The {scope}'s USD budget for this {InMemoryBudgetCounterStore.Describe(window.Period)} is exhausted.",
            "tokens" => $"The {scope}'s token budget for this {InMemoryBudgetCounterStore.Describe(window.Period)} is exhausted.",
            _ => "The remaining budget cannot cover a useful response.",
        };
        return InMemoryBudgetCounterStore.BudgetDenial(window, now, scope, blocked, message);
    }

    private static ReserveDenial RpmDenial(string scope, BucketState? bucket, int rpm) =>
        new(DenialReason.RequestsPerMinute, scope, bucket!.Value.TimeUntil(1), $"The {scope}'s limit of {rpm} requests per minute is reached."); // the script denied on this bucket

    private static RateStatus? Binding(BucketState? team, long? teamLimit, BucketState? key, long? keyLimit) =>
        InMemoryBudgetCounterStore.Binding(teamLimit is not null ? team?.Status() : null, keyLimit is not null ? key?.Status() : null);

    /// <summary>A bucket as the script left it, with <see cref="TokenBucket"/>'s arithmetic for headers and Retry-After.</summary>
    private readonly record struct BucketState(double Available, long Capacity)
    {
        public TimeSpan TimeUntil(long permits)
        {
            var missing = permits - Available;
            return missing <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Ceiling(Math.Round(missing * 60 * 1000 / Capacity, 6)));
        }

        public RateStatus Status() => new(Capacity, Math.Max(0, (long)Math.Floor(Available)), TimeUntil(Capacity));
    }
}
