using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Schemas;

/// <summary>Table of <see cref="SqliteSchemaRegistry"/>. Times are ISO-8601 text (UTC).</summary>
internal static class OutputSchemaSchema
{
    // IF NOT EXISTS: databases written before this migration existed already hold the table (created ad hoc then).
    public static readonly SqliteMigration V1 = new("output_schemas", 1, """
        CREATE TABLE IF NOT EXISTS output_schemas (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            json TEXT NOT NULL,
            description TEXT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) WITHOUT ROWID;
        """);

    public static IEnumerable<SqliteMigration> All => [V1];
}
