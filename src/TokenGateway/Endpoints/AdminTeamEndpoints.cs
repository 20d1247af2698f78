using TokenGateway.Auth;
using TokenGateway.Core.Changes;
using TokenGateway.Core.Teams;

namespace TokenGateway.Endpoints;

/// <summary>Admin API for teams and virtual keys (DESIGN.md §3).</summary>
internal static class AdminTeamEndpoints
{
    public sealed record CreateTeamRequest(string? Name);
    public sealed record CreateKeyRequest(string? Name, DateTimeOffset? ExpiresAt);
    public sealed record TeamResponse(string Id, string Name, DateTimeOffset CreatedAt);
    public sealed record KeyResponse(string Id, string TeamId, string Name, string Prefix, DateTimeOffset CreatedAt,
        DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, bool Active);
    public sealed record CreatedKeyResponse(string Id, string TeamId, string Name, string Key, string Prefix,
        DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);
    public sealed record PageResponse<T>(IReadOnlyList<T> Data, string? NextCursor);

    public static RouteGroupBuilder MapAdminTeams(this RouteGroupBuilder admin)
    {
        admin.MapPost("/teams", CreateTeamAsync);
        admin.MapGet("/teams", ListTeamsAsync);
        admin.MapGet("/teams/{teamId}", GetTeamAsync);
        admin.MapPost("/teams/{teamId}/keys", CreateKeyAsync);
        admin.MapGet("/teams/{teamId}/keys", ListKeysAsync);
        admin.MapDelete("/keys/{keyId}", RevokeKeyAsync);
        return admin;
    }

    private static async Task<IResult> CreateTeamAsync(CreateTeamRequest? body, ITeamStore store, CancellationToken ct)
    {
        var name = body?.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            return AdminProblems.Invalid("name", "'name' is required (1-200 characters).");
        }

        var team = await store.CreateTeamAsync(name, ct);
        return Results.Created($"/admin/teams/{team.Id}", ToResponse(team));
    }

    private static async Task<IResult> ListTeamsAsync(ITeamStore store, int? limit, string? after, CancellationToken ct)
    {
        var page = await store.ListTeamsAsync(Math.Clamp(limit ?? 100, 1, 1000), after, ct);
        return Results.Ok(new PageResponse<TeamResponse>(page.Items.Select(ToResponse).ToList(), page.NextCursor));
    }

    private static async Task<IResult> GetTeamAsync(string teamId, ITeamStore store, CancellationToken ct) =>
        await store.GetTeamAsync(teamId, ct) is { } team ? Results.Ok(ToResponse(team)) : AdminProblems.NotFound("Team", teamId);

    private static async Task<IResult> CreateKeyAsync(string teamId, CreateKeyRequest? body, ITeamStore store, TimeProvider time, CancellationToken ct)
    {
        if (await store.GetTeamAsync(teamId, ct) is null)
        {
            return AdminProblems.NotFound("Team", teamId);
        }

        var name = body?.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            return AdminProblems.Invalid("name", "'name' is required (1-200 characters).");
        }

        if (body!.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            return AdminProblems.Invalid("expiresAt", "'expiresAt' must be in the future.");
        }

        var key = ApiKeys.Generate();
        var stored = await store.CreateKeyAsync(teamId, name, ApiKeys.Hash(key), ApiKeys.DisplayPrefix(key), body.ExpiresAt, ct);
        return Results.Created($"/admin/keys/{stored.Id}",
            new CreatedKeyResponse(stored.Id, stored.TeamId, stored.Name, key, stored.Prefix, stored.CreatedAt, stored.ExpiresAt));
    }

    private static async Task<IResult> ListKeysAsync(string teamId, ITeamStore store, TimeProvider time, int? limit, string? after, CancellationToken ct)
    {
        if (await store.GetTeamAsync(teamId, ct) is null)
        {
            return AdminProblems.NotFound("Team", teamId);
        }

        var now = time.GetUtcNow();
        var page = await store.ListKeysAsync(teamId, Math.Clamp(limit ?? 100, 1, 1000), after, ct);
        return Results.Ok(new PageResponse<KeyResponse>(page.Items.Select(k => ToResponse(k, now)).ToList(), page.NextCursor));
    }

    private static async Task<IResult> RevokeKeyAsync(string keyId, ITeamStore store, VirtualKeyAuthenticator authenticator, IChangeNotifier changes, TimeProvider time, CancellationToken ct)
    {
        if (!await store.RevokeKeyAsync(keyId, time.GetUtcNow(), ct))
        {
            return AdminProblems.NotFound("Key", keyId);
        }

        authenticator.Invalidate(keyId);
        // Every other replica drops the key too (Redis pub/sub); not cancelled by the caller: the revocation is stored.
        await changes.PublishAsync(new GatewayChange(ChangeKind.Key, keyId), CancellationToken.None);
        return Results.NoContent();
    }

    private static TeamResponse ToResponse(Team team) => new(team.Id, team.Name, team.CreatedAt);

    private static KeyResponse ToResponse(VirtualKey key, DateTimeOffset now) =>
        new(key.Id, key.TeamId, key.Name, key.Prefix, key.CreatedAt, key.ExpiresAt, key.RevokedAt, key.IsActive(now));
}
