using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Policies;
using TokenGateway.Storage.Postgres;
using TokenGateway.Storage.Postgres.Ledger;
using TokenGateway.Storage.Postgres.Policies;
using TokenGateway.Storage.Postgres.Schemas;
using TokenGateway.Storage.Postgres.Teams;
using TokenGateway.Storage.Postgres.Usage;
using TokenGateway.Storage.Schemas;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Usage;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the gateway's storage: PostgreSQL when <c>ConnectionStrings:Postgres</c> is set (shared by many
/// replicas), otherwise the embedded SQLite file. The choice is made when the services are first resolved, so
/// configuration added after this call (tests, command line) still decides.
/// </summary>
public static class PostgresStorageServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ITeamStore"/>, <see cref="IPolicyStore"/>, <see cref="ISchemaRegistry"/>, <see cref="ILedgerStore"/>
    /// and <see cref="IUsageQueryService"/> on PostgreSQL or SQLite (see the type remarks), plus everything
    /// <see cref="SqliteStorageServiceCollectionExtensions.AddSqliteStorage"/> adds (the durable ledger keeps its local
    /// journal as the spool in both modes). Calling it again does nothing.
    /// </summary>
    /// <remarks>Call it where <c>AddSqliteStorage</c> would be called: its schema initializer must run before other hosted services.</remarks>
    public static IServiceCollection AddTokenGatewayStorage(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(static d => d.ServiceType == typeof(PostgresDatabase)))
        {
            return services;
        }

        services.AddOptions<PostgresStorageOptions>()
            .BindConfiguration(PostgresStorageOptions.SectionName)
            .Configure<IConfiguration>(static (o, configuration) =>
                o.ConnectionString = configuration.GetConnectionString(PostgresStorageOptions.ConnectionStringName) ?? o.ConnectionString)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgresStorageOptions>, PostgresStorageOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<StorageBackend>();

        foreach (var migration in PostgresSchema.All)
        {
            services.AddSingleton(migration);
        }

        services.TryAddSingleton<PostgresDatabase>();
        services.TryAddSingleton<PostgresTeamStore>();
        services.TryAddSingleton<PostgresPolicyStore>();
        services.TryAddSingleton<PostgresSchemaRegistry>();
        services.TryAddSingleton<PostgresLedgerStore>();
        services.TryAddSingleton<PostgresUsageQueryService>();

        // The contracts pick their backend at first resolution; AddSqliteStorage's TryAdds then leave them alone.
        services.TryAddSingleton<ITeamStore>(static sp => Pick<ITeamStore, PostgresTeamStore, SqliteTeamStore>(sp));
        services.TryAddSingleton<IPolicyStore>(static sp => Pick<IPolicyStore, PostgresPolicyStore, SqlitePolicyStore>(sp));
        services.TryAddSingleton<ISchemaRegistry>(static sp => Pick<ISchemaRegistry, PostgresSchemaRegistry, SqliteSchemaRegistry>(sp));
        services.TryAddSingleton<ILedgerStore, SelectedLedgerStore>(); // a type: tests wrap it via ImplementationType
        services.TryAddSingleton<IUsageQueryService>(static sp => Pick<IUsageQueryService, PostgresUsageQueryService, SqliteUsageQueryService>(sp));
        services.AddSqliteStorage();

        // One initializer, in the SQLite initializer's place (first among the hosted services): in PostgreSQL mode no
        // SQLite file is created at all.
        for (var i = 0; i < services.Count; i++)
        {
            if (services[i].ServiceType == typeof(IHostedService) && services[i].ImplementationType == typeof(SqliteSchemaInitializer))
            {
                services[i] = ServiceDescriptor.Singleton<IHostedService>(static sp => sp.GetRequiredService<StorageBackend>().IsPostgres
                    ? new PostgresSchemaInitializer(sp.GetRequiredService<PostgresDatabase>())
                    : new SqliteSchemaInitializer(sp.GetRequiredService<SqliteDatabase>()));
            }
        }

        return services;
    }

    private static TService Pick<TService, TPostgres, TSqlite>(IServiceProvider sp)
        where TService : notnull
        where TPostgres : notnull, TService
        where TSqlite : TService =>
        sp.GetRequiredService<StorageBackend>().IsPostgres
            ? sp.GetRequiredService<TPostgres>()
            : ActivatorUtilities.CreateInstance<TSqlite>(sp);
}
