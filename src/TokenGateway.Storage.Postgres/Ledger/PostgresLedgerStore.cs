using System.Buffers;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.Storage.Postgres.Ledger;

/// <summary>
/// Writes ledger batches to PostgreSQL: one transaction per batch that binary-COPYs the events into a temporary
/// staging table, claims their request ids in <c>usage_event_ids</c> (<c>ON CONFLICT DO NOTHING</c>), inserts only the
/// claimed rows into the partitioned <c>usage_events</c> and adds exactly those rows to the hourly and daily rollups —
/// so a batch replayed from a replica's journal after a restart (or retried after a lost commit acknowledgement)
/// changes nothing, and the returned count is the number of new rows, as in SQLite.
/// </summary>
/// <remarks>
/// The ledger has one writer per process, so the store keeps one connection (and its session's temporary table) and
/// replaces it after any failure. Rollup rows are upserted in key order so two replicas' batches never deadlock on them.
/// </remarks>
internal sealed class PostgresLedgerStore(PostgresDatabase database) : ILedgerStore, IAsyncDisposable, IDisposable
{
    private const string EventColumns = """
        request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
        input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
        cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
        estimated, latency_ms, ttft_ms, parent_request_id, attempt,
        anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user
        """;

    private const string CreateStagingSql = "CREATE TEMP TABLE IF NOT EXISTS ledger_staging (LIKE usage_events) ON COMMIT DELETE ROWS";

    private const string CopySql = $"COPY ledger_staging ({EventColumns}) FROM STDIN (FORMAT BINARY)";

    private const string RollupSums = """
        count(*), sum(input_tokens_received), sum(input_tokens_sent), sum(input_tokens), sum(output_tokens),
        sum(cached_input_tokens), sum(reasoning_tokens), sum(cost_nanos), sum(tokens_saved),
        count(anatomy_system), COALESCE(sum(anatomy_system), 0), COALESCE(sum(anatomy_tools), 0),
        COALESCE(sum(anatomy_history), 0), COALESCE(sum(anatomy_tool_results), 0), COALESCE(sum(anatomy_latest_user), 0),
        COALESCE(sum(output_tokens) FILTER (WHERE anatomy_system IS NOT NULL), 0),
        COALESCE(sum(reasoning_tokens) FILTER (WHERE anatomy_system IS NOT NULL), 0),
        COALESCE(sum(cost_nanos) FILTER (WHERE anatomy_system IS NOT NULL), 0)
        """;

    private const string RollupColumns = """
        team_id, key_id, model, status, requests, input_tokens_received, input_tokens_sent, input_tokens,
        output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, tokens_saved,
        anatomy_requests, anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user,
        anatomy_output, anatomy_reasoning, anatomy_cost_nanos
        """;

    private const string RollupIncrements = """
        requests = t.requests + excluded.requests,
        input_tokens_received = t.input_tokens_received + excluded.input_tokens_received,
        input_tokens_sent = t.input_tokens_sent + excluded.input_tokens_sent,
        input_tokens = t.input_tokens + excluded.input_tokens,
        output_tokens = t.output_tokens + excluded.output_tokens,
        cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
        reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
        cost_nanos = t.cost_nanos + excluded.cost_nanos,
        tokens_saved = t.tokens_saved + excluded.tokens_saved,
        anatomy_requests = t.anatomy_requests + excluded.anatomy_requests,
        anatomy_system = t.anatomy_system + excluded.anatomy_system,
        anatomy_tools = t.anatomy_tools + excluded.anatomy_tools,
        anatomy_history = t.anatomy_history + excluded.anatomy_history,
        anatomy_tool_results = t.anatomy_tool_results + excluded.anatomy_tool_results,
        anatomy_latest_user = t.anatomy_latest_user + excluded.anatomy_latest_user,
        anatomy_output = t.anatomy_output + excluded.anatomy_output,
        anatomy_reasoning = t.anatomy_reasoning + excluded.anatomy_reasoning,
        anatomy_cost_nanos = t.anatomy_cost_nanos + excluded.anatomy_cost_nanos
        """;

    private const string MergeSql = $"""
        WITH claimed AS (
            INSERT INTO usage_event_ids (request_id, ts)
            SELECT request_id, ts FROM ledger_staging
            ON CONFLICT (request_id) DO NOTHING
            RETURNING request_id
        ), inserted AS (
            INSERT INTO usage_events ({EventColumns})
            SELECT {EventColumns} FROM ledger_staging s WHERE s.request_id IN (SELECT request_id FROM claimed)
            RETURNING ts, COALESCE(team_id, '') AS team_id, COALESCE(key_id, '') AS key_id, COALESCE(model, '') AS model, status,
                input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
                cost_nanos, tokens_saved, anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results,
                anatomy_latest_user, (floor(extract(epoch FROM ts) / 3600) * 3600)::bigint AS hour
        ), hourly AS (
            INSERT INTO usage_hourly AS t (hour, {RollupColumns})
            SELECT hour, team_id, key_id, model, status, {RollupSums}
            FROM inserted GROUP BY hour, team_id, key_id, model, status ORDER BY hour, team_id, key_id, model, status
            ON CONFLICT (hour, team_id, key_id, model, status) DO UPDATE SET {RollupIncrements}
        ), daily AS (
            INSERT INTO usage_daily AS t (day, {RollupColumns})
            SELECT hour / 86400 * 86400 AS day, team_id, key_id, model, status, {RollupSums}
            FROM inserted GROUP BY 1, team_id, key_id, model, status ORDER BY 1, team_id, key_id, model, status
            ON CONFLICT (day, team_id, key_id, model, status) DO UPDATE SET {RollupIncrements}
        )
        SELECT count(*) FROM inserted
        """;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _json = new(256);
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly HashSet<DateOnly> _months = [];
    private NpgsqlConnection? _connection;

    public async Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            return 0;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            _months.Clear();
            foreach (var e in events)
            {
                _months.Add(PostgresDatabase.MonthOf(e.Timestamp));
            }

            await database.EnsurePartitionsAsync(_months, cancellationToken);
            var connection = _connection ??= await OpenAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await CopyAsync(connection, events, cancellationToken);
            await using var merge = new NpgsqlCommand(MergeSql, connection, transaction) { CommandTimeout = CommandTimeoutSeconds };
            var inserted = (long)(await merge.ExecuteScalarAsync(cancellationToken))!;
            await transaction.CommitAsync(cancellationToken);
            return (int)inserted;
        }
        catch (Exception ex)
        {
            if (ex is PostgresException { SqlState: "23514" })
            {
                database.ForgetPartitions(); // "no partition of relation found for row": a partition was dropped meanwhile
            }

            // The connection may be broken or mid-COPY; start clean on the next attempt (the batch is retried whole).
            await ResetConnectionAsync();
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync() => await ResetConnectionAsync();

    public void Dispose()
    {
        var connection = _connection;
        _connection = null;
        connection?.Dispose();
    }

    private int CommandTimeoutSeconds => (int)Math.Ceiling(database.Options.CommandTimeout.TotalSeconds);

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = await database.OpenAsync(cancellationToken);
        try
        {
            await using var create = new NpgsqlCommand(CreateStagingSql, connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task CopyAsync(NpgsqlConnection connection, IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken)
    {
        _seen.Clear();
        await using var importer = await connection.BeginBinaryImportAsync(CopySql, cancellationToken);
        importer.Timeout = database.Options.CommandTimeout;
        foreach (var e in events)
        {
            if (!_seen.Add(e.RequestId))
            {
                continue; // the same id twice in one batch: the first wins, as with SQLite's INSERT OR IGNORE
            }

            await importer.StartRowAsync(cancellationToken);
            await importer.WriteAsync(Clean(e.RequestId), NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(PostgresTime.Milliseconds(e.Timestamp), NpgsqlDbType.TimestampTz, cancellationToken);
            await WriteTextAsync(importer, e.TeamId, cancellationToken);
            await WriteTextAsync(importer, e.KeyId, cancellationToken);
            await importer.WriteAsync(Clean(e.Route ?? string.Empty), NpgsqlDbType.Text, cancellationToken);
            await WriteTextAsync(importer, e.Provider, cancellationToken);
            await WriteTextAsync(importer, e.Model, cancellationToken);
            await importer.WriteAsync(e.Stream, NpgsqlDbType.Boolean, cancellationToken);
            await importer.WriteAsync(Clean(e.Status ?? string.Empty), NpgsqlDbType.Text, cancellationToken);
            await importer.WriteAsync(e.HttpStatus, NpgsqlDbType.Integer, cancellationToken);
            await WriteTextAsync(importer, e.ErrorCode, cancellationToken);
            await importer.WriteAsync(e.InputTokensReceived, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.InputTokensSent, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.InputTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.OutputTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.CachedInputTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.CacheWriteTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.CacheWrite1hTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(e.Usage.ReasoningTokens, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(LedgerSchema.ToNanos(e.CostUsd), NpgsqlDbType.Bigint, cancellationToken);
            await importer.WriteAsync(e.CostUsd, NpgsqlDbType.Numeric, cancellationToken);
            await importer.WriteAsync(e.TokensSaved, NpgsqlDbType.Integer, cancellationToken);
            await importer.WriteAsync(StagesJson(e.Stages ?? []), NpgsqlDbType.Jsonb, cancellationToken);
            await importer.WriteAsync(e.Estimated, NpgsqlDbType.Boolean, cancellationToken);
            await importer.WriteAsync(e.LatencyMs, NpgsqlDbType.Double, cancellationToken);
            if (e.TtftMs is { } ttft)
            {
                await importer.WriteAsync(ttft, NpgsqlDbType.Double, cancellationToken);
            }
            else
            {
                await importer.WriteNullAsync(cancellationToken);
            }

            await WriteTextAsync(importer, e.ParentRequestId, cancellationToken);
            await WriteTextAsync(importer, e.Attempt, cancellationToken);
            if (e.Anatomy is { } anatomy)
            {
                await importer.WriteAsync(anatomy.System, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(anatomy.Tools, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(anatomy.History, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(anatomy.ToolResults, NpgsqlDbType.Integer, cancellationToken);
                await importer.WriteAsync(anatomy.LatestUser, NpgsqlDbType.Integer, cancellationToken);
            }
            else
            {
                for (var i = 0; i < 5; i++)
                {
                    await importer.WriteNullAsync(cancellationToken);
                }
            }
        }

        await importer.CompleteAsync(cancellationToken);
    }

    private static Task WriteTextAsync(NpgsqlBinaryImporter importer, string? value, CancellationToken cancellationToken) =>
        value is null ? importer.WriteNullAsync(cancellationToken) : importer.WriteAsync(Clean(value), NpgsqlDbType.Text, cancellationToken);

    /// <summary>
    /// PostgreSQL text cannot hold U+0000 (SQLite can); a client-supplied model name with one must not make the batch
    /// fail forever, so it becomes U+FFFD.
    /// </summary>
    private static string Clean(string value) => value.Contains('\0', StringComparison.Ordinal) ? value.Replace('\0', '\uFFFD') : value;

    private string StagesJson(IReadOnlyList<StageSaving> stages)
    {
        _json.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(_json))
        {
            JsonSerializer.Serialize(writer, stages, LedgerJsonContext.Default.IReadOnlyListStageSaving);
        }

        return System.Text.Encoding.UTF8.GetString(_json.WrittenSpan).Replace("\\u0000", "\\uFFFD", StringComparison.Ordinal);
    }

    private async Task ResetConnectionAsync()
    {
        var connection = _connection;
        _connection = null;
        if (connection is not null)
        {
            try
            {
                await connection.DisposeAsync();
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or ObjectDisposedException)
            {
                // Already broken: nothing to release.
            }
        }
    }
}
