using TokenGateway.Core.Metering;

namespace TokenGateway.Endpoints;

/// <summary>Admin usage views the dashboard needs beyond aggregates: recent events and savings per optimization stage.</summary>
internal static class AdminDashboardEndpoints
{
    /// <summary>Most events a stage aggregation reads (the newest ones in the range).</summary>
    private const int StageScanLimit = 200_000;

    public sealed record StageTotal(string Stage, long TokensSaved, long Requests);

    public static RouteGroupBuilder MapAdminDashboardData(this RouteGroupBuilder admin)
    {
        admin.MapGet("/usage/recent", RecentAsync);
        admin.MapGet("/usage/stages", StagesAsync);
        return admin;
    }

    private static async Task<IResult> RecentAsync(HttpContext context, IUsageQueryService usage, int? limit, CancellationToken ct)
    {
        if (!AdminUsageEndpoints.TryReadQuery(context.Request.Query, out var query, out var problem))
        {
            return problem!;
        }

        var events = new List<AdminUsageEndpoints.UsageEventResponse>();
        await foreach (var e in usage.ListAsync(query with { GroupBy = null }, Math.Clamp(limit ?? 50, 1, 1000), ct))
        {
            events.Add(AdminUsageEndpoints.UsageEventResponse.From(e));
        }

        return Results.Ok(new { data = events });
    }

    private static async Task<IResult> StagesAsync(HttpContext context, IUsageQueryService usage, CancellationToken ct)
    {
        if (!AdminUsageEndpoints.TryReadQuery(context.Request.Query, out var query, out var problem))
        {
            return problem!;
        }

        var totals = new Dictionary<string, (long Saved, long Requests)>(StringComparer.Ordinal);
        long scanned = 0;
        await foreach (var e in usage.ListAsync(query with { GroupBy = null }, StageScanLimit, ct))
        {
            scanned++;
            foreach (var stage in e.Stages)
            {
                var current = totals.GetValueOrDefault(stage.Name);
                totals[stage.Name] = (current.Saved + stage.TokensSaved, current.Requests + (stage.TokensSaved > 0 ? 1 : 0));
            }
        }

        return Results.Ok(new
        {
            stages = totals.OrderByDescending(kv => kv.Value.Saved).Select(kv => new StageTotal(kv.Key, kv.Value.Saved, kv.Value.Requests)),
            scannedEvents = scanned,
            truncated = scanned >= StageScanLimit,
        });
    }
}
