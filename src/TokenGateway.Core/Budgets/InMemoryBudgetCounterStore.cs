using System.Collections.Concurrent;
using System.Globalization;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// Single-node <see cref="IBudgetCounterStore"/>: one lock per team guards all of that team's windows, key scopes,
/// buckets and open reservations, so every check-then-commit is atomic. A timer on the injected
/// <see cref="TimeProvider"/> reaps expired reservations; reservation also reaps lazily when one is due.
/// </summary>
internal sealed class InMemoryBudgetCounterStore : IBudgetCounterStore, IDisposable
{
    /// <summary>How often the reaper runs by default.</summary>
    public static readonly TimeSpan DefaultReapInterval = TimeSpan.FromSeconds(30);

    // Ended windows are kept this long so late settles still land on a live counter.
    private static readonly TimeSpan _windowRetention = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, TeamState> _teams = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ITimer _reaper;
    private long _sequence;

    /// <summary>Creates the store; the reaper runs every <paramref name="reapInterval"/> (default 30 s).</summary>
    public InMemoryBudgetCounterStore(TimeProvider time, TimeSpan? reapInterval = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        var interval = reapInterval ?? DefaultReapInterval;
        _reaper = time.CreateTimer(static state => ((InMemoryBudgetCounterStore)state!).ReapAll(), this, interval, interval);
    }

    /// <inheritdoc />
    public ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var team = _teams.GetOrAdd(request.TeamId, static _ => new TeamState());
        lock (team.Gate)
        {
            return ValueTask.FromResult(TryReserveLocked(team, request, _time.GetUtcNow()));
        }
    }

    /// <inheritdoc />
    public ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        actualUsdMicros = Math.Max(0, actualUsdMicros);
        actualTokens = Math.Max(0, actualTokens);
        var team = _teams.GetOrAdd(reservation.TeamId, static _ => new TeamState());
        lock (team.Gate)
        {
            var now = _time.GetUtcNow();
            var wasOpen = team.Open.Remove(reservation.Id);
            var teamChange = Charge(team.Scope(null).Window(reservation.TeamWindow, now), reservation, wasOpen, actualUsdMicros, actualTokens);
            SpendChange? keyChange = null;
            if (reservation.KeyWindow is { } keyWindow && reservation.KeyId is not null)
            {
                keyChange = Charge(team.Scope(reservation.KeyId).Window(keyWindow, now), reservation, wasOpen, actualUsdMicros, actualTokens);
            }

            if (wasOpen)
            {
                // Correct the tokens-per-minute estimate (input + max_tokens) to what was actually used.
                var correction = reservation.RateTokens - actualTokens;
                team.Scope(null).Tokens?.Adjust(correction);
                if (reservation.KeyId is not null && team.TryGetKeyScope(reservation.KeyId, out var keyScope))
                {
                    keyScope.Tokens?.Adjust(correction);
                }
            }

            return ValueTask.FromResult(new SettleResult(wasOpen, teamChange, keyChange));
        }
    }

    /// <inheritdoc />
    public ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        if (!_teams.TryGetValue(reservation.TeamId, out var team))
        {
            return ValueTask.CompletedTask;
        }

        lock (team.Gate)
        {
            if (team.Open.Remove(reservation.Id))
            {
                Unreserve(team, reservation, _time.GetUtcNow());
                team.Scope(null).Tokens?.Adjust(reservation.RateTokens);
                if (reservation.KeyId is not null && team.TryGetKeyScope(reservation.KeyId, out var keyScope))
                {
                    keyScope.Tokens?.Adjust(reservation.RateTokens);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        ArgumentNullException.ThrowIfNull(periodKey);
        if (!_teams.TryGetValue(teamId, out var team))
        {
            return ValueTask.FromResult(default(BudgetCounters));
        }

        lock (team.Gate)
        {
            ReapLocked(team, _time.GetUtcNow());
            var scope = keyId is null ? team.Scope(null) : team.TryGetKeyScope(keyId, out var ks) ? ks : null;
            if (scope is null || !scope.Windows.TryGetValue(periodKey, out var counter))
            {
                return ValueTask.FromResult(default(BudgetCounters));
            }

            return ValueTask.FromResult(new BudgetCounters(counter.SpentMicros, counter.ReservedMicros, counter.SpentTokens, counter.ReservedTokens, counter.OpenReservations));
        }
    }

    /// <inheritdoc />
    public ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        var team = _teams.GetOrAdd(teamId, static _ => new TeamState());
        lock (team.Gate)
        {
            var counter = team.Scope(keyId).Window(window, _time.GetUtcNow());
            counter.SpentMicros = Math.Max(counter.SpentMicros, spentUsdMicros);
            counter.SpentTokens = Math.Max(counter.SpentTokens, spentTokens);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken) => ValueTask.FromResult(ReapAll());

    /// <summary>Stops the reaper timer.</summary>
    public void Dispose() => _reaper.Dispose();

    private ReserveResult TryReserveLocked(TeamState team, ReserveRequest request, DateTimeOffset now)
    {
        if (now >= team.NextExpiry)
        {
            ReapLocked(team, now);
        }

        var teamScope = team.Scope(null);
        var keyScope = request.KeyId is null ? null : team.Scope(request.KeyId);
        var teamCounter = teamScope.Window(request.TeamBudget.Window, now);
        var keyCounter = request.KeyBudget is { } kb && keyScope is not null ? keyScope.Window(kb.Window, now) : null;

        // 1. Budgets: find the largest output every enforced window can afford, without writing anything.
        long granted = request.MaxOutputTokens;
        var denial = CheckBudget(request, request.TeamBudget, teamCounter, "team", now, ref granted)
            ?? (keyCounter is not null ? CheckBudget(request, request.KeyBudget!.Value, keyCounter, "key", now, ref granted) : null);
        if (denial is null && granted < request.MinOutputTokens)
        {
            denial = BudgetDenial(request.TeamBudget.Window, now, "team", blockedByInFlight: false, "The remaining budget cannot cover a useful response.");
        }

        if (denial is not null)
        {
            return Denied(denial, request, teamScope, keyScope, teamCounter, keyCounter, now);
        }

        // 2. Rate limits: check every bucket before taking from any.
        var rateTokens = request.InputTokens + granted;
        denial = CheckRate(teamScope, request.TeamRate, rateTokens, "team", now)
            ?? (keyScope is not null && request.KeyRate is { } keyRate ? CheckRate(keyScope, keyRate, rateTokens, "key", now) : null);
        if (denial is not null)
        {
            return Denied(denial, request, teamScope, keyScope, teamCounter, keyCounter, now);
        }

        // 3. Commit everything.
        var cost = checked(request.InputCostMicros + UsdMicros.CostOf(granted, request.OutputMicrosPerMillion));
        var tokens = request.InputTokens + granted;
        var reservation = new BudgetReservation
        {
            Id = Interlocked.Increment(ref _sequence).ToString("x", CultureInfo.InvariantCulture),
            TeamId = request.TeamId,
            KeyId = request.KeyId,
            TeamWindow = request.TeamBudget.Window,
            KeyWindow = keyCounter is not null ? request.KeyBudget!.Value.Window : null,
            UsdMicros = cost,
            Tokens = tokens,
            OutputTokens = (int)granted,
            RateTokens = rateTokens,
            ExpiresAt = now + request.Ttl,
        };
        Reserve(teamCounter, reservation);
        if (keyCounter is not null)
        {
            Reserve(keyCounter, reservation);
        }

        Take(teamScope, request.TeamRate, rateTokens);
        if (keyScope is not null && request.KeyRate is { } rate)
        {
            Take(keyScope, rate, rateTokens);
        }

        team.Open[reservation.Id] = reservation;
        if (reservation.ExpiresAt < team.NextExpiry)
        {
            team.NextExpiry = reservation.ExpiresAt;
        }

        return new ReserveResult
        {
            Reservation = reservation,
            Requests = BindingStatus(teamScope.Requests, request.TeamRate.RequestsPerMinute, keyScope?.Requests, request.KeyRate?.RequestsPerMinute),
            Tokens = BindingStatus(teamScope.Tokens, request.TeamRate.TokensPerMinute, keyScope?.Tokens, request.KeyRate?.TokensPerMinute),
            RemainingUsdMicros = Remaining(request.TeamBudget.Limits.UsdMicros, teamCounter.SpentMicros + teamCounter.ReservedMicros, request.KeyBudget?.Limits.UsdMicros, keyCounter is null ? 0 : keyCounter.SpentMicros + keyCounter.ReservedMicros),
            RemainingTokens = Remaining(request.TeamBudget.Limits.Tokens, teamCounter.SpentTokens + teamCounter.ReservedTokens, request.KeyBudget?.Limits.Tokens, keyCounter is null ? 0 : keyCounter.SpentTokens + keyCounter.ReservedTokens),
        };
    }

    private static ReserveDenial? CheckBudget(ReserveRequest request, BudgetLine line, WindowCounter counter, string scope, DateTimeOffset now, ref long granted)
    {
        var limits = line.Limits;
        if (!limits.Hard)
        {
            return null;
        }

        if (limits.UsdMicros is { } usdLimit)
        {
            var left = usdLimit - counter.SpentMicros - counter.ReservedMicros - request.InputCostMicros;
            if (left < 0 || UsdMicros.TokensAffordable(left, request.OutputMicrosPerMillion) < request.MinOutputTokens)
            {
                var withoutInFlight = usdLimit - counter.SpentMicros - request.InputCostMicros - UsdMicros.CostOf(request.MinOutputTokens, request.OutputMicrosPerMillion);
                return BudgetDenial(line.Window, now, scope, withoutInFlight >= 0 && counter.ReservedMicros > 0, $"The {scope}'s USD budget for this {Describe(line.Window.Period)} is exhausted.");
            }

            granted = Math.Min(granted, UsdMicros.TokensAffordable(left, request.OutputMicrosPerMillion));
        }

        if (limits.Tokens is { } tokenLimit)
        {
            var left = tokenLimit - counter.SpentTokens - counter.ReservedTokens - request.InputTokens;
            if (left < request.MinOutputTokens)
            {
                var withoutInFlight = tokenLimit - counter.SpentTokens - request.InputTokens - request.MinOutputTokens;
                return BudgetDenial(line.Window, now, scope, withoutInFlight >= 0 && counter.ReservedTokens > 0, $"The {scope}'s token budget for this {Describe(line.Window.Period)} is exhausted.");
            }

            granted = Math.Min(granted, left);
        }

        return null;
    }

    internal static ReserveDenial BudgetDenial(BudgetWindow window, DateTimeOffset now, string scope, bool blockedByInFlight, string message)
    {
        // When only in-flight reservations stand in the way, they settle (usually lower) within seconds.
        var retryAfter = blockedByInFlight ? TimeSpan.FromSeconds(1) : window.End - now;
        var suffix = blockedByInFlight ? " In-flight requests hold the rest; retry shortly." : $" It resets at {window.End.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}.";
        return new ReserveDenial(DenialReason.Budget, scope, retryAfter, message + suffix);
    }

    private static ReserveDenial? CheckRate(ScopeState scope, RateLimits limits, long rateTokens, string scopeName, DateTimeOffset now)
    {
        if (limits.RequestsPerMinute is { } rpm)
        {
            var bucket = scope.Requests ??= new TokenBucket(rpm, now);
            bucket.Refill(rpm, now);
            if (!bucket.CanTake(1))
            {
                return new ReserveDenial(DenialReason.RequestsPerMinute, scopeName, bucket.TimeUntil(1), $"The {scopeName}'s limit of {rpm} requests per minute is reached.");
            }
        }

        if (limits.TokensPerMinute is { } tpm)
        {
            if (rateTokens > tpm)
            {
                return new ReserveDenial(DenialReason.TokensPerMinuteExceedsLimit, scopeName, TimeSpan.FromMinutes(1), $"This request needs {rateTokens} tokens (input + max_tokens), more than the {scopeName}'s limit of {tpm} tokens per minute; lower max_tokens or shorten the input.");
            }

            var bucket = scope.Tokens ??= new TokenBucket(tpm, now);
            bucket.Refill(tpm, now);
            if (!bucket.CanTake(rateTokens))
            {
                return new ReserveDenial(DenialReason.TokensPerMinute, scopeName, bucket.TimeUntil(rateTokens), $"The {scopeName}'s limit of {tpm} tokens per minute is reached.");
            }
        }

        return null;
    }

    private static void Take(ScopeState scope, RateLimits limits, long rateTokens)
    {
        if (limits.RequestsPerMinute is not null)
        {
            scope.Requests!.Take(1); // created and refilled by CheckRate under the same lock
        }

        if (limits.TokensPerMinute is not null)
        {
            scope.Tokens!.Take(rateTokens); // created and refilled by CheckRate under the same lock
        }
    }

    private static ReserveResult Denied(ReserveDenial denial, ReserveRequest request, ScopeState teamScope, ScopeState? keyScope, WindowCounter teamCounter, WindowCounter? keyCounter, DateTimeOffset now)
    {
        // Refresh buckets (read-only with respect to quota) so the headers show the current state.
        RefreshOnly(teamScope, request.TeamRate, now);
        if (keyScope is not null && request.KeyRate is { } keyRate)
        {
            RefreshOnly(keyScope, keyRate, now);
        }

        return new ReserveResult
        {
            Denial = denial,
            Requests = BindingStatus(teamScope.Requests, request.TeamRate.RequestsPerMinute, keyScope?.Requests, request.KeyRate?.RequestsPerMinute),
            Tokens = BindingStatus(teamScope.Tokens, request.TeamRate.TokensPerMinute, keyScope?.Tokens, request.KeyRate?.TokensPerMinute),
            RemainingUsdMicros = Remaining(request.TeamBudget.Limits.UsdMicros, teamCounter.SpentMicros + teamCounter.ReservedMicros, request.KeyBudget?.Limits.UsdMicros, keyCounter is null ? 0 : keyCounter.SpentMicros + keyCounter.ReservedMicros),
            RemainingTokens = Remaining(request.TeamBudget.Limits.Tokens, teamCounter.SpentTokens + teamCounter.ReservedTokens, request.KeyBudget?.Limits.Tokens, keyCounter is null ? 0 : keyCounter.SpentTokens + keyCounter.ReservedTokens),
        };
    }

    private static void RefreshOnly(ScopeState scope, RateLimits limits, DateTimeOffset now)
    {
        if (limits.RequestsPerMinute is { } rpm)
        {
            (scope.Requests ??= new TokenBucket(rpm, now)).Refill(rpm, now);
        }

        if (limits.TokensPerMinute is { } tpm)
        {
            (scope.Tokens ??= new TokenBucket(tpm, now)).Refill(tpm, now);
        }
    }

    private static RateStatus? BindingStatus(TokenBucket? team, long? teamLimit, TokenBucket? key, long? keyLimit) =>
        Binding(teamLimit is not null ? team?.Status() : null, keyLimit is not null ? key?.Status() : null);

    /// <summary>
    /// The rate status that binds (shared with the Redis store): the key's when it has fewer permits left than the
    /// team's, else the team's; null when neither scope has the limit.
    /// </summary>
    internal static RateStatus? Binding(RateStatus? team, RateStatus? key) =>
        key is { } k && (team is not { } t || k.Remaining < t.Remaining) ? k : team;

    /// <summary>What is left of the tighter of the team and key limits (shared with the Redis store); null when neither has one.</summary>
    internal static long? Remaining(long? teamLimit, long teamUsed, long? keyLimit, long keyUsed)
    {
        long? result = teamLimit is { } t ? Math.Max(0, t - teamUsed) : null;
        if (keyLimit is { } k)
        {
            var keyLeft = Math.Max(0, k - keyUsed);
            result = result is null ? keyLeft : Math.Min(result.Value, keyLeft);
        }

        return result;
    }

    private static void Reserve(WindowCounter counter, BudgetReservation reservation)
    {
        counter.ReservedMicros += reservation.UsdMicros;
        counter.ReservedTokens += reservation.Tokens;
        counter.OpenReservations++;
    }

    private static SpendChange Charge(WindowCounter counter, BudgetReservation reservation, bool wasOpen, long actualMicros, long actualTokens)
    {
        if (wasOpen)
        {
            counter.ReservedMicros -= reservation.UsdMicros;
            counter.ReservedTokens -= reservation.Tokens;
            counter.OpenReservations--;
        }

        var change = new SpendChange(counter.SpentMicros, counter.SpentMicros + actualMicros, counter.SpentTokens, counter.SpentTokens + actualTokens);
        counter.SpentMicros += actualMicros;
        counter.SpentTokens += actualTokens;
        return change;
    }

    private static void Unreserve(TeamState team, BudgetReservation reservation, DateTimeOffset now)
    {
        var teamCounter = team.Scope(null).Window(reservation.TeamWindow, now);
        teamCounter.ReservedMicros -= reservation.UsdMicros;
        teamCounter.ReservedTokens -= reservation.Tokens;
        teamCounter.OpenReservations--;
        if (reservation.KeyWindow is { } keyWindow && reservation.KeyId is not null)
        {
            var keyCounter = team.Scope(reservation.KeyId).Window(keyWindow, now);
            keyCounter.ReservedMicros -= reservation.UsdMicros;
            keyCounter.ReservedTokens -= reservation.Tokens;
            keyCounter.OpenReservations--;
        }
    }

    private int ReapAll()
    {
        var now = _time.GetUtcNow();
        var reaped = 0;
        foreach (var team in _teams.Values)
        {
            lock (team.Gate)
            {
                reaped += ReapLocked(team, now);
            }
        }

        return reaped;
    }

    private static int ReapLocked(TeamState team, DateTimeOffset now)
    {
        var next = DateTimeOffset.MaxValue;
        List<BudgetReservation>? expired = null;
        foreach (var reservation in team.Open.Values)
        {
            if (reservation.ExpiresAt <= now)
            {
                (expired ??= []).Add(reservation);
            }
            else if (reservation.ExpiresAt < next)
            {
                next = reservation.ExpiresAt;
            }
        }

        team.NextExpiry = next;
        if (expired is null)
        {
            return 0;
        }

        foreach (var reservation in expired)
        {
            team.Open.Remove(reservation.Id);
            Unreserve(team, reservation, now);
        }

        return expired.Count;
    }

    internal static string Describe(BudgetPeriod period) => period switch
    {
        BudgetPeriod.Day => "day",
        BudgetPeriod.Week => "week",
        _ => "month",
    };

    private sealed class TeamState
    {
        private readonly ScopeState _team = new();
        private Dictionary<string, ScopeState>? _keys;

        public Lock Gate { get; } = new();

        public Dictionary<string, BudgetReservation> Open { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset NextExpiry { get; set; } = DateTimeOffset.MaxValue;

        public ScopeState Scope(string? keyId)
        {
            if (keyId is null)
            {
                return _team;
            }

            _keys ??= new Dictionary<string, ScopeState>(StringComparer.Ordinal);
            if (!_keys.TryGetValue(keyId, out var scope))
            {
                scope = new ScopeState();
                _keys[keyId] = scope;
            }

            return scope;
        }

        public bool TryGetKeyScope(string keyId, out ScopeState scope)
        {
            scope = null!;
            return _keys is not null && _keys.TryGetValue(keyId, out scope!);
        }
    }

    private sealed class ScopeState
    {
        public Dictionary<string, WindowCounter> Windows { get; } = new(StringComparer.Ordinal);

        public TokenBucket? Requests { get; set; }

        public TokenBucket? Tokens { get; set; }

        public WindowCounter Window(BudgetWindow window, DateTimeOffset now)
        {
            if (Windows.TryGetValue(window.Key, out var counter))
            {
                return counter;
            }

            // Drop long-ended windows with nothing in flight before adding a new one.
            foreach (var (key, old) in Windows)
            {
                if (old.End + _windowRetention < now && old.OpenReservations == 0)
                {
                    Windows.Remove(key);
                }
            }

            counter = new WindowCounter(window.End);
            Windows[window.Key] = counter;
            return counter;
        }
    }

    private sealed class WindowCounter(DateTimeOffset end)
    {
        public DateTimeOffset End { get; } = end;

        public long SpentMicros { get; set; }

        public long ReservedMicros { get; set; }

        public long SpentTokens { get; set; }

        public long ReservedTokens { get; set; }

        public int OpenReservations { get; set; }
    }
}
