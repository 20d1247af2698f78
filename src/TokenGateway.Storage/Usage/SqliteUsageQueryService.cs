using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Usage;

/// <summary>
/// Usage queries over the ledger. Whole hours are answered from the hourly rollup; only the partial hours at the
/// edges of a time range (if any) touch the per-request table, through its timestamp index.
/// </summary>
/// <remarks>
/// Group keys: team/key/model ids ('' when the event had none), <c>yyyy-MM-dd</c> for day and
/// <c>yyyy-MM-ddTHH:00:00Z</c> for hour (UTC). Groups are ordered by key (time keys chronologically).
/// </remarks>
internal sealed class SqliteUsageQueryService(SqliteDatabase database) : IUsageQueryService
{
    /// <summary>Accepted values of <see cref="UsageQuery.GroupBy"/>.</summary>
    public static readonly IReadOnlyList<string> GroupByValues = ["team", "key", "model", "day", "hour"];

    private const long MsPerHour = 3_600_000;

    private const string EventColumns = """
        request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
        input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
        cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
        estimated, latency_ms, ttft_ms, parent_request_id, attempt
        """;

    public async Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var groupBy = NormalizeGroupBy(query.GroupBy);
        var fromMs = query.From?.ToUnixTimeMilliseconds();
        var toMs = query.To?.ToUnixTimeMilliseconds();
        var groups = new SortedDictionary<string, Accumulator>(StringComparer.Ordinal);
        if (fromMs is { } f0 && toMs is { } t0 && f0 >= t0)
        {
            return new UsageReport(new UsageTotals(), []);
        }

        // Whole hours [firstHour, endHour) come from the rollup; the partial hours around them from raw events.
        long? firstHourMs = fromMs is { } f ? CeilHour(f) : null;
        long? endHourMs = toMs is { } t ? FloorHour(t) : null;

        await using var connection = await database.OpenAsync(cancellationToken);
        if (firstHourMs is { } a && endHourMs is { } b && a >= b)
        {
            await AggregateRawAsync(connection, query, groupBy, fromMs, toMs, groups, cancellationToken);
        }
        else
        {
            await AggregateRollupAsync(connection, query, groupBy, firstHourMs / 1000, endHourMs / 1000, groups, cancellationToken);
            if (fromMs is { } from && firstHourMs is { } first && from < first)
            {
                await AggregateRawAsync(connection, query, groupBy, from, first, groups, cancellationToken);
            }

            if (toMs is { } to && endHourMs is { } end && end < to)
            {
                await AggregateRawAsync(connection, query, groupBy, end, to, groups, cancellationToken);
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
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE request_id = $id;";
        command.Parameters.AddWithValue("$id", requestId);
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
        await using var command = connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddFilters(command, where, query);
        AddTimeRange(command, where, query.From?.ToUnixTimeMilliseconds(), query.To?.ToUnixTimeMilliseconds());
        command.CommandText = $"SELECT {EventColumns} FROM usage_events WHERE {where} ORDER BY ts DESC, request_id DESC LIMIT $limit;";
        command.Parameters.AddWithValue("$limit", limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return ReadEvent(reader);
        }
    }

    private static async Task AggregateRollupAsync(
        SqliteConnection connection, UsageQuery query, string? groupBy, long? fromHour, long? toHour,
        SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddFilters(command, where, query);
        if (fromHour is { } from)
        {
            where.Append(" AND hour >= $fromHour");
            command.Parameters.AddWithValue("$fromHour", from);
        }

        if (toHour is { } to)
        {
            where.Append(" AND hour < $toHour");
            command.Parameters.AddWithValue("$toHour", to);
        }

        var group = groupBy switch
        {
            "team" => "team_id",
            "key" => "key_id",
            "model" => "model",
            "day" => "(hour / 86400) * 86400",
            "hour" => "hour",
            _ => "0",
        };
        command.CommandText = $"""
            SELECT {group} AS g, SUM(requests), SUM(input_tokens_received), SUM(input_tokens_sent), SUM(input_tokens),
                SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), SUM(cost_nanos), SUM(tokens_saved)
            FROM usage_hourly WHERE {where} GROUP BY g;
            """;
        await ReadGroupsAsync(command, groupBy, groups, cancellationToken);
    }

    private static async Task AggregateRawAsync(
        SqliteConnection connection, UsageQuery query, string? groupBy, long? fromMs, long? toMs,
        SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        AddFilters(command, where, query);
        AddTimeRange(command, where, fromMs, toMs);
        var group = groupBy switch
        {
            "team" => "COALESCE(team_id, '')",
            "key" => "COALESCE(key_id, '')",
            "model" => "COALESCE(model, '')",
            "day" => "(ts / 86400000) * 86400",
            "hour" => "(ts / 3600000) * 3600",
            _ => "0",
        };
        command.CommandText = $"""
            SELECT {group} AS g, COUNT(*), SUM(input_tokens_received), SUM(input_tokens_sent), SUM(input_tokens),
                SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), SUM(cost_nanos), SUM(tokens_saved)
            FROM usage_events WHERE {where} GROUP BY g;
            """;
        await ReadGroupsAsync(command, groupBy, groups, cancellationToken);
    }

    private static async Task ReadGroupsAsync(
        SqliteCommand command, string? groupBy, SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
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

    private static long FloorHour(long ms) => Math.DivRem(ms, MsPerHour) switch
    {
        (var q, < 0) => (q - 1) * MsPerHour,
        (var q, _) => q * MsPerHour,
    };

    private static long CeilHour(long ms)
    {
        var floor = FloorHour(ms);
        return floor == ms ? ms : floor + MsPerHour;
    }

    private static UsageEvent ReadEvent(SqliteDataReader r)
    {
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
        };
    }

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
