using StackExchange.Redis;

namespace TokenGateway.Redis.Tests;

/// <summary>
/// The shared Redis that <c>.ci/services start</c> runs on 127.0.0.1:56379 (or <c>TOKENGATEWAY_TEST_REDIS</c>). Tests
/// use a key prefix of their own and never flush; they are skipped with a message when nothing answers there.
/// </summary>
public static class RedisTestServer
{
    private static readonly Lazy<ConnectionMultiplexer?> _connection = new(Connect);

    public static string Endpoint => Environment.GetEnvironmentVariable("TOKENGATEWAY_TEST_REDIS") is { Length: > 0 } configured ? configured : "127.0.0.1:56379";

    public static string SkipMessage => $"No Redis answers at {Endpoint}: run `.ci/services start` (or set TOKENGATEWAY_TEST_REDIS).";

    /// <summary>The connection, or a skip when Redis is absent.</summary>
    public static ConnectionMultiplexer Connection
    {
        get
        {
            Skip.If(_connection.Value is null, SkipMessage);
            return _connection.Value!;
        }
    }

    /// <summary>A prefix no other test uses.</summary>
    public static string NewPrefix() => "tgtest-" + Guid.NewGuid().ToString("N")[..12] + ":";

    private static ConnectionMultiplexer? Connect()
    {
        try
        {
            var connection = ConnectionMultiplexer.Connect(Endpoint + ",abortConnect=true,connectTimeout=2000");
            connection.GetDatabase().Ping();
            return connection;
        }
        catch (RedisConnectionException)
        {
            return null;
        }
    }
}
