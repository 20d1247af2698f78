using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace TokenGateway.Redis.Budgets;

/// <summary>A Lua script sent as <c>EVALSHA</c>, falling back to <c>EVAL</c> (which caches it) when the server lost it.</summary>
internal sealed class RedisScript(string source)
{
    private readonly byte[] _sha1 = SHA1.HashData(Encoding.UTF8.GetBytes(source));

    public string Source { get; } = source;

    public async Task<RedisResult> EvaluateAsync(IDatabaseAsync database, RedisKey[] keys, RedisValue[] values)
    {
        try
        {
            return await database.ScriptEvaluateAsync(_sha1, keys, values).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            // A restart, failover or SCRIPT FLUSH emptied the script cache: EVAL loads it again.
            return await database.ScriptEvaluateAsync(Source, keys, values).ConfigureAwait(false);
        }
    }
}
