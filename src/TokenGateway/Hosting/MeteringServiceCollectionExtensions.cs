using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers counting and pricing (the Core metering pieces the proxy pipeline uses).</summary>
public static class MeteringServiceCollectionExtensions
{
    /// <summary>Adds the request token counter and the cost calculator bound to section <c>Pricing</c>.</summary>
    public static IServiceCollection AddGatewayMetering(this IServiceCollection services)
    {
        services.AddOptions<PricingOptions>().BindConfiguration(PricingOptions.SectionName);
        services.AddSingleton<IRequestTokenCounter>(sp => new ChatRequestTokenCounter(sp.GetRequiredService<ITokenizerRegistry>()));
        services.AddSingleton(sp => new CostCalculator(sp.GetRequiredService<IOptions<PricingOptions>>().Value));
        return services;
    }
}
