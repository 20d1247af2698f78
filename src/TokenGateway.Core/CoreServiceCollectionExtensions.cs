using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Changes;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Core services: tokenizers and counting, the model catalogue, pricing and the optimizer.</summary>
/// <remarks>
/// Every options class is bound from its section and validated at start (<c>ValidateOnStart</c>), so bad
/// configuration fails the start with the offending key instead of a silent fallback on the first request. Each
/// method may be called more than once.
/// </remarks>
public static class CoreServiceCollectionExtensions
{
    /// <summary>Adds everything below: tokenization, pricing, the model catalogue and the optimization pipeline.</summary>
    public static IServiceCollection AddTokenGatewayCore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.AddTokenGatewayTokenization().AddTokenGatewayPricing().AddTokenGatewayModels().AddTokenGatewayOptimization();
    }

    /// <summary>Adds the shared <see cref="ITokenizerRegistry"/> and the provider-faithful <see cref="IRequestTokenCounter"/>.</summary>
    public static IServiceCollection AddTokenGatewayTokenization(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<ITokenizerRegistry>(TiktokenTokenizerRegistry.Shared);
        services.TryAddSingleton<IRequestTokenCounter>(static sp => new ChatRequestTokenCounter(sp.GetRequiredService<ITokenizerRegistry>()));
        return services;
    }

    /// <summary>
    /// Adds <see cref="PricingOptions"/> (section <c>Pricing</c>, with the deprecated <c>Budgets:Unpriced*</c> aliases)
    /// and the <see cref="CostCalculator"/> that settles with them.
    /// </summary>
    public static IServiceCollection AddTokenGatewayPricing(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(static d => d.ServiceType == typeof(CostCalculator)))
        {
            return services;
        }

        services.AddOptions<PricingOptions>()
            .Configure<IConfiguration>(static (options, configuration) =>
            {
                var section = configuration.GetSection(PricingOptions.SectionName);
                section.Bind(options);

                // Deprecated aliases (before issue #11 admission read these and settlement read Pricing, so the two
                // could charge different prices). Read only when the Pricing key itself is absent.
                if (section[nameof(PricingOptions.CeilingInputPerMillion)] is null && configuration.GetValue<decimal?>(LegacyUnpricedInputKey) is { } input)
                {
                    options.CeilingInputPerMillion = input;
                }

                if (section[nameof(PricingOptions.CeilingOutputPerMillion)] is null && configuration.GetValue<decimal?>(LegacyUnpricedOutputKey) is { } output)
                {
                    options.CeilingOutputPerMillion = output;
                }
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PricingOptions>, PricingOptionsValidator>());
        services.TryAddSingleton(static sp => new CostCalculator(sp.GetRequiredService<IOptions<PricingOptions>>().Value));
        return services;
    }

    /// <summary>
    /// Adds <see cref="ModelCatalogOptions"/> (section <c>Models</c>, validated at start: known tokenizers, prices unless
    /// unpriced models are charged a ceiling) and the immutable <see cref="ModelCatalog"/> built from it.
    /// </summary>
    public static IServiceCollection AddTokenGatewayModels(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddTokenGatewayPricing();
        if (services.Any(static d => d.ServiceType == typeof(ModelCatalog)))
        {
            return services;
        }

        services.AddOptions<ModelCatalogOptions>()
            .Configure<IConfiguration>(static (options, configuration) => configuration.GetSection(ModelCatalogOptions.SectionName).Bind(options.Models))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelCatalogOptions>, ModelCatalogOptionsValidator>());
        services.TryAddSingleton(static sp => sp.GetRequiredService<IOptions<ModelCatalogOptions>>().Value.Build());
        return services;
    }

    /// <summary>Adds the <see cref="OptimizationPipeline"/> (stateless; one instance).</summary>
    public static IServiceCollection AddTokenGatewayOptimization(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddTokenGatewayTokenization();
        services.TryAddSingleton<OptimizationPipeline>();
        return services;
    }

    /// <summary>
    /// Adds admission: <see cref="AdmissionOptions"/> (section <c>Budgets</c>, validated at start), the in-process
    /// <see cref="IBudgetCounterStore"/>, spend seeding from <see cref="IUsageQueryService"/> when one is registered,
    /// the soft-alert tracker and <see cref="AdmissionController"/>, priced by the same <see cref="PricingOptions"/> as
    /// <see cref="CostCalculator"/>. Needs an <see cref="ISoftAlertSink"/>. Registrations made before this call win.
    /// </summary>
    public static IServiceCollection AddTokenGatewayAdmission(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddTokenGatewayPricing();
        services.TryAddSingleton<AdaptiveOutputCaps>();
        if (services.Any(static d => d.ServiceType == typeof(AdmissionController)))
        {
            return services;
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<AdmissionOptions>().BindConfiguration(AdmissionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AdmissionOptions>, AdmissionOptionsValidator>());
        services.TryAddSingleton<IBudgetCounterStore>(static sp => new InMemoryBudgetCounterStore(
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IOptions<AdmissionOptions>>().Value.ReapInterval));
        services.TryAddSingleton(static sp => new BudgetSpentLoader(
            sp.GetRequiredService<IBudgetCounterStore>(),
            sp.GetService<IUsageQueryService>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILedgerRecovery>()));
        services.TryAddSingleton<SoftAlertTracker>();
        services.TryAddSingleton(static sp => new AdmissionController(
            sp.GetRequiredService<IBudgetCounterStore>(),
            sp.GetRequiredService<BudgetSpentLoader>(),
            sp.GetRequiredService<ISoftAlertSink>(),
            sp.GetRequiredService<SoftAlertTracker>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IOptions<AdmissionOptions>>().Value,
            sp.GetRequiredService<IOptions<PricingOptions>>().Value));
        return services;
    }

    /// <summary>
    /// Adds the caching <see cref="IPolicyProvider"/> over the registered <see cref="IPolicyStore"/> and the
    /// <paramref name="configured"/> policies; <paramref name="created"/> runs once with the provider (e.g. to hook a
    /// configuration reload to <see cref="IPolicyProvider.UpdateConfigured"/>). A provider registered before wins.
    /// Cached policies refresh after <see cref="ChangeOptions.PollInterval"/> when set, and writes are announced through
    /// the registered <see cref="IChangeNotifier"/>, if any.
    /// </summary>
    public static IServiceCollection AddTokenGatewayPolicies(
        this IServiceCollection services, Func<IServiceProvider, ConfiguredPolicies> configured, Action<IServiceProvider, IPolicyProvider>? created = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configured);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<ChangeOptions>().BindConfiguration(ChangeOptions.SectionName);
        services.TryAddSingleton<IChangeNotifier, LocalChangeNotifier>();
        services.TryAddSingleton<IPolicyProvider>(sp =>
        {
            var provider = new PolicyProvider(
                sp.GetRequiredService<IPolicyStore>(),
                configured(sp),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetService<IOptions<ChangeOptions>>()?.Value.PollInterval,
                sp.GetService<IChangeNotifier>());
            created?.Invoke(sp, provider);
            return provider;
        });
        return services;
    }

    private const string LegacyUnpricedInputKey = "Budgets:UnpricedInputPricePerMillion";
    private const string LegacyUnpricedOutputKey = "Budgets:UnpricedOutputPricePerMillion";
}
