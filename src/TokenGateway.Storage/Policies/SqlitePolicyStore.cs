using System.Globalization;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Budgets;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Policies;

/// <summary>
/// <see cref="IPolicyStore"/> on SQLite: one table <c>policies(scope, id, json, updated_at)</c> in the shared storage
/// database, created by its migration (<see cref="PolicySchema"/>); touches only its own table.
/// </summary>
internal sealed class SqlitePolicyStore(SqliteDatabase database, TimeProvider time) : IPolicyStore
{
    private readonly SqliteDatabase _database = database;
    private readonly TimeProvider _time = time;

    /// <inheritdoc />
    public async Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT json, updated_at FROM policies WHERE scope = $scope AND id = $id";
        command.Parameters.AddWithValue("$scope", PolicyRows.ScopeName(scope));
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? PolicyRows.Read(scope, id, reader.GetString(0), StoreRows.RoundtripText(reader, 1)) : null;
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
        command.Parameters.AddWithValue("$scope", PolicyRows.ScopeName(scope));
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
        command.Parameters.AddWithValue("$scope", PolicyRows.ScopeName(scope));
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, json, updated_at FROM policies WHERE scope = $scope ORDER BY id";
        command.Parameters.AddWithValue("$scope", PolicyRows.ScopeName(scope));
        return await StoreRows.ReadAllAsync(
            command, reader => PolicyRows.Read(scope, reader.GetString(0), reader.GetString(1), StoreRows.RoundtripText(reader, 2)), cancellationToken);
    }

    private ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken) => _database.OpenAsync(cancellationToken);
}
