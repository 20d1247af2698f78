using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// An admitted request's reservation. Settle it with the actual cost after the response, or release it on any
/// failure path; disposing an unsettled lease releases it, so <c>await using</c> covers every exit path.
/// </summary>
public sealed class AdmissionLease : IAsyncDisposable
{
    private readonly AdmissionController _controller;
    private readonly EffectivePolicy _policy;
    private int _completed;

    internal AdmissionLease(AdmissionController controller, EffectivePolicy policy, BudgetReservation reservation)
    {
        _controller = controller;
        _policy = policy;
        Reservation = reservation;
    }

    /// <summary>The underlying reservation.</summary>
    public BudgetReservation Reservation { get; }

    /// <summary>True once settled or released.</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Charges the actual cost and tokens (billed input + output); returns false if already completed.</summary>
    public async ValueTask<bool> SettleAsync(decimal actualCostUsd, TokenUsage usage, CancellationToken cancellationToken = default)
    {
        return await SettleAsync(actualCostUsd, (long)usage.InputTokens + usage.OutputTokens, cancellationToken);
    }

    /// <summary>Charges the actual cost and token count; returns false if already completed.</summary>
    public async ValueTask<bool> SettleAsync(decimal actualCostUsd, long actualTokens, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        await _controller.SettleAsync(_policy, Reservation, UsdMicros.FromUsd(actualCostUsd), actualTokens, cancellationToken);
        return true;
    }

    /// <summary>Gives the reservation back (nothing was billed); returns false if already completed.</summary>
    public async ValueTask<bool> ReleaseAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        await _controller.ReleaseAsync(Reservation, cancellationToken);
        return true;
    }

    /// <summary>Releases the reservation unless it was settled.</summary>
    public async ValueTask DisposeAsync() => await ReleaseAsync(CancellationToken.None);
}
