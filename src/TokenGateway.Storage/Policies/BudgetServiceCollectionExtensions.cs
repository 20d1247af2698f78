using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Policies;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers policies, budget counters and admission.</summary>
public static partial class BudgetServiceCollectionExtensions
{
    private const string PolicyLogCategory = "TokenGateway.Core.Budgets.PolicyProvider";

    /// <summary>
    /// Adds <see cref="IPolicyProvider"/> (over the SQLite <see cref="IPolicyStore"/> of
    /// <see cref="SqliteStorageServiceCollectionExtensions.AddSqliteStorage"/>, added here when missing; seeded from
    /// <c>Policies</c> configuration and reloaded with it), a logging <see cref="ISoftAlertSink"/> (replace it to add
    /// the metric and webhook) and Core's admission services (<see cref="CoreServiceCollectionExtensions.AddTokenGatewayAdmission"/>:
    /// in-process counters, spend seeding from <see cref="IUsageQueryService"/>, <see cref="AdmissionController"/>).
    /// Registrations made before this call win.
    /// </summary>
    public static IServiceCollection AddTokenGatewayBudgets(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddSqliteStorage(); // the policy store lives in the storage database; no-op when already added
        services.TryAddSingleton<ISoftAlertSink, LoggingSoftAlertSink>();
        services.AddTokenGatewayAdmission(); // options, counters, spend seeding, AdmissionController (priced by Pricing)
        services.AddTokenGatewayPolicies(
            _ => ConfigurationPolicyReader.ReadOrThrow(configuration),
            (sp, provider) =>
            {
                var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(PolicyLogCategory);
                ChangeToken.OnChange(
                    () => configuration.GetSection(ConfigurationPolicyReader.SectionName).GetReloadToken(),
                    () => Reload(configuration, provider, logger));
            });
        return services;
    }

    private static void Reload(IConfiguration configuration, IPolicyProvider provider, ILogger logger)
    {
        var configured = ConfigurationPolicyReader.Read(configuration, out var errors);
        if (errors.Count > 0)
        {
            // Keep the previous policies: a typo in a reloaded file must not lift every team's limits.
            LogReloadRejected(logger, string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
            return;
        }

        provider.UpdateConfigured(configured);
        LogReloaded(logger, configured.Teams.Count, configured.Keys.Count);
    }

    [LoggerMessage(2010, LogLevel.Error, "Policy configuration reload rejected; keeping the previous policies: {Errors}")]
    private static partial void LogReloadRejected(ILogger logger, string errors);

    [LoggerMessage(2011, LogLevel.Information, "Policy configuration reloaded ({Teams} team policies, {Keys} key policies)")]
    private static partial void LogReloaded(ILogger logger, int teams, int keys);
}
