using Npgsql;
using TokenGateway.Core.Budgets;
using TokenGateway.Storage.Policies;

namespace TokenGateway.Storage.Postgres.Policies;

/// <summary><see cref="IPolicyStore"/> on PostgreSQL: table <c>policies(scope, id, json, updated_at)</c>, as in SQLite.</summary>
internal sealed class PostgresPolicyStore(PostgresDatabase database, TimeProvider time) : IPolicyStore
{
    /// <inheritdoc />
    public async Task<StoredPolicy?> GetAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT json, updated_at FROM policies WHERE scope = @scope AND id = @id", connection);
        command.Parameters.AddWithValue("scope", PolicyRows.ScopeName(scope));
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? PolicyRows.Read(scope, id, reader.GetString(0), StoreRows.Native(reader, 1))
            : null;
    }

    /// <inheritdoc />
    public async Task<StoredPolicy> PutAsync(PolicyScope scope, string id, TeamPolicy policy, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(policy);
        var now = PostgresTime.Microseconds(time.GetUtcNow());
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("""
            INSERT INTO policies (scope, id, json, updated_at) VALUES (@scope, @id, @json, @updated)
            ON CONFLICT (scope, id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at
            """, connection);
        command.Parameters.AddWithValue("scope", PolicyRows.ScopeName(scope));
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("json", PolicyJson.Serialize(policy));
        command.Parameters.AddWithValue("updated", now);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return new StoredPolicy(scope, id, policy, now);
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(PolicyScope scope, string id, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("DELETE FROM policies WHERE scope = @scope AND id = @id", connection);
        command.Parameters.AddWithValue("scope", PolicyRows.ScopeName(scope));
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredPolicy>> ListAsync(PolicyScope scope, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT id, json, updated_at FROM policies WHERE scope = @scope ORDER BY id", connection);
        command.Parameters.AddWithValue("scope", PolicyRows.ScopeName(scope));
        return await StoreRows.ReadAllAsync(
            command, reader => PolicyRows.Read(scope, reader.GetString(0), reader.GetString(1), StoreRows.Native(reader, 2)), cancellationToken);
    }
}
