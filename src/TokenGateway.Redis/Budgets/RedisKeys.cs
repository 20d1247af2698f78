using StackExchange.Redis;

namespace TokenGateway.Redis.Budgets;

/// <summary>Key names of one team's counters: <c>{prefix}{team}:…</c>, hash-tagged by team (one cluster slot).</summary>
internal readonly struct RedisKeys(string prefix, string teamId)
{
    private readonly string _base = prefix + "{" + teamId + "}:";

    public RedisKey Window(string? keyId, string windowKey) => keyId is null ? _base + "w:" + windowKey : _base + "kw:" + keyId + ":" + windowKey;

    public RedisKey Rate(string? keyId) => keyId is null ? _base + "rate" : _base + "krate:" + keyId;

    public RedisKey Reservations => _base + "res";

    public RedisKey ReservationData => _base + "resd";

    /// <summary>An unused key of the team's slot, for script slots that a call does not need.</summary>
    public RedisKey Unused => _base + "unused";
}
