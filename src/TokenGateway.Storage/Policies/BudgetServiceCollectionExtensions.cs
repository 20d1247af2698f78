using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Policies;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers policies, budget counters and admission.</summary>
public static partial class BudgetServiceCollectionExtensions
{
    /// <summary>Default SQLite connection string for the policy table when <c>Policies:ConnectionString</c> is unset.</summary>
    public const string DefaultConnectionString = "Data Source=data/tokengateway.db";

    /// <summary>
    /// Adds <see cref="IPolicyProvider"/> (SQLite-backed, seeded from <c>Policies</c> configuration and reloaded with
    /// it), the in-process <see cref="IBudgetCounterStore"/>, <see cref="BudgetSpentLoader"/> (uses
    /// <see cref="IUsageQueryService"/> when registered), a logging <see cref="ISoftAlertSink"/> (replace it to add
    /// the metric and webhook) and <see cref="AdmissionController"/>. Registrations made before this call win.
    /// </summary>
    public static IServiceCollection AddTokenGatewayBudgets(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<AdmissionOptions>().BindConfiguration(AdmissionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AdmissionOptions>, AdmissionOptionsValidator>());

        services.TryAddSingleton<IPolicyStore>(sp => new SqlitePolicyStore(
            configuration[$"{ConfigurationPolicyReader.SectionName}:ConnectionString"] ?? DefaultConnectionString,
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IPolicyProvider>(sp =>
        {
            var provider = new PolicyProvider(
                sp.GetRequiredService<IPolicyStore>(),
                ConfigurationPolicyReader.ReadOrThrow(configuration),
                sp.GetRequiredService<TimeProvider>());
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PolicyProvider));
            ChangeToken.OnChange(
                () => configuration.GetSection(ConfigurationPolicyReader.SectionName).GetReloadToken(),
                () => Reload(configuration, provider, logger));
            return provider;
        });

        services.TryAddSingleton<IBudgetCounterStore>(sp => new InMemoryBudgetCounterStore(
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IOptions<AdmissionOptions>>().Value.ReapInterval));
        services.TryAddSingleton(sp => new BudgetSpentLoader(
            sp.GetRequiredService<IBudgetCounterStore>(),
            sp.GetService<IUsageQueryService>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILedgerRecovery>()));
        services.TryAddSingleton<SoftAlertTracker>();
        services.TryAddSingleton<ISoftAlertSink, LoggingSoftAlertSink>();
        services.TryAddSingleton(sp => new AdmissionController(
            sp.GetRequiredService<IBudgetCounterStore>(),
            sp.GetRequiredService<BudgetSpentLoader>(),
            sp.GetRequiredService<ISoftAlertSink>(),
            sp.GetRequiredService<SoftAlertTracker>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IOptions<AdmissionOptions>>().Value));
        return services;
    }

    private static void Reload(IConfiguration configuration, PolicyProvider provider, ILogger logger)
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

/// <summary>Cross-field checks for <see cref="AdmissionOptions"/>.</summary>
internal sealed class AdmissionOptionsValidator : IValidateOptions<AdmissionOptions>
{
    public ValidateOptionsResult Validate(string? name, AdmissionOptions options)
    {
        var failures = new List<string>();
        if (options.MinimumOutputTokens < 1)
        {
            failures.Add($"{AdmissionOptions.SectionName}:MinimumOutputTokens must be at least 1.");
        }

        if (options.MinimumOutputFraction is < 0 or > 1 || double.IsNaN(options.MinimumOutputFraction))
        {
            failures.Add($"{AdmissionOptions.SectionName}:MinimumOutputFraction must be between 0 and 1.");
        }

        if (options.MaxChoices is < 1 or > 128)
        {
            failures.Add($"{AdmissionOptions.SectionName}:MaxChoices must be between 1 and 128.");
        }

        if (options.ReservationTtl <= TimeSpan.Zero)
        {
            failures.Add($"{AdmissionOptions.SectionName}:ReservationTtl must be positive.");
        }

        if (options.ReapInterval <= TimeSpan.Zero)
        {
            failures.Add($"{AdmissionOptions.SectionName}:ReapInterval must be positive.");
        }

        if (options.UnpricedInputPricePerMillion < 0 || options.UnpricedOutputPricePerMillion < 0)
        {
            failures.Add($"{AdmissionOptions.SectionName}: unpriced-model price ceilings must not be negative.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
