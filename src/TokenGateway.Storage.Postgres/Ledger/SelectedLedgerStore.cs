using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.Storage.Postgres.Ledger;

/// <summary>
/// The registered <see cref="ILedgerStore"/>: the PostgreSQL store when <see cref="StorageBackend.IsPostgres"/>, else
/// the SQLite one. A type (not a factory) so hosts and tests can wrap the registered store with
/// <c>ActivatorUtilities.CreateInstance(sp, descriptor.ImplementationType)</c>.
/// </summary>
internal sealed class SelectedLedgerStore : ILedgerStore, IDisposable
{
    private readonly ILedgerStore _inner;
    private readonly SqliteLedgerStore? _owned;

    public SelectedLedgerStore(IServiceProvider services, StorageBackend backend)
    {
        if (backend.IsPostgres)
        {
            _inner = services.GetRequiredService<PostgresLedgerStore>(); // a container singleton, disposed by the container
        }
        else
        {
            _owned = ActivatorUtilities.CreateInstance<SqliteLedgerStore>(services);
            _inner = _owned;
        }
    }

    public Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken) =>
        _inner.WriteBatchAsync(events, cancellationToken);

    public void Dispose() => _owned?.Dispose();
}
