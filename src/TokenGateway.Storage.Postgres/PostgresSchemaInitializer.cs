using Microsoft.Extensions.Hosting;

namespace TokenGateway.Storage.Postgres;

/// <summary>
/// Migrates the database and creates the ledger partitions at start-up (waiting up to
/// <see cref="PostgresStorageOptions.StartupTimeout"/> for the server), so a wrong connection string or an unreachable
/// server fails the start, not the first request.
/// </summary>
internal sealed class PostgresSchemaInitializer(PostgresDatabase database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => database.InitializeAsync(retry: true, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
