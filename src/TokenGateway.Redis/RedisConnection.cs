using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace TokenGateway.Redis;

/// <summary>
/// The one <see cref="IConnectionMultiplexer"/> of the process, from <c>ConnectionStrings:Redis</c>. Connects once,
/// without aborting when Redis is down at start (the gateway starts and the failure mode applies), and reconnects in
/// the background.
/// </summary>
internal sealed class RedisConnection : IDisposable
{
    private readonly Lazy<ConnectionMultiplexer> _multiplexer;

    public RedisConnection(IConfiguration configuration, IOptions<RedisOptions> options)
    {
        ConnectionString = configuration.GetConnectionString(RedisOptions.ConnectionStringName);
        Options = options.Value;
        _multiplexer = new Lazy<ConnectionMultiplexer>(Connect);
    }

    /// <summary>True when <c>ConnectionStrings:Redis</c> is set.</summary>
    public bool IsConfigured => !string.IsNullOrWhiteSpace(ConnectionString);

    public RedisOptions Options { get; }

    /// <summary>The connection (created on first use).</summary>
    public IConnectionMultiplexer Multiplexer => _multiplexer.Value;

    private string? ConnectionString { get; }

    public void Dispose()
    {
        if (_multiplexer.IsValueCreated)
        {
            _multiplexer.Value.Dispose();
        }
    }

    private ConnectionMultiplexer Connect()
    {
        var config = ConfigurationOptions.Parse(ConnectionString!); // Multiplexer is used only when IsConfigured
        config.AbortOnConnectFail = false;
        config.ClientName ??= "tokengateway";
        var timeout = (int)Math.Max(1, Options.OperationTimeout.TotalMilliseconds);
        config.AsyncTimeout = timeout;
        config.SyncTimeout = timeout;
        // Start-up must not wait long for a Redis that is down: the failure mode applies and the multiplexer keeps
        // reconnecting in the background. Settings in the connection string win.
        if (!ConnectionString!.Contains("connectTimeout", StringComparison.OrdinalIgnoreCase))
        {
            config.ConnectTimeout = Math.Max(timeout, 1000);
        }

        if (!ConnectionString.Contains("connectRetry", StringComparison.OrdinalIgnoreCase))
        {
            config.ConnectRetry = 1;
        }

        return ConnectionMultiplexer.Connect(config);
    }
}
