using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Teams;
using TokenGateway.Resilience;

namespace TokenGateway.Endpoints;

/// <summary>Admin API for team and key policies and the team budget view (DESIGN.md §3, docs/budgets.md).</summary>
internal static class AdminPolicyEndpoints
{
    public static RouteGroupBuilder MapAdminPolicies(this RouteGroupBuilder admin)
    {
        admin.MapGet("/teams/{teamId}/policy", (string teamId, ITeamStore teams, IPolicyProvider policies, CancellationToken ct) =>
            GetAsync(PolicyScope.Team, teamId, teams, policies, ct));
        admin.MapPut("/teams/{teamId}/policy", (string teamId, JsonNode? body, ITeamStore teams, IPolicyProvider policies, ResiliencePolicyValidator resilience, CancellationToken ct) =>
            PutAsync(PolicyScope.Team, teamId, body, teams, policies, resilience, ct));
        admin.MapDelete("/teams/{teamId}/policy", (string teamId, ITeamStore teams, IPolicyProvider policies, CancellationToken ct) =>
            DeleteAsync(PolicyScope.Team, teamId, teams, policies, ct));
        admin.MapGet("/keys/{keyId}/policy", (string keyId, ITeamStore teams, IPolicyProvider policies, CancellationToken ct) =>
            GetAsync(PolicyScope.Key, keyId, teams, policies, ct));
        admin.MapPut("/keys/{keyId}/policy", (string keyId, JsonNode? body, ITeamStore teams, IPolicyProvider policies, ResiliencePolicyValidator resilience, CancellationToken ct) =>
            PutAsync(PolicyScope.Key, keyId, body, teams, policies, resilience, ct));
        admin.MapDelete("/keys/{keyId}/policy", (string keyId, ITeamStore teams, IPolicyProvider policies, CancellationToken ct) =>
            DeleteAsync(PolicyScope.Key, keyId, teams, policies, ct));
        admin.MapGet("/teams/{teamId}/budget", BudgetAsync);
        return admin;
    }

    private static async Task<bool> ExistsAsync(PolicyScope scope, string id, ITeamStore teams, CancellationToken ct) =>
        scope == PolicyScope.Team ? await teams.GetTeamAsync(id, ct) is not null : await teams.GetKeyAsync(id, ct) is not null;

    private static async Task<IResult> GetAsync(PolicyScope scope, string id, ITeamStore teams, IPolicyProvider policies, CancellationToken ct)
    {
        if (!await ExistsAsync(scope, id, teams, ct))
        {
            return AdminProblems.NotFound(scope.ToString(), id);
        }

        var own = await policies.GetOwnAsync(scope, id, ct);
        return own is null ? AdminProblems.Create(404, "not_found", $"No policy is set for {scope.ToString().ToLowerInvariant()} '{id}'; the default policy applies.")
            : Results.Text(PolicyJson.ToNode(own).ToJsonString(), "application/json");
    }

    private static async Task<IResult> PutAsync(
        PolicyScope scope, string id, JsonNode? body, ITeamStore teams, IPolicyProvider policies, ResiliencePolicyValidator resilience, CancellationToken ct)
    {
        if (!await ExistsAsync(scope, id, teams, ct))
        {
            return AdminProblems.NotFound(scope.ToString(), id);
        }

        if (AdminProblems.DuplicateProperty(body) is { } duplicate)
        {
            return duplicate;
        }

        var parsed = PolicyJson.Parse(body); // validates every section, optimization and structuredOutput included
        if (parsed.Policy is null || parsed.Errors.Count > 0)
        {
            return Invalid(parsed.Errors);
        }

        var resilienceErrors = resilience.Validate(scope, parsed.Policy).ToList(); // catalogue-aware: known models, same dialect
        if (resilienceErrors.Count > 0)
        {
            return Invalid(resilienceErrors);
        }

        var result = await policies.SetAsync(scope, id, parsed.Policy, ct);
        if (result.Errors.Count > 0)
        {
            return Invalid(result.Errors);
        }

        return Results.Text(PolicyJson.ToNode(parsed.Policy).ToJsonString(), "application/json");
    }

    private static async Task<IResult> DeleteAsync(PolicyScope scope, string id, ITeamStore teams, IPolicyProvider policies, CancellationToken ct)
    {
        if (!await ExistsAsync(scope, id, teams, ct))
        {
            return AdminProblems.NotFound(scope.ToString(), id);
        }

        return await policies.RemoveAsync(scope, id, ct) ? Results.NoContent() : AdminProblems.NotFound("Policy", id);
    }

    private static async Task<IResult> BudgetAsync(string teamId, ITeamStore teams, IPolicyProvider policies, AdmissionController admission, CancellationToken ct)
    {
        if (await teams.GetTeamAsync(teamId, ct) is null)
        {
            return AdminProblems.NotFound("Team", teamId);
        }

        var policy = await policies.GetAsync(teamId, null, ct);
        return Results.Ok(await admission.GetBudgetAsync(policy, ct));
    }

    private static IResult Invalid(IEnumerable<PolicyError> errors)
    {
        var map = errors.GroupBy(e => e.Field).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray());
        return AdminProblems.Create(400, "invalid_policy", "The policy is invalid: " + string.Join("; ", map.Select(kv => $"{kv.Key}: {string.Join(", ", kv.Value)}")), map);
    }
}
