using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Teams;
using TokenGateway.Storage;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Policies;
using TokenGateway.Storage.Schemas;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Usage;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the embedded SQLite storage: teams and keys, policies, output schemas, the durable usage ledger and usage
/// queries, all in one database file whose tables are created by versioned migrations (<c>SqliteDatabase</c>).
/// </summary>
public static class SqliteStorageServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ITeamStore"/>, <see cref="IPolicyStore"/>, <see cref="ISchemaRegistry"/>,
    /// <see cref="IUsageLedger"/> (plus its background writer and <see cref="ILedgerRecovery"/>) and
    /// <see cref="IUsageQueryService"/> backed by one SQLite file, configured from the <c>Storage</c> section. Calling it
    /// again does nothing.
    /// </summary>
    /// <remarks>
    /// Call before other hosted services that use the stores at startup: the schema initializer and the ledger writer
    /// are hosted services. Replace <see cref="ILedgerStore"/> before calling this to inject another ledger backend.
    /// </remarks>
    public static IServiceCollection AddSqliteStorage(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(static d => d.ServiceType == typeof(SqliteDatabase)))
        {
            return services;
        }

        services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.SectionName)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        foreach (var migration in TeamSchema.All.Concat(LedgerSchema.All).Concat(PolicySchema.All).Concat(OutputSchemaSchema.All))
        {
            services.AddSingleton(migration);
        }

        services.TryAddSingleton<SqliteDatabase>();
        services.TryAddSingleton<ITeamStore, SqliteTeamStore>();
        services.TryAddSingleton<IPolicyStore, SqlitePolicyStore>();
        services.TryAddSingleton<ISchemaRegistry, SqliteSchemaRegistry>();
        services.TryAddSingleton<ILedgerStore, SqliteLedgerStore>();
        services.TryAddSingleton<DurableUsageLedger>();
        services.TryAddSingleton<IUsageLedger>(static sp => sp.GetRequiredService<DurableUsageLedger>());
        services.TryAddSingleton<ILedgerRecovery>(static sp => sp.GetRequiredService<DurableUsageLedger>());
        services.TryAddSingleton<IUsageQueryService, SqliteUsageQueryService>();

        // Order matters: the schema exists before the ledger starts replaying into it.
        services.AddHostedService<SqliteSchemaInitializer>();
        services.AddSingleton<IHostedService>(static sp => sp.GetRequiredService<DurableUsageLedger>());
        return services;
    }
}
