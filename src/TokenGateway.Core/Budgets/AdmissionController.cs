using System.Globalization;
using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// Admits or rejects one LLM request: model rules, <c>max_tokens</c> default/cap/lowering, and one atomic
/// reservation of budget and rate quota; settles leases and raises soft alerts once per window.
/// </summary>
public sealed class AdmissionController
{
    private readonly IBudgetCounterStore _store;
    private readonly BudgetSpentLoader _loader;
    private readonly ISoftAlertSink _alerts;
    private readonly SoftAlertTracker _tracker;
    private readonly TimeProvider _time;
    private readonly AdmissionOptions _options;
    private readonly PricingOptions _pricing;

    /// <summary>Creates the controller.</summary>
    /// <param name="store">The budget and rate counters.</param>
    /// <param name="loader">Seeds a period's spend from the ledger.</param>
    /// <param name="alerts">Where soft alerts go.</param>
    /// <param name="tracker">Fires each soft alert once per window.</param>
    /// <param name="time">The clock.</param>
    /// <param name="options">Reservation and lowering settings (<c>Budgets</c>).</param>
    /// <param name="pricing">
    /// How unpriced models are charged (<c>Pricing</c>): the same settings the cost calculator settles with, so a
    /// reservation and its settlement use one price. Null = the defaults (unpriced models refused under a USD budget).
    /// </param>
    internal AdmissionController(IBudgetCounterStore store, BudgetSpentLoader loader, ISoftAlertSink alerts, SoftAlertTracker tracker, TimeProvider time, AdmissionOptions options, PricingOptions? pricing = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(alerts);
        ArgumentNullException.ThrowIfNull(tracker);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _loader = loader;
        _alerts = alerts;
        _tracker = tracker;
        _time = time;
        _options = options;
        _pricing = pricing ?? new PricingOptions();
    }

    /// <summary>Decides whether the request may be forwarded and, if so, reserves its worst-case cost.</summary>
    public async ValueTask<AdmissionDecision> AdmitAsync(AdmissionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = _time.GetUtcNow();
        var plan = AdmissionPlanner.Plan(request, _options, _pricing, _options.ReservationTtl, now);
        if (plan.Reserve is not { } reserve)
        {
            return new AdmissionDecision { Error = plan.Error, Message = plan.Message };
        }

        await _loader.EnsureSeededAsync(reserve.TeamId, null, reserve.TeamBudget.Window, cancellationToken);
        if (reserve.KeyBudget is { } keyLine)
        {
            await _loader.EnsureSeededAsync(reserve.TeamId, reserve.KeyId, keyLine.Window, cancellationToken);
        }

        var result = await _store.TryReserveAsync(reserve, cancellationToken);
        if (result.Unseeded)
        {
            // The shared store lost this window (Redis restarted empty): rebuild it from the ledger (max semantics, so
            // replicas doing the same agree), then decide. A second loss in between is refused as unavailable.
            await _loader.ReseedAsync(reserve.TeamId, null, reserve.TeamBudget.Window, cancellationToken);
            if (reserve.KeyBudget is { } lostKeyLine)
            {
                await _loader.ReseedAsync(reserve.TeamId, reserve.KeyId, lostKeyLine.Window, cancellationToken);
            }

            result = await _store.TryReserveAsync(reserve, cancellationToken);
            if (result.Unseeded)
            {
                result = new ReserveResult { Denial = new ReserveDenial(DenialReason.StoreUnavailable, "team", TimeSpan.FromSeconds(1), "The budget counters are being rebuilt; retry shortly.") };
            }
        }

        var headers = new List<KeyValuePair<string, string>>(); // no array until a limit adds a header
        AddStateHeaders(headers, result);
        if (result.Reservation is not { } reservation)
        {
            // Invariant: a result without a reservation carries a denial.
            var denial = result.Denial!;
            headers.Add(new(AdmissionHeaders.RetryAfter, RetryAfterSeconds(denial.RetryAfter)));
            return new AdmissionDecision
            {
                Error = denial.Reason switch
                {
                    DenialReason.Budget => GatewayError.BudgetExceeded,
                    DenialReason.StoreUnavailable => GatewayError.BudgetUnavailable,
                    _ => GatewayError.RateLimited,
                },
                Message = denial.Message,
                RetryAfter = denial.RetryAfter,
                DenialReason = denial.Reason,
                Headers = headers,
            };
        }

        // The reservation's output covers every choice; max_tokens applies to each one.
        var perChoice = reservation.OutputTokens / plan.Choices;
        var lowered = reservation.OutputTokens < reserve.MaxOutputTokens;
        var effective = request.Model.Kind == Models.ModelKind.Embedding ? (int?)null : plan.MaxTokensToSend ?? request.RequestedMaxTokens ?? perChoice;
        var toSend = plan.MaxTokensToSend;
        if (lowered)
        {
            effective = perChoice;
            toSend = perChoice;
        }

        if (lowered || plan.CappedByPolicy)
        {
            headers.Add(new(AdmissionHeaders.MaxTokensLowered, effective!.Value.ToString(CultureInfo.InvariantCulture))); // set: lowering only happens for chat models
        }

        return new AdmissionDecision
        {
            Lease = new AdmissionLease(this, request.Policy, reservation),
            EffectiveMaxTokens = effective,
            MaxTokensToSend = toSend,
            MaxTokensLowered = lowered,
            Headers = headers,
        };
    }

    /// <summary>The current window's spend for a team (or, with a key budget, the team scope only).</summary>
    public async ValueTask<BudgetSnapshot> GetBudgetAsync(EffectivePolicy policy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var limits = policy.TeamBudget;
        var window = BudgetPeriods.Current(limits.Period, _time.GetUtcNow());
        await _loader.EnsureSeededAsync(policy.TeamId, null, window, cancellationToken);
        var counters = await _store.GetSnapshotAsync(policy.TeamId, null, window.Key, cancellationToken);
        return new BudgetSnapshot
        {
            Period = PeriodName(limits.Period),
            SpentUsd = UsdMicros.ToUsd(counters.SpentUsdMicros),
            ReservedUsd = UsdMicros.ToUsd(counters.ReservedUsdMicros),
            RemainingUsd = limits.UsdMicros is { } usd ? UsdMicros.ToUsd(Math.Max(0, usd - counters.SpentUsdMicros - counters.ReservedUsdMicros)) : null,
            SpentTokens = counters.SpentTokens,
            ResetsAt = window.ResetsAt,
            PeriodStart = window.Start,
            BudgetUsd = limits.UsdMicros is { } b ? UsdMicros.ToUsd(b) : null,
            BudgetTokens = limits.Tokens,
            ReservedTokens = counters.ReservedTokens,
            RemainingTokens = limits.Tokens is { } t ? Math.Max(0, t - counters.SpentTokens - counters.ReservedTokens) : null,
            OpenReservations = counters.OpenReservations,
            Hard = limits.Hard,
        };
    }

    internal async ValueTask SettleAsync(EffectivePolicy policy, BudgetReservation reservation, long actualMicros, long actualTokens, CancellationToken cancellationToken)
    {
        var result = await _store.SettleAsync(reservation, actualMicros, actualTokens, cancellationToken);
        var now = _time.GetUtcNow();
        CheckSoftAlert(reservation.TeamId, null, reservation.TeamWindow, policy.TeamBudget, result.Team, now);
        if (result.Key is { } keyChange && reservation.KeyWindow is { } keyWindow && policy.KeyBudget is { } keyLimits)
        {
            CheckSoftAlert(reservation.TeamId, reservation.KeyId, keyWindow, keyLimits, keyChange, now);
        }
    }

    internal ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken) => _store.ReleaseAsync(reservation, cancellationToken);

    internal static string FormatReset(TimeSpan value)
    {
        // The format OpenAI uses in x-ratelimit-reset-*: 250ms, 1.5s, 6m0s, 1h2m3s.
        if (value <= TimeSpan.Zero)
        {
            return "0s";
        }

        if (value < TimeSpan.FromSeconds(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(value.TotalMilliseconds):0}ms");
        }

        if (value < TimeSpan.FromMinutes(1))
        {
            var ms = (long)Math.Ceiling(value.TotalMilliseconds);
            return ms % 1000 == 0
                ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000}s")
                : string.Create(CultureInfo.InvariantCulture, $"{ms / 1000}.{(ms % 1000).ToString("D3", CultureInfo.InvariantCulture).TrimEnd('0')}s");
        }

        var seconds = (long)Math.Ceiling(value.TotalSeconds);
        var hours = seconds / 3600;
        var minutes = seconds % 3600 / 60;
        var rest = seconds % 60;
        return hours > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{hours}h{minutes}m{rest}s")
            : string.Create(CultureInfo.InvariantCulture, $"{minutes}m{rest}s");
    }

    internal static string RetryAfterSeconds(TimeSpan value) =>
        Math.Max(1, (long)Math.Ceiling(value.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private static void AddStateHeaders(List<KeyValuePair<string, string>> headers, ReserveResult result)
    {
        if (result.Requests is { } requests)
        {
            headers.Add(new(AdmissionHeaders.LimitRequests, requests.Limit.ToString(CultureInfo.InvariantCulture)));
            headers.Add(new(AdmissionHeaders.RemainingRequests, requests.Remaining.ToString(CultureInfo.InvariantCulture)));
            headers.Add(new(AdmissionHeaders.ResetRequests, FormatReset(requests.ResetAfter)));
        }

        if (result.Tokens is { } tokens)
        {
            headers.Add(new(AdmissionHeaders.LimitTokens, tokens.Limit.ToString(CultureInfo.InvariantCulture)));
            headers.Add(new(AdmissionHeaders.RemainingTokens, tokens.Remaining.ToString(CultureInfo.InvariantCulture)));
            headers.Add(new(AdmissionHeaders.ResetTokens, FormatReset(tokens.ResetAfter)));
        }

        if (result.RemainingUsdMicros is { } usd)
        {
            headers.Add(new(AdmissionHeaders.BudgetRemainingUsd, UsdMicros.ToUsd(usd).ToString("0.######", CultureInfo.InvariantCulture)));
        }

        if (result.RemainingTokens is { } budgetTokens)
        {
            headers.Add(new(AdmissionHeaders.BudgetRemainingTokens, budgetTokens.ToString(CultureInfo.InvariantCulture)));
        }
    }

    private void CheckSoftAlert(string teamId, string? keyId, BudgetWindow window, BudgetLimits limits, SpendChange change, DateTimeOffset now)
    {
        if (limits.SoftAlertPercent is not { } percent)
        {
            return;
        }

        if (limits.UsdMicros is { } usdLimit && Crossed(usdLimit, percent, change.UsdBefore, change.UsdAfter) && _tracker.TryMark(teamId, keyId, "usd", window, now))
        {
            _alerts.Publish(Alert(teamId, keyId, window, "usd", percent, UsdMicros.ToUsd(usdLimit), UsdMicros.ToUsd(change.UsdAfter), now));
        }

        if (limits.Tokens is { } tokenLimit && Crossed(tokenLimit, percent, change.TokensBefore, change.TokensAfter) && _tracker.TryMark(teamId, keyId, "tokens", window, now))
        {
            _alerts.Publish(Alert(teamId, keyId, window, "tokens", percent, tokenLimit, change.TokensAfter, now));
        }
    }

    private static bool Crossed(long limit, int percent, long before, long after)
    {
        // threshold = ceil(limit × percent / 100), in integer arithmetic.
        var threshold = (long)(((Int128)limit * percent + 99) / 100);
        return before < threshold && after >= threshold;
    }

    private static SoftBudgetAlert Alert(string teamId, string? keyId, BudgetWindow window, string metric, int percent, decimal limit, decimal spent, DateTimeOffset now) => new()
    {
        TeamId = teamId,
        KeyId = keyId,
        Period = PeriodName(window.Period),
        PeriodStart = window.Start,
        ResetsAt = window.End,
        Metric = metric,
        ThresholdPercent = percent,
        Limit = limit,
        Spent = spent,
        At = now,
    };

    private static string PeriodName(BudgetPeriod period) => period switch
    {
        BudgetPeriod.Day => "day",
        BudgetPeriod.Week => "week",
        _ => "month",
    };
}
