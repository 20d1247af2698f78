using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Storage.Policies;

/// <summary>
/// <see cref="IPolicyStore"/> on SQLite: one table <c>policies(scope, id, json, updated_at)</c>, created on first use.
/// Shares the database file with the other stores; touches only its own table.
/// </summary>
public sealed class SqlitePolicyStore : IPolicyStore
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private volatile bool _initialized;

    /// <summary>Creates the store for <paramref name="connectionString"/> (e.g. <c>Data Source=data/tokengateway.db</c>).</summary>
    public SqlitePolicyStore(string connectionString, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        ArgumentNullException.ThrowIfNull(time);
        _connectionString = connectionString;
        _time = time;
    }

    /// <inheritdoc />
    public async Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT json, updated_at FROM policies WHERE scope = $scope AND id = $id";
        command.Parameters.AddWithValue("$scope", ScopeName(scope));
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(scope, id, reader.GetString(0), reader.GetString(1)) : null;
    }

    /// <inheritdoc />
    public async Task<StoredPolicy> PutAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(policy);
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO policies (scope, id, json, updated_at) VALUES ($scope, $id, $json, $updated)
            ON CONFLICT (scope, id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at
            """;
        command.Parameters.AddWithValue("$scope", ScopeName(scope));
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$json", PolicyJson.Serialize(policy));
        command.Parameters.AddWithValue("$updated", now.ToString("O", CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync(cancellationToken);
        return new StoredPolicy(scope, id, policy, now);
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM policies WHERE scope = $scope AND id = $id";
        command.Parameters.AddWithValue("$scope", ScopeName(scope));
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, json, updated_at FROM policies WHERE scope = $scope ORDER BY id";
        command.Parameters.AddWithValue("$scope", ScopeName(scope));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<StoredPolicy>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(Read(scope, reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return result;
    }

    private static StoredPolicy Read(PolicyScope scope, string id, string json, string updatedAt)
    {
        TeamPolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize<TeamPolicy>(json, PolicyJson.Options);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The stored {ScopeName(scope)} policy '{id}' is not valid policy JSON: {ex.Message}", ex);
        }

        return new StoredPolicy(
            scope,
            id,
            policy ?? TeamPolicy.Empty,
            DateTimeOffset.Parse(updatedAt, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind));
    }

    private static string ScopeName(PolicyScope scope) => scope switch
    {
        PolicyScope.Default => "default",
        PolicyScope.Team => "team",
        PolicyScope.Key => "key",
        _ => throw new ArgumentOutOfRangeException(nameof(scope), scope, "Unknown policy scope."),
    };

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            await InitializeAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_initialized)
            {
                return;
            }

            var dataSource = new SqliteConnectionStringBuilder(_connectionString).DataSource;
            if (!string.IsNullOrEmpty(dataSource) && dataSource != ":memory:" && !dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
            {
                var directory = Path.GetDirectoryName(Path.GetFullPath(dataSource));
                if (!string.IsNullOrEmpty(directory))
                {
                    Directory.CreateDirectory(directory);
                }
            }

            await using var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE IF NOT EXISTS policies (
                    scope TEXT NOT NULL,
                    id TEXT NOT NULL,
                    json TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (scope, id)
                ) WITHOUT ROWID;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }
}
