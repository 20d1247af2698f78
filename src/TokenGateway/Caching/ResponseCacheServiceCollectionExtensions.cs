using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Caching;
using TokenGateway.Proxy;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the per-team response cache (issue #15): options, storage and the answer capture hook.</summary>
internal static class ResponseCacheServiceCollectionExtensions
{
    /// <summary>Call after every other <see cref="IResponseBodyHook"/> registration: the capture must see the final answer.</summary>
    public static IServiceCollection AddGatewayResponseCache(this IServiceCollection services)
    {
        services.AddOptions<ResponseCacheOptions>().BindConfiguration(ResponseCacheOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ResponseCacheOptions>, ResponseCacheOptionsValidator>();
        services.TryAddSingleton(sp => new ResponseCacheClock(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<ResponseCacheStore>();
        services.AddSingleton<IResponseBodyHook, ResponseCaptureHook>();
        return services;
    }
}
