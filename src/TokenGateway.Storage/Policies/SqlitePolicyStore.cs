using System.Globalization;
using System.Text.Json;
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

    private ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken) => _database.OpenAsync(cancellationToken);
}
