using Microsoft.Extensions.Options;

namespace TokenGateway.Storage.Postgres;

/// <summary>Which store backs teams, keys, policies, schemas and the ledger: PostgreSQL when its connection string is set, else SQLite.</summary>
public sealed class StorageBackend(IOptions<PostgresStorageOptions> options)
{
    /// <summary>True when <c>ConnectionStrings:Postgres</c> is set.</summary>
    public bool IsPostgres { get; } = !string.IsNullOrWhiteSpace(options.Value.ConnectionString);

    /// <summary>"postgres" or "sqlite" (logs, readiness).</summary>
    public string Name => IsPostgres ? "postgres" : "sqlite";
}
