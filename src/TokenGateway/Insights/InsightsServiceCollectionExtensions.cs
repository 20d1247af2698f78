using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;
using TokenGateway.Insights;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the per-team insights: options, the observation store, the shadow sampler and its worker.</summary>
public static class InsightsServiceCollectionExtensions
{
    /// <summary>Adds <c>Insights</c> options (validated on start), the store, the evaluator and the sampler.</summary>
    public static IServiceCollection AddGatewayInsights(this IServiceCollection services)
    {
        services.AddOptions<InsightsOptions>().BindConfiguration(InsightsOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<InsightsOptions>, InsightsOptionsValidator>());
        services.TryAddSingleton(sp => new InsightsStore(sp.GetRequiredService<IOptions<InsightsOptions>>().Value.MaxTeams));
        services.TryAddSingleton(sp => new ShadowEvaluator(
            sp.GetRequiredService<OptimizationPipeline>(), sp.GetRequiredService<IRequestTokenCounter>(), sp.GetRequiredService<CostCalculator>()));
        services.TryAddSingleton<InsightsSampler>();
        services.AddHostedService(sp => sp.GetRequiredService<InsightsSampler>());
        services.TryAddSingleton<InsightsPersistence>();
        services.AddHostedService(sp => sp.GetRequiredService<InsightsPersistence>());
        services.TryAddSingleton<InsightsService>();
        return services;
    }
}
