using System.Globalization;
using System.Text;
using TokenGateway.Core.Metering;

namespace TokenGateway.Endpoints;

/// <summary>Admin usage API: aggregates, one event, and CSV export (DESIGN.md §3).</summary>
internal static class AdminUsageEndpoints
{
    private static readonly string[] _groupings = ["team", "key", "model", "day", "hour"];

    public sealed record UsageEventResponse(
        string RequestId, DateTimeOffset Timestamp, string? TeamId, string? KeyId, string Route, string? Provider, string? Model,
        string Status, int HttpStatus, string? ErrorCode, bool Stream, int InputTokensReceived, int InputTokensSent,
        int InputTokens, int OutputTokens, int CachedInputTokens, int CacheWriteTokens, int ReasoningTokens, decimal CostUsd,
        int TokensSaved, IReadOnlyList<StageSaving> Stages, bool Estimated, double LatencyMs, double? TtftMs,
        string? ParentRequestId, string? Attempt, TokenAnatomy? Anatomy)
    {
        public static UsageEventResponse From(UsageEvent e) => new(
            e.RequestId, e.Timestamp, e.TeamId, e.KeyId, e.Route, e.Provider, e.Model, e.Status, e.HttpStatus, e.ErrorCode, e.Stream,
            e.InputTokensReceived, e.InputTokensSent, e.Usage.InputTokens, e.Usage.OutputTokens, e.Usage.CachedInputTokens,
            e.Usage.CacheWriteTokens + e.Usage.CacheWrite1hTokens, e.Usage.ReasoningTokens, e.CostUsd, e.TokensSaved, e.Stages,
            e.Estimated, Math.Round(e.LatencyMs, 3), e.TtftMs is { } t ? Math.Round(t, 3) : null, e.ParentRequestId, e.Attempt,
            e.Anatomy);
    }

    public static RouteGroupBuilder MapAdminUsage(this RouteGroupBuilder admin)
    {
        admin.MapGet("/usage", QueryAsync);
        admin.MapGet("/usage/export", ExportAsync);
        admin.MapGet("/usage/anatomy", AnatomyAsync);
        admin.MapGet("/usage/{requestId}", GetAsync);
        return admin;
    }

    private static async Task<IResult> QueryAsync(HttpContext context, IUsageQueryService usage, CancellationToken ct)
    {
        if (!TryReadQuery(context.Request.Query, out var query, out var problem))
        {
            return problem!;
        }

        var report = await usage.QueryAsync(query, ct);
        return Results.Ok(new
        {
            totals = report.Totals,
            groups = report.Groups.Select(g => new
            {
                key = g.Key,
                g.Totals.Requests,
                g.Totals.InputTokensReceived,
                g.Totals.InputTokensSent,
                g.Totals.InputTokens,
                g.Totals.OutputTokens,
                g.Totals.CachedInputTokens,
                g.Totals.ReasoningTokens,
                g.Totals.CostUsd,
                g.Totals.TokensSaved,
            }),
        });
    }

    /// <summary>Default window of <c>/admin/usage/anatomy</c> when <c>from</c> is absent: the 30 days before <c>to</c>.</summary>
    public static readonly TimeSpan DefaultAnatomyWindow = TimeSpan.FromDays(30);

    /// <summary>
    /// <c>GET /admin/usage/anatomy?teamId=&amp;from=&amp;to=</c> (<c>team</c> is accepted for <c>teamId</c>): input tokens by
    /// part, billed output, reasoning and cost per team and model over [from, to), only requests that carry an anatomy.
    /// </summary>
    private static async Task<IResult> AnatomyAsync(HttpContext context, IUsageQueryService usage, TimeProvider time, CancellationToken ct)
    {
        var q = context.Request.Query;
        DateTimeOffset? from = null, to = null;
        if (q.TryGetValue("from", out var f) && !TryParseTime(f!, out from))
        {
            return AdminProblems.Invalid("from", "'from' must be an ISO-8601 timestamp.");
        }

        if (q.TryGetValue("to", out var t) && !TryParseTime(t!, out to))
        {
            return AdminProblems.Invalid("to", "'to' must be an ISO-8601 timestamp.");
        }

        var end = to ?? time.GetUtcNow();
        var start = from ?? end - DefaultAnatomyWindow;
        if (start >= end)
        {
            return AdminProblems.Invalid("from", "'from' must be before 'to'.");
        }

        var teamId = NullIfEmpty(q["teamId"]) ?? NullIfEmpty(q["team"]);
        var rows = await usage.GetTokenAnatomyAsync(teamId, start, end, ct);
        return Results.Ok(new
        {
            from = start,
            to = end,
            teamId,
            totals = new
            {
                requests = rows.Sum(r => r.Requests),
                system = rows.Sum(r => r.System),
                tools = rows.Sum(r => r.Tools),
                history = rows.Sum(r => r.History),
                toolResults = rows.Sum(r => r.ToolResults),
                latestUser = rows.Sum(r => r.LatestUser),
                output = rows.Sum(r => r.Output),
                reasoning = rows.Sum(r => r.Reasoning),
                costUsd = rows.Sum(r => r.CostUsd),
            },
            groups = rows,
        });
    }

    private static async Task<IResult> GetAsync(string requestId, IUsageQueryService usage, CancellationToken ct) =>
        await usage.GetAsync(requestId, ct) is { } e ? Results.Ok(UsageEventResponse.From(e)) : AdminProblems.NotFound("Usage event", requestId);

    private static async Task ExportAsync(HttpContext context, IUsageQueryService usage, int? limit)
    {
        if (!TryReadQuery(context.Request.Query, out var query, out var problem))
        {
            await problem!.ExecuteAsync(context);
            return;
        }

        context.Response.ContentType = "text/csv; charset=utf-8";
        context.Response.Headers.ContentDisposition = "attachment; filename=\"usage.csv\"";
        var ct = context.RequestAborted;
        await using var writer = new StreamWriter(context.Response.Body, new UTF8Encoding(false), 64 * 1024);
        await writer.WriteLineAsync("request_id,timestamp,team_id,key_id,model,provider,route,status,http_status,stream,input_tokens_received,input_tokens_sent,input_tokens,output_tokens,cached_input_tokens,cache_write_tokens,reasoning_tokens,cost_usd,tokens_saved,estimated,latency_ms,ttft_ms,parent_request_id");
        var line = new StringBuilder(256);
        await foreach (var e in usage.ListAsync(query, Math.Clamp(limit ?? 100_000, 1, 1_000_000), ct))
        {
            line.Clear();
            var inv = CultureInfo.InvariantCulture;
            line.Append(Csv(e.RequestId)).Append(',').Append(e.Timestamp.UtcDateTime.ToString("O", inv)).Append(',')
                .Append(Csv(e.TeamId)).Append(',').Append(Csv(e.KeyId)).Append(',').Append(Csv(e.Model)).Append(',')
                .Append(Csv(e.Provider)).Append(',').Append(Csv(e.Route)).Append(',').Append(Csv(e.Status)).Append(',')
                .Append(e.HttpStatus.ToString(inv)).Append(',').Append(e.Stream ? "true" : "false").Append(',')
                .Append(e.InputTokensReceived.ToString(inv)).Append(',').Append(e.InputTokensSent.ToString(inv)).Append(',')
                .Append(e.Usage.InputTokens.ToString(inv)).Append(',').Append(e.Usage.OutputTokens.ToString(inv)).Append(',')
                .Append(e.Usage.CachedInputTokens.ToString(inv)).Append(',').Append((e.Usage.CacheWriteTokens + e.Usage.CacheWrite1hTokens).ToString(inv)).Append(',')
                .Append(e.Usage.ReasoningTokens.ToString(inv)).Append(',').Append(e.CostUsd.ToString(inv)).Append(',')
                .Append(e.TokensSaved.ToString(inv)).Append(',').Append(e.Estimated ? "true" : "false").Append(',')
                .Append(e.LatencyMs.ToString("0.###", inv)).Append(',').Append(e.TtftMs?.ToString("0.###", inv)).Append(',')
                .Append(Csv(e.ParentRequestId));
            await writer.WriteLineAsync(line, ct);
        }
    }

    private static string Csv(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }

        // Quote fields with separators, and neutralise spreadsheet formula prefixes (CSV injection).
        var safe = value[0] is '=' or '+' or '-' or '@' ? "'" + value : value;
        return safe.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + safe.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : safe;
    }

    internal static bool TryReadQuery(IQueryCollection q, out UsageQuery query, out IResult? problem)
    {
        query = new UsageQuery();
        problem = null;
        DateTimeOffset? from = null, to = null;
        if (q.TryGetValue("from", out var f) && !TryParseTime(f!, out from))
        {
            problem = AdminProblems.Invalid("from", "'from' must be an ISO-8601 timestamp.");
            return false;
        }

        if (q.TryGetValue("to", out var t) && !TryParseTime(t!, out to))
        {
            problem = AdminProblems.Invalid("to", "'to' must be an ISO-8601 timestamp.");
            return false;
        }

        var groupBy = q["groupBy"].ToString();
        if (groupBy.Length > 0 && !_groupings.Contains(groupBy))
        {
            problem = AdminProblems.Invalid("groupBy", "'groupBy' must be one of team, key, model, day, hour.");
            return false;
        }

        query = new UsageQuery
        {
            TeamId = NullIfEmpty(q["teamId"]),
            KeyId = NullIfEmpty(q["keyId"]),
            Model = NullIfEmpty(q["model"]),
            Status = NullIfEmpty(q["status"]),
            From = from,
            To = to,
            GroupBy = groupBy.Length > 0 ? groupBy : null,
        };
        return true;
    }

    private static string? NullIfEmpty(Microsoft.Extensions.Primitives.StringValues value) => value.Count == 0 || string.IsNullOrEmpty(value[0]) ? null : value[0];

    private static bool TryParseTime(string value, out DateTimeOffset? result)
    {
        var ok = DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed);
        result = ok ? parsed : null;
        return ok;
    }
}
