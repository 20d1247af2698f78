using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Teams;

/// <summary>Tables of <see cref="SqliteTeamStore"/>. Times are Unix milliseconds (UTC).</summary>
internal static class TeamSchema
{
    public static readonly SqliteMigration V1 = new("teams", 1, """
        CREATE TABLE teams (
            id         TEXT    NOT NULL PRIMARY KEY,
            name       TEXT    NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE virtual_keys (
            id         TEXT    NOT NULL PRIMARY KEY,
            team_id    TEXT    NOT NULL REFERENCES teams (id),
            name       TEXT    NOT NULL,
            key_hash   TEXT    NOT NULL UNIQUE,
            prefix     TEXT    NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NULL,
            revoked_at INTEGER NULL
        );
        CREATE INDEX ix_virtual_keys_team ON virtual_keys (team_id, id);
        CREATE TABLE settings (
            name       TEXT    NOT NULL PRIMARY KEY,
            value      TEXT    NOT NULL,
            updated_at INTEGER NOT NULL
        );
        """);

    public static IEnumerable<SqliteMigration> All => [V1];
}
