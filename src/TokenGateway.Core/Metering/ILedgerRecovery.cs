namespace TokenGateway.Core.Metering;

/// <summary>
/// Whether the ledger has committed what an earlier run left uncommitted (its journal, after a crash). Until then the
/// ledger's totals undercount, so budget counters must not be seeded from them and the instance is not ready.
/// </summary>
public interface ILedgerRecovery
{
    /// <summary>True once every event found in the journal at start-up is committed (immediately when there were none).</summary>
    bool IsRecovered { get; }

    /// <summary>Completes when <see cref="IsRecovered"/> becomes true.</summary>
    Task WaitForRecoveryAsync(CancellationToken cancellationToken);
}
