using TokenGateway.Core.Teams;
using TokenGateway.Insights;

namespace TokenGateway.Endpoints;

/// <summary><c>GET /admin/teams/{id}/insights</c>: recommendations ranked by estimated dollars per month (docs/insights.md).</summary>
internal static class AdminInsightsEndpoints
{
    public static RouteGroupBuilder MapAdminInsights(this RouteGroupBuilder admin)
    {
        admin.MapGet("/teams/{teamId}/insights", async (string teamId, ITeamStore teams, InsightsService insights, CancellationToken ct) =>
            await teams.GetTeamAsync(teamId, ct) is null
                ? AdminProblems.NotFound("Team", teamId)
                : Results.Ok(await insights.GetAsync(teamId, ct)));
        return admin;
    }
}
