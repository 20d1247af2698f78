using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Npgsql;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.Storage.Postgres.Usage;

/// <summary>
/// Usage queries over the PostgreSQL ledger, with the same split and results as the SQLite service: whole days from
/// <c>usage_daily</c>, whole hours from <c>usage_hourly</c>, and only the partial hours at the edges of a range from
/// <c>usage_events</c> (pruned to the partitions the range touches).
/// </summary>
/// <remarks>
/// Group keys: team/key/model ids ('' when the event had none), <c>yyyy-MM-dd</c> for day and
/// <c>yyyy-MM-ddTHH:00:00Z</c> for hour (UTC); groups ordered by key (ordinal), exactly as SQLite returns them.
/// </remarks>
internal sealed class PostgresUsageQueryService(PostgresDatabase database) : IUsageQueryService
{
    private const long MsPerHour = 3_600_000;

    private const long MsPerDay = 86_400_000;

    private const string EventColumns = """
        request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
        input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
        cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages::text,
        estimated, latency_ms, ttft_ms, parent_request_id, attempt
        """;

    private const string Sums = """
        sum(input_tokens_received)::bigint, sum(input_tokens_sent)::bigint, sum(input_tokens)::bigint,
        sum(output_tokens)::bigint, sum(cached_input_tokens)::bigint, sum(reasoning_tokens)::bigint,
        sum(cost_nanos)::bigint, sum(tokens_saved)::bigint
        """;

    /// <summary>Accepted values of <see cref="UsageQuery.GroupBy"/> (the same as SQLite's).</summary>
    public static readonly IReadOnlyList<string> GroupByValues = ["team", "key", "model", "day", "hour"];

    public async Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var groupBy = NormalizeGroupBy(query.GroupBy);
        var groups = new SortedDictionary<string, Accumulator>(StringComparer.Ordinal);
        var lo = query.From?.ToUnixTimeMilliseconds() ?? long.MinValue;
        var hi = query.To?.ToUnixTimeMilliseconds() ?? long.MaxValue;
        if (lo >= hi)
        {
            return new UsageReport(new UsageTotals(), []);
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        var hourLo = lo == long.MinValue ? lo : Ceil(lo, MsPerHour);
        var hourHi = hi == long.MaxValue ? hi : Floor(hi, MsPerHour);
        if (hourLo >= hourHi)
        {
            await AggregateRawAsync(connection, query, groupBy, lo, hi, groups, cancellationToken);
        }
        else
        {
            if (lo < hourLo)
            {
                await AggregateRawAsync(connection, query, groupBy, lo, hourLo, groups, cancellationToken);
            }

            if (hourHi < hi)
            {
                await AggregateRawAsync(connection, query, groupBy, hourHi, hi, groups, cancellationToken);
            }

            var dayLo = hourLo == long.MinValue ? hourLo : Ceil(hourLo, MsPerDay);
            var dayHi = hourHi == long.MaxValue ? hourHi : Floor(hourHi, MsPerDay);
            if (groupBy == "hour" || dayLo >= dayHi)
            {
                await AggregateRollupAsync(connection, daily: false, query, groupBy, hourLo, hourHi, groups, cancellationToken);
            }
            else
            {
                await AggregateRollupAsync(connection, daily: true, query, groupBy, dayLo, dayHi, groups, cancellationToken);
                if (hourLo < dayLo)
                {
                    await AggregateRollupAsync(connection, daily: false, query, groupBy, hourLo, dayLo, groups, cancellationToken);
                }

                if (dayHi < hourHi)
                {
                    await AggregateRollupAsync(connection, daily: false, query, groupBy, dayHi, hourHi, groups, cancellationToken);
                }
            }
        }

        var total = new Accumulator();
        var list = new List<UsageGroup>(groups.Count);
        foreach (var (key, accumulator) in groups)
        {
            total.Add(accumulator);
            if (groupBy is not null)
            {
                list.Add(new UsageGroup(key, accumulator.ToTotals()));
            }
        }

        return new UsageReport(total.ToTotals(), list);
    }

    public async Task<UsageEvent?> GetAsync(string requestId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requestId);
        await using var connection = await database.OpenAsync(cancellationToken);

        // The id table gives the event's time, so only its partition is probed.
        await using var command = new NpgsqlCommand($"""
            SELECT {EventColumns} FROM usage_events
            WHERE request_id = @id AND ts = (SELECT ts FROM usage_event_ids WHERE request_id = @id)
            """, connection);
        command.Parameters.AddWithValue("id", requestId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadEvent(reader) : null;
    }

    public async IAsyncEnumerable<UsageEvent> ListAsync(UsageQuery query, int limit, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (limit <= 0)
        {
            yield break;
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand { Connection = connection };
        var where = new StringBuilder("TRUE");
        AddFilters(command, where, query);
        AddTimeRange(command, where, query.From?.ToUnixTimeMilliseconds(), query.To?.ToUnixTimeMilliseconds());
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE {where} ORDER BY ts DESC, request_id DESC LIMIT @limit";
        command.Parameters.AddWithValue("limit", limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return ReadEvent(reader);
        }
    }

    private static async Task AggregateRollupAsync(
        NpgsqlConnection connection, bool daily, UsageQuery query, string? groupBy, long loMs, long hiMs,
        SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand { Connection = connection };
        var (table, bucket) = daily ? ("usage_daily", "day") : ("usage_hourly", "hour");
        var where = new StringBuilder("TRUE");
        AddFilters(command, where, query);
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
        await ReadGroupsAsync(command, groupBy, groups, cancellationToken);
    }

    private static async Task AggregateRawAsync(
        NpgsqlConnection connection, UsageQuery query, string? groupBy, long loMs, long hiMs,
        SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand { Connection = connection };
        var where = new StringBuilder("TRUE");
        AddFilters(command, where, query);
        AddTimeRange(command, where, loMs == long.MinValue ? null : loMs, hiMs == long.MaxValue ? null : hiMs);
        var group = groupBy switch
        {
            "team" => "COALESCE(team_id, '')",
            "key" => "COALESCE(key_id, '')",
            "model" => "COALESCE(model, '')",
            "day" => "(floor(extract(epoch FROM ts) / 86400) * 86400)::bigint",
            "hour" => "(floor(extract(epoch FROM ts) / 3600) * 3600)::bigint",
            _ => "0::bigint",
        };
        command.CommandText = $"SELECT {group} AS g, count(*), {Sums} FROM usage_events WHERE {where} GROUP BY g";
        await ReadGroupsAsync(command, groupBy, groups, cancellationToken);
    }

    private static async Task ReadGroupsAsync(
        NpgsqlCommand command, string? groupBy, SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var key = groupBy switch
            {
                "day" => DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                "hour" => DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0)).ToString("yyyy-MM-dd'T'HH':00:00Z'", CultureInfo.InvariantCulture),
                null => string.Empty,
                _ => reader.GetString(0),
            };
            if (!groups.TryGetValue(key, out var accumulator))
            {
                accumulator = new Accumulator();
                groups[key] = accumulator;
            }

            // An empty rollup range still yields no row (GROUP BY), so the sums are never NULL here.
            accumulator.Requests += reader.GetInt64(1);
            accumulator.InputTokensReceived += reader.GetInt64(2);
            accumulator.InputTokensSent += reader.GetInt64(3);
            accumulator.InputTokens += reader.GetInt64(4);
            accumulator.OutputTokens += reader.GetInt64(5);
            accumulator.CachedInputTokens += reader.GetInt64(6);
            accumulator.ReasoningTokens += reader.GetInt64(7);
            accumulator.CostNanos += reader.GetInt64(8);
            accumulator.TokensSaved += reader.GetInt64(9);
        }
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

    private static string? NormalizeGroupBy(string? groupBy)
    {
        if (string.IsNullOrWhiteSpace(groupBy))
        {
            return null;
        }

        foreach (var value in GroupByValues)
        {
            if (string.Equals(value, groupBy.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        throw new ArgumentException($"groupBy must be one of {string.Join(", ", GroupByValues)}.", nameof(groupBy));
    }

    private static long Floor(long ms, long unit)
    {
        var (quotient, remainder) = Math.DivRem(ms, unit);
        return (remainder < 0 ? quotient - 1 : quotient) * unit;
    }

    private static long Ceil(long ms, long unit)
    {
        var floor = Floor(ms, unit);
        return floor == ms ? ms : floor + unit;
    }

    private static UsageEvent ReadEvent(NpgsqlDataReader r) => new()
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
    };

    private sealed class Accumulator
    {
        public long Requests;
        public long InputTokensReceived;
        public long InputTokensSent;
        public long InputTokens;
        public long OutputTokens;
        public long CachedInputTokens;
        public long ReasoningTokens;
        public long CostNanos;
        public long TokensSaved;

        public void Add(Accumulator other)
        {
            Requests += other.Requests;
            InputTokensReceived += other.InputTokensReceived;
            InputTokensSent += other.InputTokensSent;
            InputTokens += other.InputTokens;
            OutputTokens += other.OutputTokens;
            CachedInputTokens += other.CachedInputTokens;
            ReasoningTokens += other.ReasoningTokens;
            CostNanos += other.CostNanos;
            TokensSaved += other.TokensSaved;
        }

        public UsageTotals ToTotals() => new()
        {
            Requests = Requests,
            InputTokensReceived = InputTokensReceived,
            InputTokensSent = InputTokensSent,
            InputTokens = InputTokens,
            OutputTokens = OutputTokens,
            CachedInputTokens = CachedInputTokens,
            ReasoningTokens = ReasoningTokens,
            CostUsd = LedgerSchema.FromNanos(CostNanos),
            TokensSaved = TokensSaved,
        };
    }
}
