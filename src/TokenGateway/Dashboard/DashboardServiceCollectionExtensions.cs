using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Options;
using TokenGateway.Dashboard;
using TokenGateway.Storage;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers dashboard sessions and Data Protection with its key ring in the gateway's data directory.</summary>
public static class DashboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>DashboardSessions</c> and Data Protection (application name <c>TokenGateway</c>) whose keys live in
    /// <c>{Storage:DataDirectory}/dataprotection-keys</c>, so sessions survive restarts and replicas sharing the
    /// directory accept each other's cookies.
    /// </summary>
    public static IServiceCollection AddGatewayDashboard(this IServiceCollection services)
    {
        services.AddDataProtection().SetApplicationName("TokenGateway");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<StorageOptions>, ILoggerFactory>((o, storage, logs) =>
            o.XmlRepository = new FileSystemXmlRepository(
                new DirectoryInfo(Path.Combine(Path.GetFullPath(storage.Value.DataDirectory), "dataprotection-keys")), logs));
        services.AddSingleton<DashboardSessions>();
        return services;
    }
}
