using Microsoft.Extensions.Hosting;

namespace TokenGateway.Storage.Sqlite;

/// <summary>Creates or migrates the database at startup so a bad path or a locked file fails the start, not the first request.</summary>
internal sealed class SqliteSchemaInitializer(SqliteDatabase database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => database.InitializeAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
