using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.Resilience;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the resilience building blocks (options, validation at start, circuit breakers).</summary>
internal static class ResilienceServiceCollectionExtensions
{
    /// <summary>
    /// Binds <c>Resilience</c> (headers/idle timeouts default to <c>Gateway:UpstreamTimeout</c>/<c>UpstreamIdleTimeout</c>),
    /// validates it and the catalogue's per-model overrides and fallback chains at start, and registers the breakers.
    /// </summary>
    public static IServiceCollection AddGatewayResilience(this IServiceCollection services)
    {
        services.AddOptions<ResilienceOptions>()
            .BindConfiguration(ResilienceOptions.SectionName)
            .PostConfigure<IOptions<GatewayOptions>>((o, gateway) =>
            {
                o.Timeouts.ResponseHeaders ??= gateway.Value.UpstreamTimeout;
                o.Timeouts.Idle ??= gateway.Value.UpstreamIdleTimeout;
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ResilienceOptions>, ResilienceOptionsValidator>());
        services.AddOptions<ModelCatalogOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelCatalogOptions>, ModelCatalogResilienceValidator>());
        services.TryAddSingleton<ResiliencePolicyValidator>();
        services.TryAddSingleton<CircuitBreakerRegistry>();
        // Per-attempt connect timeouts (Resilience:Timeouts:Connect, per model and team) on YARP's forwarder clients.
        services.AddSingleton<Yarp.ReverseProxy.Forwarder.IForwarderHttpClientFactory, ConnectTimeoutHttpClientFactory>();
        services.TryAddSingleton<ICircuitStates>(sp => sp.GetRequiredService<CircuitBreakerRegistry>());
        // The passive health policy every cluster names (GatewayProxyConfigProvider): the breakers set destination health.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Yarp.ReverseProxy.Health.IPassiveHealthCheckPolicy, BreakerPassiveHealthPolicy>());
        return services;
    }
}
