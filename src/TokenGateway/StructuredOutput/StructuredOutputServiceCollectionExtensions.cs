using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Proxy;
using TokenGateway.Proxy.Upstream;
using TokenGateway.Storage;
using TokenGateway.Storage.Schemas;
using TokenGateway.StructuredOutput;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers structured-output enforcement: the schema registry, policies, the response hook and repair calls.</summary>
internal static class StructuredOutputServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ISchemaRegistry"/> (SQLite table <c>output_schemas</c> in the storage database; registrations
    /// made before this call win), the policy cache, the repair client and the response hook.
    /// </summary>
    public static IServiceCollection AddStructuredOutput(this IServiceCollection services)
    {
        services.TryAddSingleton<ISchemaRegistry>(sp => new SqliteSchemaRegistry(
            sp.GetRequiredService<IOptions<StorageOptions>>().Value.ConnectionString, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<StructuredOutputPolicies>();
        services.TryAddSingleton<UpstreamInvoker>();
        services.AddSingleton<StructuredOutputRepairClient>();
        services.AddSingleton<IResponseBodyHook, StructuredOutputResponseHook>();
        return services;
    }
}
