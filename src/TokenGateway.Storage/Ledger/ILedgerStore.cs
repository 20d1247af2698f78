using TokenGateway.Core.Metering;

namespace TokenGateway.Storage.Ledger;

/// <summary>The durable side of the usage ledger: commits a batch of events atomically and idempotently.</summary>
public interface ILedgerStore
{
    /// <summary>
    /// Writes <paramref name="events"/> in one transaction, ignoring request ids already stored; returns how many rows
    /// were new. Throws when nothing was committed; the ledger then retries the same batch.
    /// </summary>
    Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken);
}
