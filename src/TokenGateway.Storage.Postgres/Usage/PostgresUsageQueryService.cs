using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Npgsql;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Usage;

namespace TokenGateway.Storage.Postgres.Usage;

/// <summary>
/// Usage queries over the PostgreSQL ledger, with the same split and results as the SQLite service (both share
/// <see cref="DbUsageQueryService"/>): whole days from <c>usage_daily</c>, whole hours from <c>usage_hourly</c>, and
/// only the partial hours at the edges of a range from <c>usage_events</c> (pruned to the partitions the range
/// touches). This class holds the PostgreSQL SQL and row mapping.
/// </summary>
internal sealed class PostgresUsageQueryService(PostgresDatabase database) : DbUsageQueryService
{
    private const string EventColumns = """
        request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
        input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
        cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages::text,
        estimated, latency_ms, ttft_ms, parent_request_id, attempt,
        anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user
        """;

    private const string Sums = """
        sum(input_tokens_received)::bigint, sum(input_tokens_sent)::bigint, sum(input_tokens)::bigint,
        sum(output_tokens)::bigint, sum(cached_input_tokens)::bigint, sum(reasoning_tokens)::bigint,
        sum(cost_nanos)::bigint, sum(tokens_saved)::bigint
        """;

    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await database.OpenAsync(cancellationToken);

    protected override DbCommand CreateGetCommand(DbConnection connection, string requestId)
    {
        // The id table gives the event's time, so only its partition is probed.
        var command = new NpgsqlCommand($"""
            SELECT {EventColumns} FROM usage_events
            WHERE request_id = @id AND ts = (SELECT ts FROM usage_event_ids WHERE request_id = @id)
            """, (NpgsqlConnection)connection);
        command.Parameters.AddWithValue("id", requestId);
        return command;
    }

    protected override DbCommand CreateListCommand(DbConnection connection, UsageQuery query, int limit)
    {
        var command = new NpgsqlCommand { Connection = (NpgsqlConnection)connection };
        var where = new StringBuilder("TRUE");
        AddFilters(command, where, query);
        AddTimeRange(command, where, query.From?.ToUnixTimeMilliseconds(), query.To?.ToUnixTimeMilliseconds());
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE {where} ORDER BY ts DESC, request_id DESC LIMIT @limit";
        command.Parameters.AddWithValue("limit", limit);
        return command;
    }

    protected override DbCommand CreateAggregateCommand(
        DbConnection connection, UsageSource source, UsageQuery query, string? groupBy, long loMs, long hiMs)
    {
        var command = new NpgsqlCommand { Connection = (NpgsqlConnection)connection };
        var where = new StringBuilder("TRUE");
        AddFilters(command, where, query);
        if (source == UsageSource.Events)
        {
            AddTimeRange(command, where, loMs == long.MinValue ? null : loMs, hiMs == long.MaxValue ? null : hiMs);
            var rawGroup = groupBy switch
            {
                "team" => "COALESCE(team_id, '')",
                "key" => "COALESCE(key_id, '')",
                "model" => "COALESCE(model, '')",
                "day" => "(floor(extract(epoch FROM ts) / 86400) * 86400)::bigint",
                "hour" => "(floor(extract(epoch FROM ts) / 3600) * 3600)::bigint",
                _ => "0::bigint",
            };
            command.CommandText = $"SELECT {rawGroup} AS g, count(*), {Sums} FROM usage_events WHERE {where} GROUP BY g";
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
            _ => "0::bigint",
        };
        command.CommandText = $"SELECT {group} AS g, sum(requests)::bigint, {Sums} FROM {table} WHERE {where} GROUP BY g";
        return command;
    }

    protected override UsageEvent ReadEvent(DbDataReader r) => new()
    {
        RequestId = r.GetString(0),
        Timestamp = r.GetFieldValue<DateTimeOffset>(1),
        TeamId = r.IsDBNull(2) ? null : r.GetString(2),
        KeyId = r.IsDBNull(3) ? null : r.GetString(3),
        Route = r.GetString(4),
        Provider = r.IsDBNull(5) ? null : r.GetString(5),
        Model = r.IsDBNull(6) ? null : r.GetString(6),
        Stream = r.GetBoolean(7),
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
        CostUsd = r.GetDecimal(20),
        TokensSaved = r.GetInt32(21),
        Stages = JsonSerializer.Deserialize(r.GetString(22), LedgerJsonContext.Default.IReadOnlyListStageSaving) ?? [],
        Estimated = r.GetBoolean(23),
        LatencyMs = r.GetDouble(24),
        TtftMs = r.IsDBNull(25) ? null : r.GetDouble(25),
        ParentRequestId = r.IsDBNull(26) ? null : r.GetString(26),
        Attempt = r.IsDBNull(27) ? null : r.GetString(27),
        Anatomy = ReadAnatomy(r, 28),
    };

    protected override DbCommand CreateAnatomyCommand(DbConnection connection, UsageSource source, string? teamId, long loMs, long hiMs)
    {
        var command = new NpgsqlCommand { Connection = (NpgsqlConnection)connection };
        var where = new StringBuilder("TRUE");
        AddEquals(command, where, "team_id", "team", teamId);
        if (source == UsageSource.Events)
        {
            AddTimeRange(command, where, loMs == long.MinValue ? null : loMs, hiMs == long.MaxValue ? null : hiMs);
            command.CommandText = $"""
                SELECT COALESCE(team_id, '') AS t, COALESCE(model, '') AS m, count(*), sum(anatomy_system)::bigint,
                    sum(anatomy_tools)::bigint, sum(anatomy_history)::bigint, sum(anatomy_tool_results)::bigint,
                    sum(anatomy_latest_user)::bigint, sum(output_tokens)::bigint, sum(reasoning_tokens)::bigint,
                    sum(cost_nanos)::bigint
                FROM usage_events WHERE {where} AND anatomy_system IS NOT NULL GROUP BY t, m
                """;
            return command;
        }

        var (table, bucket) = source == UsageSource.Daily ? ("usage_daily", "day") : ("usage_hourly", "hour");
        AddBucketRange(command, where, bucket, loMs, hiMs);

        command.CommandText = $"""
            SELECT team_id, model, sum(anatomy_requests)::bigint, sum(anatomy_system)::bigint, sum(anatomy_tools)::bigint,
                sum(anatomy_history)::bigint, sum(anatomy_tool_results)::bigint, sum(anatomy_latest_user)::bigint,
                sum(anatomy_output)::bigint, sum(anatomy_reasoning)::bigint, sum(anatomy_cost_nanos)::bigint
            FROM {table} WHERE {where} AND anatomy_requests > 0 GROUP BY team_id, model
            """;
        return command;
    }


    private static void AddFilters(NpgsqlCommand command, StringBuilder where, UsageQuery query)
    {
        AddEquals(command, where, "team_id", "team", query.TeamId);
        AddEquals(command, where, "key_id", "key", query.KeyId);
        AddEquals(command, where, "model", "model", query.Model);
        AddEquals(command, where, "status", "status", query.Status);
    }

    private static void AddEquals(NpgsqlCommand command, StringBuilder where, string column, string parameter, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        where.Append(CultureInfo.InvariantCulture, $" AND {column} = @{parameter}");
        command.Parameters.AddWithValue(parameter, value.Replace('\0', '\uFFFD'));
    }

    /// <summary>Bounds a rollup table's bucket column (Unix seconds) by the millisecond range; open ends are the extremes.</summary>
    private static void AddBucketRange(NpgsqlCommand command, StringBuilder where, string bucket, long loMs, long hiMs)
    {
        if (loMs != long.MinValue)
        {
            where.Append(CultureInfo.InvariantCulture, $" AND {bucket} >= @lo");
            command.Parameters.AddWithValue("lo", loMs / 1000);
        }

        if (hiMs != long.MaxValue)
        {
            where.Append(CultureInfo.InvariantCulture, $" AND {bucket} < @hi");
            command.Parameters.AddWithValue("hi", hiMs / 1000);
        }
    }

    private static void AddTimeRange(NpgsqlCommand command, StringBuilder where, long? fromMs, long? toMs)
    {
        if (fromMs is { } from)
        {
            where.Append(" AND ts >= @from_ts");
            command.Parameters.AddWithValue("from_ts", ToTimestamp(from));
        }

        if (toMs is { } to)
        {
            where.Append(" AND ts < @to_ts");
            command.Parameters.AddWithValue("to_ts", ToTimestamp(to));
        }
    }

    private static DateTimeOffset ToTimestamp(long ms) =>
        ms <= DateTimeOffset.MinValue.ToUnixTimeMilliseconds() ? DateTimeOffset.MinValue
        : ms >= DateTimeOffset.MaxValue.ToUnixTimeMilliseconds() ? DateTimeOffset.MaxValue
        : DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
