namespace TokenGateway.Core.Teams;

/// <summary>Persists teams and virtual keys (hashes only).</summary>
public interface ITeamStore
{
    /// <summary>Creates a team.</summary>
    Task<Team> CreateTeamAsync(string name, CancellationToken cancellationToken);

    /// <summary>Finds a team by id.</summary>
    Task<Team?> GetTeamAsync(string teamId, CancellationToken cancellationToken);

    /// <summary>Lists teams ordered by id, starting after <paramref name="afterId"/>.</summary>
    Task<Page<Team>> ListTeamsAsync(int limit, string? afterId, CancellationToken cancellationToken);

    /// <summary>Stores a new key under its hash.</summary>
    Task<VirtualKey> CreateKeyAsync(string teamId, string name, string keyHash, string prefix, DateTimeOffset? expiresAt, CancellationToken cancellationToken);

    /// <summary>Lists a team's keys ordered by id.</summary>
    Task<Page<VirtualKey>> ListKeysAsync(string teamId, int limit, string? afterId, CancellationToken cancellationToken);

    /// <summary>Finds a key by id.</summary>
    Task<VirtualKey?> GetKeyAsync(string keyId, CancellationToken cancellationToken);

    /// <summary>Finds a key by the hash of the presented secret.</summary>
    Task<VirtualKey?> FindKeyByHashAsync(string keyHash, CancellationToken cancellationToken);

    /// <summary>Marks a key revoked; false when it does not exist.</summary>
    Task<bool> RevokeKeyAsync(string keyId, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Reads a gateway setting (e.g. the admin key hash).</summary>
    Task<string?> GetSettingAsync(string name, CancellationToken cancellationToken);

    /// <summary>Writes a gateway setting.</summary>
    Task SetSettingAsync(string name, string value, CancellationToken cancellationToken);
}
