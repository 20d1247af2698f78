using System.Data.Common;
using Npgsql;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;

namespace TokenGateway.Storage.Postgres.Teams;

/// <summary>
/// Teams, virtual keys (hash + display prefix only, never the key) and gateway settings in PostgreSQL; the same
/// contract, ids and validation as the SQLite team store.
/// </summary>
internal sealed class PostgresTeamStore(PostgresDatabase database, TimeProvider time) : ITeamStore
{
    private const string KeyColumns = TeamRows.KeyColumns;

    public async Task<Team> CreateTeamAsync(string name, CancellationToken cancellationToken)
    {
        name = TeamRows.ValidateName(name);
        var now = PostgresTime.Milliseconds(time.GetUtcNow());
        var team = new Team(StorageIds.New("team_", now), name, now);

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("INSERT INTO teams (id, name, created_at) VALUES (@id, @name, @at)", connection);
        command.Parameters.AddWithValue("id", team.Id);
        command.Parameters.AddWithValue("name", team.Name);
        command.Parameters.AddWithValue("at", now);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return team;
    }

    public async Task<Team?> GetTeamAsync(string teamId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT id, name, created_at FROM teams WHERE id = @id", connection);
        command.Parameters.AddWithValue("id", teamId);
        return await StoreRows.ReadFirstAsync(command, ReadTeam, cancellationToken);
    }

    public async Task<Page<Team>> ListTeamsAsync(int limit, string? afterId, CancellationToken cancellationToken)
    {
        limit = StoreRows.ClampLimit(limit);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT id, name, created_at FROM teams WHERE id > @after ORDER BY id LIMIT @limit", connection);
        command.Parameters.AddWithValue("after", afterId ?? string.Empty);
        command.Parameters.AddWithValue("limit", limit + 1);
        return await StoreRows.ReadPageAsync(command, limit, ReadTeam, static t => t.Id, cancellationToken);
    }

    public async Task<VirtualKey> CreateKeyAsync(
        string teamId, string name, string keyHash, string prefix, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyHash);
        ArgumentNullException.ThrowIfNull(prefix);
        name = TeamRows.ValidateName(name);
        var now = PostgresTime.Milliseconds(time.GetUtcNow());
        var expires = expiresAt is { } e ? PostgresTime.Milliseconds(e) : (DateTimeOffset?)null;
        var key = new VirtualKey(StorageIds.New("key_", now), teamId, name, prefix, now, expires, null);

        await using var connection = await database.OpenAsync(cancellationToken);

        // Insert only when the team exists, in one statement, so a concurrent lookup never sees an orphan key.
        await using var command = new NpgsqlCommand("""
            INSERT INTO virtual_keys (id, team_id, name, key_hash, prefix, created_at, expires_at, revoked_at)
            SELECT @id, id, @name, @hash, @prefix, @at, @expires, NULL FROM teams WHERE id = @team
            """, connection);
        command.Parameters.AddWithValue("id", key.Id);
        command.Parameters.AddWithValue("team", teamId);
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("hash", keyHash);
        command.Parameters.AddWithValue("prefix", prefix);
        command.Parameters.AddWithValue("at", now);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset?>("expires", NpgsqlTypes.NpgsqlDbType.TimestampTz) { TypedValue = expires });
        var inserted = await command.ExecuteNonQueryAsync(cancellationToken);
        if (inserted == 0)
        {
            throw new KeyNotFoundException($"Team '{teamId}' does not exist.");
        }

        return key;
    }

    public async Task<Page<VirtualKey>> ListKeysAsync(string teamId, int limit, string? afterId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        limit = StoreRows.ClampLimit(limit);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            $"SELECT {KeyColumns} FROM virtual_keys WHERE team_id = @team AND id > @after ORDER BY id LIMIT @limit", connection);
        command.Parameters.AddWithValue("team", teamId);
        command.Parameters.AddWithValue("after", afterId ?? string.Empty);
        command.Parameters.AddWithValue("limit", limit + 1);
        return await StoreRows.ReadPageAsync(command, limit, ReadKey, static k => k.Id, cancellationToken);
    }

    public Task<VirtualKey?> GetKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return FindKeyAsync($"SELECT {KeyColumns} FROM virtual_keys WHERE id = @value", keyId, cancellationToken);
    }

    public Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyHash);
        return FindKeyAsync($"SELECT {KeyColumns} FROM virtual_keys WHERE key_hash = @value", keyHash, cancellationToken);
    }

    public async Task<bool> RevokeKeyAsync(string keyId, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        await using var connection = await database.OpenAsync(cancellationToken);

        // Revoking twice keeps the first revocation time.
        await using var command = new NpgsqlCommand("UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, @at) WHERE id = @id", connection);
        command.Parameters.AddWithValue("id", keyId);
        command.Parameters.AddWithValue("at", PostgresTime.Milliseconds(at));
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    public async Task<string?> GetSettingAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT value FROM settings WHERE name = @name", connection);
        command.Parameters.AddWithValue("name", name);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task SetSettingAsync(string name, string value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("""
            INSERT INTO settings (name, value, updated_at) VALUES (@name, @value, @at)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, connection);
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("value", value);
        command.Parameters.AddWithValue("at", time.GetUtcNow().ToUniversalTime());
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<VirtualKey?> FindKeyAsync(string sql, string value, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("value", value);
        return await StoreRows.ReadFirstAsync(command, ReadKey, cancellationToken);
    }

    private static Team ReadTeam(DbDataReader reader) => TeamRows.ReadTeam(reader, StoreRows.Native);

    private static VirtualKey ReadKey(DbDataReader reader) => TeamRows.ReadKey(reader, StoreRows.Native);
}
