namespace TokenGateway.Redis;

/// <summary>What admission does while Redis cannot be reached (<c>Budgets:RedisUnavailable</c>).</summary>
public enum RedisUnavailableMode
{
    /// <summary>Teams (or keys) with a hard budget are refused with 503 <c>budget_unavailable</c>; others proxy on local counters.</summary>
    FailClosed,
    /// <summary>Every team proxies on this replica's in-process counters (budgets hold per replica only), with a metric and a warning.</summary>
    DegradeToLocal,
}

/// <summary>Configuration section <c>Redis</c> (the connection itself is <c>ConnectionStrings:Redis</c>).</summary>
public sealed class RedisOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Redis";

    /// <summary>Name of the connection string (<c>ConnectionStrings:Redis</c>).</summary>
    public const string ConnectionStringName = "Redis";

    /// <summary>Prefix of every key and channel (default <c>tg:</c>); lets several gateways share one Redis.</summary>
    public string KeyPrefix { get; set; } = "tg:";

    /// <summary>How long one Redis call may take before the store treats Redis as unavailable (default 1 s).</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>While Redis is unavailable, how often a request tries it again (default 1 s; the others go local at once).</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>When true, <c>/readyz</c> answers 503 while Redis does not answer (default false: the replica stays ready).</summary>
    public bool RequiredForReadiness { get; set; }

    /// <summary>Use Redis <c>TIME</c> inside the scripts (default true). False = the gateway's clock (tests with a fake clock).</summary>
    public bool UseServerTime { get; set; } = true;
}

/// <summary>The Redis part of configuration section <c>Budgets</c>.</summary>
public sealed class RedisBudgetOptions
{
    /// <summary>What admission does while Redis cannot be reached (default <see cref="RedisUnavailableMode.FailClosed"/>).</summary>
    public RedisUnavailableMode RedisUnavailable { get; set; } = RedisUnavailableMode.FailClosed;
}
