using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Usage;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>Builds the storage components by hand over one temp directory.</summary>
internal sealed class StorageTestHost : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly List<IDisposable> _disposables = [];

    public StorageTestHost(Action<StorageOptions>? configure = null)
    {
        Options = new StorageOptions
        {
            DataDirectory = _directory.Path,
            LedgerFlushInterval = TimeSpan.FromMilliseconds(5),
            LedgerMaxRetryDelay = TimeSpan.FromMilliseconds(20),
        };
        configure?.Invoke(Options);
        Database = CreateDatabase();
        Store = new SqliteLedgerStore(Database);
        _disposables.Add(Store);
    }

    public StorageOptions Options { get; }

    public string DirectoryPath => _directory.Path;

    public SqliteDatabase Database { get; }

    public SqliteLedgerStore Store { get; }

    public SqliteDatabase CreateDatabase(TimeProvider? time = null) => new(
        Microsoft.Extensions.Options.Options.Create(Options),
        TeamSchema.All.Concat(LedgerSchema.All),
        time ?? TimeProvider.System,
        NullLogger<SqliteDatabase>.Instance);

    public SqliteTeamStore CreateTeamStore(TimeProvider? time = null) => new(Database, time ?? TimeProvider.System);

    public SqliteUsageQueryService CreateQueryService() => new(Database);

    /// <summary>A ledger over <paramref name="store"/> (the real SQLite store by default); not started.</summary>
    public DurableUsageLedger CreateLedger(ILedgerStore? store = null)
    {
        var ledger = new DurableUsageLedger(
            store ?? Store, Microsoft.Extensions.Options.Options.Create(Options), TimeProvider.System, NullLogger<DurableUsageLedger>.Instance);
        return ledger;
    }

    public async Task<long> CountRowsAsync(string table = "usage_events")
    {
        await using var connection = await Database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table};";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public async Task<long> CountDistinctRequestIdsAsync()
    {
        await using var connection = await Database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(DISTINCT request_id) FROM usage_events;";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public async Task<long> RollupRequestsAsync()
    {
        await using var connection = await Database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(SUM(requests), 0) FROM usage_hourly;";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public string[] JournalFiles() =>
        [.. Directory.GetFiles(_directory.Path, System.IO.Path.GetFileName(Options.JournalPath) + ".*").Where(f => !f.EndsWith(".lock", StringComparison.Ordinal))];

    public void Track(IDisposable disposable) => _disposables.Add(disposable);

    public void Dispose()
    {
        foreach (var disposable in _disposables)
        {
            disposable.Dispose();
        }

        _directory.Dispose();
    }
}
