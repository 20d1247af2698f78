using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenGateway.Storage.Postgres;
using TokenGateway.Storage.Postgres.Ledger;
using TokenGateway.Storage.Postgres.Policies;
using TokenGateway.Storage.Postgres.Schemas;
using TokenGateway.Storage.Postgres.Teams;
using TokenGateway.Storage.Postgres.Usage;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>The PostgreSQL stores over one test database, built by hand like <see cref="StorageTestHost"/>.</summary>
internal sealed class PostgresTestStorage : IAsyncDisposable
{
    private PostgresTestStorage(string connectionString, TimeProvider time)
    {
        ConnectionString = connectionString;
        Database = CreateDatabase(connectionString, time);
        Teams = new PostgresTeamStore(Database, time);
        Policies = new PostgresPolicyStore(Database, time);
        Schemas = new PostgresSchemaRegistry(Database, time);
        Ledger = new PostgresLedgerStore(Database);
        Usage = new PostgresUsageQueryService(Database);
    }

    public string ConnectionString { get; }
    public PostgresDatabase Database { get; }
    public PostgresTeamStore Teams { get; }
    public PostgresPolicyStore Policies { get; }
    public PostgresSchemaRegistry Schemas { get; }
    public PostgresLedgerStore Ledger { get; }
    public PostgresUsageQueryService Usage { get; }

    public static async Task<PostgresTestStorage> CreateAsync(string connectionString, TimeProvider? time = null)
    {
        var storage = new PostgresTestStorage(connectionString, time ?? TimeProvider.System);
        await storage.Database.InitializeAsync(retry: false, CancellationToken.None);
        return storage;
    }

    public static PostgresDatabase CreateDatabase(string connectionString, TimeProvider? time = null, Action<PostgresStorageOptions>? configure = null)
    {
        var options = new PostgresStorageOptions { ConnectionString = connectionString, StartupTimeout = TimeSpan.FromSeconds(10) };
        configure?.Invoke(options);
        return new PostgresDatabase(Options.Create(options), PostgresSchema.All, time ?? TimeProvider.System, NullLogger<PostgresDatabase>.Instance);
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await Database.DataSource.OpenConnectionAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await Database.DataSource.OpenConnectionAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Ledger.DisposeAsync();
        await Database.DisposeAsync();
    }
}
