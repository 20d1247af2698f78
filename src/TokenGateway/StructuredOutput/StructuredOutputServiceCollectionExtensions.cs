using Microsoft.Extensions.DependencyInjection.Extensions;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Proxy;
using TokenGateway.Proxy.Upstream;
using TokenGateway.StructuredOutput;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers structured-output enforcement: the schema registry, policies, the response hook and repair calls.</summary>
internal static class StructuredOutputServiceCollectionExtensions
{
    /// <summary>
    /// Adds the repair client and the response hook; <see cref="ISchemaRegistry"/> comes from the
    /// storage registration (<c>AddSqliteStorage</c>).
    /// </summary>
    public static IServiceCollection AddStructuredOutput(this IServiceCollection services)
    {
        services.TryAddSingleton<UpstreamInvoker>();
        services.AddSingleton<StructuredOutputRepairClient>();
        services.AddSingleton<IResponseBodyHook, StructuredOutputResponseHook>();
        return services;
    }
}
