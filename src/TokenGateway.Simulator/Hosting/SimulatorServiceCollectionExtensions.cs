using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Simulator;
using TokenGateway.Simulator.Endpoints;
using TokenGateway.Simulator.Faults;
using TokenGateway.Simulator.Prompts;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the LLM simulator's services.</summary>
public static class SimulatorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the simulator: options (section <c>Simulator</c>, then <paramref name="configure"/>), the
    /// <see cref="SimulatorRecorder"/> singleton, the simulated prompt cache and the route handlers.
    /// </summary>
    public static IServiceCollection AddLlmSimulator(this IServiceCollection services, Action<SimulatorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<SimulatorOptions>()
            .Configure<IServiceProvider>(static (o, sp) => sp.GetService<IConfiguration>()?.GetSection(SimulatorOptions.SectionName).Bind(o));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SimulatorOptions>, SimulatorOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SimulatorRecorder>();
        services.TryAddSingleton<PromptCache>();
        services.TryAddSingleton<FaultScenarios>();
        services.TryAddSingleton<RateLimitHeaders>();
        services.TryAddSingleton<SimulatorEndpoints>();
        return services;
    }
}
