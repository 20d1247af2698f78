using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Changes;
using TokenGateway.Core.Health;
using TokenGateway.Core.Metering;
using TokenGateway.Redis;
using TokenGateway.Redis.Budgets;
using TokenGateway.Redis.Changes;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Redis-backed budget counters and change notifications (issue #14).</summary>
public static class RedisServiceCollectionExtensions
{
    /// <summary>
    /// When <c>ConnectionStrings:Redis</c> is set (read when the services are resolved, so test hosts can set it late):
    /// <see cref="IBudgetCounterStore"/> on Redis with the <c>Budgets:RedisUnavailable</c> fallback, an
    /// <see cref="IChangeNotifier"/> over Redis pub/sub, a background reaper, and the <c>redis</c> readiness entry.
    /// Without it: the in-process counters and notifier, as before. Call before <c>AddTokenGatewayBudgets</c>
    /// (registrations made first win). Also sets <c>Changes:PollInterval</c> to 1 s when <c>ConnectionStrings:Postgres</c>
    /// is set without Redis (replicas then poll instead of being notified).
    /// </summary>
    public static IServiceCollection AddTokenGatewayRedis(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(static d => d.ServiceType == typeof(RedisConnection)))
        {
            return services;
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<RedisOptions>().BindConfiguration(RedisOptions.SectionName);
        services.AddOptions<RedisBudgetOptions>().BindConfiguration(AdmissionOptions.SectionName);
        services.AddOptions<ChangeOptions>().PostConfigure<IConfiguration>(static (options, configuration) =>
        {
            if (options.PollInterval is null
                && !string.IsNullOrWhiteSpace(configuration.GetConnectionString("Postgres"))
                && string.IsNullOrWhiteSpace(configuration.GetConnectionString(RedisOptions.ConnectionStringName)))
            {
                options.PollInterval = TimeSpan.FromSeconds(1);
            }
        });
        services.AddSingleton<RedisConnection>();
        services.AddSingleton<RedisBudgetMetrics>();
        services.AddSingleton(static sp => sp.GetRequiredService<IOptions<RedisBudgetOptions>>().Value);
        services.TryAddSingleton<IBudgetCounterStore>(static sp =>
        {
            var connection = sp.GetRequiredService<RedisConnection>();
            var admission = sp.GetRequiredService<IOptions<AdmissionOptions>>().Value;
            var time = sp.GetRequiredService<TimeProvider>();
            var local = new InMemoryBudgetCounterStore(time, admission.ReapInterval);
            if (!connection.IsConfigured)
            {
                return local;
            }

            var requireSeeded = sp.GetService<IUsageQueryService>() is not null;
            var options = connection.Options;
            var redis = new RedisBudgetCounterStore(connection.Multiplexer, options.KeyPrefix, options.UseServerTime ? null : time, requireSeeded, admission.ReservationTtl);
            return new ResilientBudgetCounterStore(redis, local, sp.GetRequiredService<RedisBudgetOptions>().RedisUnavailable, options.RetryInterval, time, requireSeeded,
                sp.GetRequiredService<ILogger<ResilientBudgetCounterStore>>(), sp.GetRequiredService<RedisBudgetMetrics>());
        });
        services.AddSingleton<RedisChangeNotifier>();
        services.TryAddSingleton<IChangeNotifier>(static sp => sp.GetRequiredService<RedisConnection>().IsConfigured
            ? sp.GetRequiredService<RedisChangeNotifier>()
            : new LocalChangeNotifier());
        services.AddSingleton<IHostedService>(static sp => new RedisStartup(sp));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDependencyCheck, RedisDependencyCheck>());
        return services;
    }

    /// <summary>Starts the pub/sub subscription and the reaper only when Redis is configured.</summary>
    private sealed class RedisStartup(IServiceProvider services) : IHostedService
    {
        private BudgetReaperService? _reaper;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            if (!services.GetRequiredService<RedisConnection>().IsConfigured)
            {
                return;
            }

            await services.GetRequiredService<RedisChangeNotifier>().StartAsync(cancellationToken);
            _reaper = new BudgetReaperService(
                services.GetRequiredService<IBudgetCounterStore>(),
                services.GetRequiredService<IOptions<AdmissionOptions>>().Value,
                services.GetRequiredService<TimeProvider>(),
                services.GetRequiredService<ILogger<BudgetReaperService>>());
            await _reaper.StartAsync(cancellationToken);
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_reaper is not null)
            {
                await _reaper.StopAsync(cancellationToken);
                _reaper.Dispose();
            }
        }
    }
}
