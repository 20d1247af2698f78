namespace TokenGateway.Core.Budgets;

/// <summary>The typed, defaulted <c>cache</c> section of a team's effective policy (see docs/caching.md).</summary>
/// <param name="Enabled">True when the team's answers are cached.</param>
/// <param name="Ttl">How long a stored answer may be served.</param>
/// <param name="MaxEntryBytes">Largest stored answer (bytes of its JSON).</param>
/// <param name="RequireDeterministic">True: only <c>temperature: 0</c> or seeded requests are cached.</param>
public sealed record ResponseCacheSettings(bool Enabled, TimeSpan Ttl, int MaxEntryBytes, bool RequireDeterministic)
{
    /// <summary>Default time to live (one hour).</summary>
    public const int DefaultTtlSeconds = 3600;

    /// <summary>Shortest accepted time to live.</summary>
    public const int MinTtlSeconds = 1;

    /// <summary>Longest accepted time to live (30 days).</summary>
    public const int MaxTtlSeconds = 30 * 24 * 3600;

    /// <summary>Default largest entry (1 MiB).</summary>
    public const int DefaultMaxEntryBytes = 1024 * 1024;

    /// <summary>Smallest accepted entry limit.</summary>
    public const int MinEntryBytes = 1024;

    /// <summary>Largest accepted entry limit (64 MiB).</summary>
    public const int MaxEntryBytesLimit = 64 * 1024 * 1024;

    /// <summary>The cache off (the built-in default).</summary>
    public static ResponseCacheSettings Disabled { get; } = new(false, TimeSpan.FromSeconds(DefaultTtlSeconds), DefaultMaxEntryBytes, false);

    /// <summary>Applies the defaults to a merged (validated) section.</summary>
    public static ResponseCacheSettings From(CachePolicy? section) => section is null
        ? Disabled
        : new ResponseCacheSettings(
            section.Enabled ?? false,
            TimeSpan.FromSeconds(section.TtlSeconds ?? DefaultTtlSeconds),
            section.MaxEntryBytes ?? DefaultMaxEntryBytes,
            section.RequireDeterministic ?? false);
}
