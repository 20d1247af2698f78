using System.Data.Common;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Teams;

/// <summary>Teams, virtual keys (hash + display prefix only) and gateway settings in the shared SQLite file.</summary>
internal sealed class SqliteTeamStore(SqliteDatabase database, TimeProvider time) : ITeamStore
{
    private const string KeyColumns = TeamRows.KeyColumns;

    public async Task<Team> CreateTeamAsync(string name, CancellationToken cancellationToken)
    {
        name = TeamRows.ValidateName(name);
        var now = Truncate(time.GetUtcNow());
        var team = new Team(StorageIds.New("team_", now), name, now);

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO teams (id, name, created_at) VALUES ($id, $name, $at);";
        command.Parameters.AddWithValue("$id", team.Id);
        command.Parameters.AddWithValue("$name", team.Name);
        command.Parameters.AddWithValue("$at", now.ToUnixTimeMilliseconds());
        await command.ExecuteNonQueryAsync(cancellationToken);
        return team;
    }

    public async Task<Team?> GetTeamAsync(string teamId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, created_at FROM teams WHERE id = $id;";
        command.Parameters.AddWithValue("$id", teamId);
        return await StoreRows.ReadFirstAsync(command, ReadTeam, cancellationToken);
    }

    public async Task<Page<Team>> ListTeamsAsync(int limit, string? afterId, CancellationToken cancellationToken)
    {
        limit = StoreRows.ClampLimit(limit);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, created_at FROM teams WHERE id > $after ORDER BY id LIMIT $limit;";
        command.Parameters.AddWithValue("$after", afterId ?? string.Empty);
        command.Parameters.AddWithValue("$limit", limit + 1);
        return await StoreRows.ReadPageAsync(command, limit, ReadTeam, static t => t.Id, cancellationToken);
    }

    public async Task<VirtualKey> CreateKeyAsync(
        string teamId, string name, string keyHash, string prefix, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyHash);
        ArgumentNullException.ThrowIfNull(prefix);
        name = TeamRows.ValidateName(name);
        var now = Truncate(time.GetUtcNow());
        var expires = expiresAt is { } e ? Truncate(e) : (DateTimeOffset?)null;
        var key = new VirtualKey(StorageIds.New("key_", now), teamId, name, prefix, now, expires, null);

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();

        // Insert only when the team exists, in one statement, so a concurrent lookup never sees an orphan key.
        command.CommandText = """
            INSERT INTO virtual_keys (id, team_id, name, key_hash, prefix, created_at, expires_at, revoked_at)
            SELECT $id, id, $name, $hash, $prefix, $at, $expires, NULL FROM teams WHERE id = $team;
            """;
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$team", teamId);
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$hash", keyHash);
        command.Parameters.AddWithValue("$prefix", prefix);
        command.Parameters.AddWithValue("$at", now.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", (object?)expires?.ToUnixTimeMilliseconds() ?? DBNull.Value);
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
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {KeyColumns} FROM virtual_keys WHERE team_id = $team AND id > $after ORDER BY id LIMIT $limit;";
        command.Parameters.AddWithValue("$team", teamId);
        command.Parameters.AddWithValue("$after", afterId ?? string.Empty);
        command.Parameters.AddWithValue("$limit", limit + 1);
        return await StoreRows.ReadPageAsync(command, limit, ReadKey, static k => k.Id, cancellationToken);
    }

    public Task<VirtualKey?> GetKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        return FindKeyAsync("id", keyId, cancellationToken);
    }

    public Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyHash);
        return FindKeyAsync("key_hash", keyHash, cancellationToken);
    }

    public async Task<bool> RevokeKeyAsync(string keyId, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();

        // Revoking twice keeps the first revocation time.
        command.CommandText = "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, $at) WHERE id = $id;";
        command.Parameters.AddWithValue("$id", keyId);
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    public async Task<string?> GetSettingAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM settings WHERE name = $name;";
        command.Parameters.AddWithValue("$name", name);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task SetSettingAsync(string name, string value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO settings (name, value, updated_at) VALUES ($name, $value, $at)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
            """;
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$value", value);
        command.Parameters.AddWithValue("$at", time.GetUtcNow().ToUnixTimeMilliseconds());
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<VirtualKey?> FindKeyAsync(string column, string value, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {KeyColumns} FROM virtual_keys WHERE {column} = $value;";
        command.Parameters.AddWithValue("$value", value);
        return await StoreRows.ReadFirstAsync(command, ReadKey, cancellationToken);
    }

    private static Team ReadTeam(DbDataReader reader) => TeamRows.ReadTeam(reader, StoreRows.UnixMilliseconds);

    private static VirtualKey ReadKey(DbDataReader reader) => TeamRows.ReadKey(reader, StoreRows.UnixMilliseconds);

    // Stored with millisecond precision; returning the same precision keeps created objects equal to re-read ones.
    private static DateTimeOffset Truncate(DateTimeOffset value) => FromMs(value.ToUnixTimeMilliseconds());

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
