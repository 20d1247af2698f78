namespace TokenGateway.Core.Teams;

/// <summary>A team: the unit that owns keys, budgets and usage.</summary>
public sealed record Team(string Id, string Name, DateTimeOffset CreatedAt);

/// <summary>A virtual key as stored: only its hash and a short display prefix, never the key itself.</summary>
public sealed record VirtualKey(
    string Id,
    string TeamId,
    string Name,
    string Prefix,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt)
{
    /// <summary>True when the key may authenticate at <paramref name="now"/>.</summary>
    public bool IsActive(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}

/// <summary>One page of a list.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);
