using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using TokenGateway.Core.Changes;

namespace TokenGateway.Redis.Changes;

/// <summary>
/// <see cref="IChangeNotifier"/> over Redis pub/sub (channel <c>{prefix}changes</c>): a change applies here at once and
/// reaches every other replica's caches as soon as Redis delivers the message (milliseconds).
/// </summary>
/// <remarks>
/// Pub/sub is fire-and-forget: a replica that is disconnected misses messages. So when the connection comes back every
/// replica drops all its cached keys and policies (<see cref="ChangeKind.All"/>), and the caches' own refresh interval
/// stays as a last resort. Messages are <c>origin|kind|id</c>; a replica ignores its own.
/// </remarks>
internal sealed partial class RedisChangeNotifier : LocalChangeNotifier, IHostedService
{
    private readonly RedisConnection _connection;
    private readonly ILogger<RedisChangeNotifier> _logger;
    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly RedisChannel _channel;

    public RedisChangeNotifier(RedisConnection connection, ILogger<RedisChangeNotifier> logger)
    {
        _connection = connection;
        _logger = logger;
        _channel = RedisChannel.Literal(connection.Options.KeyPrefix + "changes");
    }

    /// <inheritdoc />
    public override async ValueTask PublishAsync(GatewayChange change, CancellationToken cancellationToken)
    {
        Dispatch(change);
        try
        {
            var message = string.Join('|', _origin, change.Kind.ToString(), change.Id);
            await _connection.Multiplexer.GetSubscriber().PublishAsync(_channel, message).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The change is stored; other replicas see it after their cache refresh interval instead.
            LogPublishFailed(_logger, change.Kind, ex.Message);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var multiplexer = _connection.Multiplexer;
        // Messages sent while this replica was cut off are lost: forget everything cached. (Any restored connection:
        // with RESP3 the subscription shares the interactive one; an extra cache drop is cheap.)
        multiplexer.ConnectionRestored += (_, _) => Dispatch(new GatewayChange(ChangeKind.All, "*"));

        try
        {
            await multiplexer.GetSubscriber().SubscribeAsync(_channel, (_, message) => OnMessage(message)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The multiplexer keeps the subscription and restores it when Redis is reachable.
            LogSubscribeFailed(_logger, ex.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void OnMessage(RedisValue message)
    {
        var text = (string?)message;
        if (text is null)
        {
            return;
        }

        var parts = text.Split('|', 3);
        if (parts.Length != 3 || parts[0] == _origin || !Enum.TryParse<ChangeKind>(parts[1], out var kind))
        {
            return;
        }

        Dispatch(new GatewayChange(kind, parts[2]));
    }

    [LoggerMessage(2060, LogLevel.Warning, "Change notification ({Kind}) could not be published to Redis; other replicas apply it after their cache refresh: {Error}")]
    private static partial void LogPublishFailed(ILogger logger, ChangeKind kind, string error);

    [LoggerMessage(2061, LogLevel.Warning, "Subscribing to change notifications failed; retried when Redis is reachable: {Error}")]
    private static partial void LogSubscribeFailed(ILogger logger, string error);
}
