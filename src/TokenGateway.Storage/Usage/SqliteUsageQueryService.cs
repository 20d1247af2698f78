using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Usage;

/// <summary>
/// Usage queries over the SQLite ledger. Whole days come from the daily rollup, whole hours from the hourly rollup,
/// and only the partial hours at the edges of a time range (if any) touch the per-request table, through its
/// timestamp index. The range split, grouping and totals live in <see cref="DbUsageQueryService"/>; this class
/// holds the SQLite SQL and row mapping.
/// </summary>
internal sealed class SqliteUsageQueryService(SqliteDatabase database) : DbUsageQueryService
{
    private const string EventColumns = """
        request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
        input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
        cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
        estimated, latency_ms, ttft_ms, parent_request_id, attempt,
        anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user
        """;

    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await database.OpenAsync(cancellationToken);

    protected override DbCommand CreateGetCommand(DbConnection connection, string requestId)
    {
        var command = (SqliteCommand)connection.CreateCommand();
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE request_id = $id;";
        command.Parameters.AddWithValue("$id", requestId);
        return command;
    }

    protected override DbCommand CreateListCommand(DbConnection connection, UsageQuery query, int limit)
    {
        var command = (SqliteCommand)connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddFilters(command, where, query);
        AddTimeRange(command, where, query.From?.ToUnixTimeMilliseconds(), query.To?.ToUnixTimeMilliseconds());
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE {where} ORDER BY ts DESC, request_id DESC LIMIT $limit;";
        command.Parameters.AddWithValue("$limit", limit);
        return command;
    }

    protected override DbCommand CreateAggregateCommand(
        DbConnection connection, UsageSource source, UsageQuery query, string? groupBy, long loMs, long hiMs)
    {
        var command = (SqliteCommand)connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddFilters(command, where, query);
        if (source == UsageSource.Events)
        {
            AddTimeRange(command, where, loMs == long.MinValue ? null : loMs, hiMs == long.MaxValue ? null : hiMs);
            var rawGroup = groupBy switch
            {
                "team" => "COALESCE(team_id, '')",
                "key" => "COALESCE(key_id, '')",
                "model" => "COALESCE(model, '')",
                "day" => "(ts / 86400000) * 86400",
                "hour" => "(ts / 3600000) * 3600",
                _ => "0",
            };
            command.CommandText = $"""
                SELECT {rawGroup} AS g, COUNT(*), SUM(input_tokens_received), SUM(input_tokens_sent), SUM(input_tokens),
                    SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), SUM(cost_nanos), SUM(tokens_saved)
                FROM usage_events WHERE {where} GROUP BY g;
                """;
            return command;
        }

        var (table, bucket) = source == UsageSource.Daily ? ("usage_daily", "day") : ("usage_hourly", "hour");
        AddBucketRange(command, where, bucket, loMs, hiMs);

        var group = groupBy switch
        {
            "team" => "team_id",
            "key" => "key_id",
            "model" => "model",
            "day" => $"({bucket} / 86400) * 86400",
            "hour" => bucket, // only ever the hourly table
            _ => "0",
        };
        command.CommandText = $"""
            SELECT {group} AS g, SUM(requests), SUM(input_tokens_received), SUM(input_tokens_sent), SUM(input_tokens),
                SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), SUM(cost_nanos), SUM(tokens_saved)
            FROM {table} WHERE {where} GROUP BY g;
            """;
        return command;
    }

    protected override UsageEvent ReadEvent(DbDataReader reader)
    {
        var r = reader;
        var costText = r.GetString(20);
        var cost = decimal.TryParse(costText, NumberStyles.Number, CultureInfo.InvariantCulture, out var exact)
            ? exact
            : LedgerSchema.FromNanos(r.GetInt64(19));
        return new UsageEvent
        {
            RequestId = r.GetString(0),
            Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)),
            TeamId = r.IsDBNull(2) ? null : r.GetString(2),
            KeyId = r.IsDBNull(3) ? null : r.GetString(3),
            Route = r.GetString(4),
            Provider = r.IsDBNull(5) ? null : r.GetString(5),
            Model = r.IsDBNull(6) ? null : r.GetString(6),
            Stream = r.GetInt64(7) != 0,
            Status = r.GetString(8),
            HttpStatus = r.GetInt32(9),
            ErrorCode = r.IsDBNull(10) ? null : r.GetString(10),
            InputTokensReceived = r.GetInt32(11),
            InputTokensSent = r.GetInt32(12),
            Usage = new TokenUsage(
                InputTokens: r.GetInt32(13),
                OutputTokens: r.GetInt32(14),
                CachedInputTokens: r.GetInt32(15),
                CacheWriteTokens: r.GetInt32(16),
                CacheWrite1hTokens: r.GetInt32(17),
                ReasoningTokens: r.GetInt32(18)),
            CostUsd = cost,
            TokensSaved = r.GetInt32(21),
            Stages = JsonSerializer.Deserialize(r.GetString(22), LedgerJsonContext.Default.IReadOnlyListStageSaving) ?? [],
            Estimated = r.GetInt64(23) != 0,
            LatencyMs = r.GetDouble(24),
            TtftMs = r.IsDBNull(25) ? null : r.GetDouble(25),
            ParentRequestId = r.IsDBNull(26) ? null : r.GetString(26),
            Attempt = r.IsDBNull(27) ? null : r.GetString(27),
            Anatomy = ReadAnatomy(r, 28),
        };
    }

    protected override DbCommand CreateAnatomyCommand(DbConnection connection, UsageSource source, string? teamId, long loMs, long hiMs)
    {
        var command = (SqliteCommand)connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddEquals(command, where, "team_id", "$team", teamId);
        if (source == UsageSource.Events)
        {
            AddTimeRange(command, where, loMs == long.MinValue ? null : loMs, hiMs == long.MaxValue ? null : hiMs);
            command.CommandText = $"""
                SELECT COALESCE(team_id, '') AS t, COALESCE(model, '') AS m, COUNT(*), SUM(anatomy_system), SUM(anatomy_tools),
                    SUM(anatomy_history), SUM(anatomy_tool_results), SUM(anatomy_latest_user), SUM(output_tokens),
                    SUM(reasoning_tokens), SUM(cost_nanos)
                FROM usage_events WHERE {where} AND anatomy_system IS NOT NULL GROUP BY t, m;
                """;
            return command;
        }

        var (table, bucket) = source == UsageSource.Daily ? ("usage_daily", "day") : ("usage_hourly", "hour");
        AddBucketRange(command, where, bucket, loMs, hiMs);

        command.CommandText = $"""
            SELECT team_id, model, SUM(anatomy_requests), SUM(anatomy_system), SUM(anatomy_tools), SUM(anatomy_history),
                SUM(anatomy_tool_results), SUM(anatomy_latest_user), SUM(anatomy_output), SUM(anatomy_reasoning),
                SUM(anatomy_cost_nanos)
            FROM {table} WHERE {where} AND anatomy_requests > 0 GROUP BY team_id, model;
            """;
        return command;
    }

    private static void AddFilters(SqliteCommand command, StringBuilder where, UsageQuery query)
    {
        AddEquals(command, where, "team_id", "$team", query.TeamId);
        AddEquals(command, where, "key_id", "$key", query.KeyId);
        AddEquals(command, where, "model", "$model", query.Model);
        AddEquals(command, where, "status", "$status", query.Status);
    }

    private static void AddEquals(SqliteCommand command, StringBuilder where, string column, string parameter, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        where.Append(CultureInfo.InvariantCulture, $" AND {column} = {parameter}");
        command.Parameters.AddWithValue(parameter, value);
    }

    /// <summary>Bounds a rollup table's bucket column (Unix seconds) by the millisecond range; open ends are the extremes.</summary>
    private static void AddBucketRange(SqliteCommand command, StringBuilder where, string bucket, long loMs, long hiMs)
    {
        if (loMs != long.MinValue)
        {
            where.Append(CultureInfo.InvariantCulture, $" AND {bucket} >= $lo");
            command.Parameters.AddWithValue("$lo", loMs / 1000);
        }

        if (hiMs != long.MaxValue)
        {
            where.Append(CultureInfo.InvariantCulture, $" AND {bucket} < $hi");
            command.Parameters.AddWithValue("$hi", hiMs / 1000);
        }
    }

    private static void AddTimeRange(SqliteCommand command, StringBuilder where, long? fromMs, long? toMs)
    {
        if (fromMs is { } from)
        {
            where.Append(" AND ts >= $fromMs");
            command.Parameters.AddWithValue("$fromMs", from);
        }

        if (toMs is { } to)
        {
            where.Append(" AND ts < $toMs");
            command.Parameters.AddWithValue("$toMs", to);
        }
    }
}
