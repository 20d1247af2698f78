namespace TokenGateway.Storage.Postgres;

/// <summary>
/// One schema step of one component (e.g. <c>teams</c> v1), applied once, in version order, in a transaction, under
/// the migration advisory lock, and recorded in <c>schema_version</c>. Never edit a shipped migration: add the next one.
/// </summary>
internal sealed record PostgresMigration(string Component, int Version, string Sql);
