using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Policies;

/// <summary>Table of <see cref="SqlitePolicyStore"/>. Times are ISO-8601 text (UTC).</summary>
internal static class PolicySchema
{
    // IF NOT EXISTS: databases written before this migration existed already hold the table (created ad hoc then).
    public static readonly SqliteMigration V1 = new("policies", 1, """
        CREATE TABLE IF NOT EXISTS policies (
            scope TEXT NOT NULL,
            id TEXT NOT NULL,
            json TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, id)
        ) WITHOUT ROWID;
        """);

    public static IEnumerable<SqliteMigration> All => [V1];
}
