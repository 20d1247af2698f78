using TokenGateway.Core.Caching;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Endpoints;

/// <summary>Admin usage views the dashboard needs beyond aggregates: recent events and savings per optimization stage.</summary>
internal static class AdminDashboardEndpoints
{
    /// <summary>Most events a stage aggregation reads (the newest ones in the range).</summary>
    private const int StageScanLimit = 200_000;

    public sealed record StageTotal(string Stage, long TokensSaved, long Requests);

    /// <summary>The response cache in a range: hits, answered requests (ok + hits), the hits' share and what they saved.</summary>
    public sealed record CacheTotals(long Hits, long Answered, double? HitShare, decimal SavedUsd, long TokensSaved, long ScannedEvents, bool Truncated);

    public static RouteGroupBuilder MapAdminDashboardData(this RouteGroupBuilder admin)
    {
        admin.MapGet("/usage/recent", RecentAsync);
        admin.MapGet("/usage/stages", StagesAsync);
        admin.MapGet("/usage/cache", CacheAsync);
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

    /// <summary>
    /// Hits are the <c>cache_hit</c> events; what each saved is recovered from its event and priced at the catalogue's
    /// current prices (<see cref="ResponseCacheSavings"/>, the same definition as <c>tokengateway.cache.saved.usd</c>).
    /// </summary>
    private static async Task<IResult> CacheAsync(HttpContext context, IUsageQueryService usage, ModelCatalog catalog, CostCalculator costs, CancellationToken ct)
    {
        if (!AdminUsageEndpoints.TryReadQuery(context.Request.Query, out var query, out var problem))
        {
            return problem!;
        }

        long hits = 0;
        long tokens = 0;
        var saved = 0m;
        await foreach (var e in usage.ListAsync(query with { GroupBy = null, Status = UsageStatus.CacheHit }, StageScanLimit, ct))
        {
            hits++;
            if (ResponseCacheSavings.WouldBeUsage(e) is { } wouldBe)
            {
                tokens += wouldBe.TotalTokens;
                if (e.Model is { } model && catalog.TryResolve(model, out var card))
                {
                    saved += ResponseCacheSavings.Cost(costs, card, wouldBe);
                }
            }
        }

        var ok = await usage.QueryAsync(query with { GroupBy = null, Status = UsageStatus.Ok }, ct);
        var answered = ok.Totals.Requests + hits;
        return Results.Ok(new CacheTotals(hits, answered, answered > 0 ? (double)hits / answered : null, saved, tokens, hits, hits >= StageScanLimit));
    }
}
