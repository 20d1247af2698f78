namespace TokenGateway.Storage.Sqlite;

/// <summary>
/// One schema step of one component (e.g. <c>teams</c> v1). Applied once, in version order, inside a transaction, and
/// recorded in <c>schema_version</c>. Never edit a shipped migration: add the next version.
/// </summary>
internal sealed record SqliteMigration(string Component, int Version, string Sql);
