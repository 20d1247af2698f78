using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Ledger;

/// <summary>
/// Writes ledger batches to SQLite: one IMMEDIATE transaction per batch, <c>INSERT OR IGNORE</c> on the request id,
/// and the hourly and daily rollups updated only for rows that were new — so replaying a batch twice changes nothing.
/// </summary>
/// <remarks>Keeps one connection with prepared statements; the ledger has a single writer, the gate only guards misuse.</remarks>
internal sealed class SqliteLedgerStore(SqliteDatabase database) : ILedgerStore, IDisposable
{
    private const string InsertSql = """
        INSERT OR IGNORE INTO usage_events (
            request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status, error_code,
            input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
            cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
            estimated, latency_ms, ttft_ms, parent_request_id, attempt,
            anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13, $p14, $p15, $p16, $p17,
            $p18, $p19, $p20, $p21, $p22, $p23, $p24, $p25, $p26, $p27, $p28, $p29, $p30, $p31, $p32);
        """;

    private const string UpsertHourlySql = """
        INSERT INTO usage_hourly (
            hour, team_id, key_id, model, status, requests, input_tokens_received, input_tokens_sent, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, tokens_saved,
            anatomy_requests, anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user,
            anatomy_output, anatomy_reasoning, anatomy_cost_nanos)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13,
            $p14, $p15, $p16, $p17, $p18, $p19, $p20, $p21, $p22)
        ON CONFLICT (hour, team_id, key_id, model, status) DO UPDATE SET
        """ + RollupIncrements;

    private const string UpsertDailySql = """
        INSERT INTO usage_daily (
            day, team_id, key_id, model, status, requests, input_tokens_received, input_tokens_sent, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, tokens_saved,
            anatomy_requests, anatomy_system, anatomy_tools, anatomy_history, anatomy_tool_results, anatomy_latest_user,
            anatomy_output, anatomy_reasoning, anatomy_cost_nanos)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13,
            $p14, $p15, $p16, $p17, $p18, $p19, $p20, $p21, $p22)
        ON CONFLICT (day, team_id, key_id, model, status) DO UPDATE SET
        """ + RollupIncrements;

    private const string RollupIncrements = """
            requests = requests + excluded.requests,
            input_tokens_received = input_tokens_received + excluded.input_tokens_received,
            input_tokens_sent = input_tokens_sent + excluded.input_tokens_sent,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_nanos = cost_nanos + excluded.cost_nanos,
            tokens_saved = tokens_saved + excluded.tokens_saved,
            anatomy_requests = anatomy_requests + excluded.anatomy_requests,
            anatomy_system = anatomy_system + excluded.anatomy_system,
            anatomy_tools = anatomy_tools + excluded.anatomy_tools,
            anatomy_history = anatomy_history + excluded.anatomy_history,
            anatomy_tool_results = anatomy_tool_results + excluded.anatomy_tool_results,
            anatomy_latest_user = anatomy_latest_user + excluded.anatomy_latest_user,
            anatomy_output = anatomy_output + excluded.anatomy_output,
            anatomy_reasoning = anatomy_reasoning + excluded.anatomy_reasoning,
            anatomy_cost_nanos = anatomy_cost_nanos + excluded.anatomy_cost_nanos;
        """;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<RollupKey, RollupTotals> _hourly = [];
    private readonly Dictionary<RollupKey, RollupTotals> _daily = [];
    private SqliteConnection? _connection;
    private RawStatement? _insert;
    private SqliteCommand? _upsertHourly;
    private SqliteCommand? _upsertDaily;

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
            if (_connection is null)
            {
                _connection = await database.OpenAsync(cancellationToken);
                _insert = new RawStatement(_connection, InsertSql, 33);
                _upsertHourly = Prepare(_connection, UpsertHourlySql, 23);
                _upsertDaily = Prepare(_connection, UpsertDailySql, 23);
            }

            cancellationToken.ThrowIfCancellationRequested();
            return WriteCore(events);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The connection may be unusable (I/O error, file replaced); start clean on the next attempt.
            ResetConnection();
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => ResetConnection();

    private int WriteCore(IReadOnlyList<UsageEvent> events)
    {
        var insert = _insert!; // set together with _connection above
        using var transaction = _connection!.BeginTransaction(deferred: false);
        _hourly.Clear();
        _daily.Clear();
        var inserted = 0;
        foreach (var e in events)
        {
            var costNanos = LedgerSchema.ToNanos(e.CostUsd);
            insert.Text(0, e.RequestId);
            insert.Integer(1, e.Timestamp.ToUnixTimeMilliseconds());
            insert.Text(2, e.TeamId);
            insert.Text(3, e.KeyId);
            insert.Text(4, e.Route ?? string.Empty);
            insert.Text(5, e.Provider);
            insert.Text(6, e.Model);
            insert.Integer(7, e.Stream ? 1 : 0);
            insert.Text(8, e.Status ?? string.Empty);
            insert.Integer(9, e.HttpStatus);
            insert.Text(10, e.ErrorCode);
            insert.Integer(11, e.InputTokensReceived);
            insert.Integer(12, e.InputTokensSent);
            insert.Integer(13, e.Usage.InputTokens);
            insert.Integer(14, e.Usage.OutputTokens);
            insert.Integer(15, e.Usage.CachedInputTokens);
            insert.Integer(16, e.Usage.CacheWriteTokens);
            insert.Integer(17, e.Usage.CacheWrite1hTokens);
            insert.Integer(18, e.Usage.ReasoningTokens);
            insert.Integer(19, costNanos);
            insert.Decimal(20, e.CostUsd);
            insert.Integer(21, e.TokensSaved);
            insert.Json(22, e.Stages ?? []);
            insert.Integer(23, e.Estimated ? 1 : 0);
            insert.Real(24, e.LatencyMs);
            insert.Real(25, e.TtftMs);
            insert.Text(26, e.ParentRequestId);
            insert.Text(27, e.Attempt);
            var anatomy = e.Anatomy;
            insert.Integer(28, anatomy?.System);
            insert.Integer(29, anatomy?.Tools);
            insert.Integer(30, anatomy?.History);
            insert.Integer(31, anatomy?.ToolResults);
            insert.Integer(32, anatomy?.LatestUser);
            if (insert.Execute() == 0)
            {
                continue; // already stored: a replay or a duplicate Record
            }

            inserted++;
            var hour = e.Timestamp.ToUnixTimeSeconds() / 3600 * 3600;
            var hourKey = new RollupKey(hour, e.TeamId ?? string.Empty, e.KeyId ?? string.Empty, e.Model ?? string.Empty, e.Status ?? string.Empty);
            Accumulate(_hourly, hourKey, e, costNanos);
            Accumulate(_daily, hourKey with { Bucket = hour / 86400 * 86400 }, e, costNanos);
        }

        Upsert(_upsertHourly!, transaction, _hourly); // prepared together with _insert
        Upsert(_upsertDaily!, transaction, _daily);
        transaction.Commit();
        return inserted;
    }

    private static void Accumulate(Dictionary<RollupKey, RollupTotals> rollup, RollupKey key, UsageEvent e, long costNanos)
    {
        if (!rollup.TryGetValue(key, out var totals))
        {
            totals = new RollupTotals();
            rollup[key] = totals;
        }

        totals.Add(e, costNanos);
    }

    private static void Upsert(SqliteCommand upsert, SqliteTransaction transaction, Dictionary<RollupKey, RollupTotals> rollup)
    {
        upsert.Transaction = transaction;
        var p = upsert.Parameters;
        foreach (var (key, totals) in rollup)
        {
            p[0].Value = key.Bucket;
            p[1].Value = key.TeamId;
            p[2].Value = key.KeyId;
            p[3].Value = key.Model;
            p[4].Value = key.Status;
            p[5].Value = totals.Requests;
            p[6].Value = totals.InputTokensReceived;
            p[7].Value = totals.InputTokensSent;
            p[8].Value = totals.InputTokens;
            p[9].Value = totals.OutputTokens;
            p[10].Value = totals.CachedInputTokens;
            p[11].Value = totals.ReasoningTokens;
            p[12].Value = totals.CostNanos;
            p[13].Value = totals.TokensSaved;
            p[14].Value = totals.AnatomyRequests;
            p[15].Value = totals.AnatomySystem;
            p[16].Value = totals.Tools;
            p[17].Value = totals.History;
            p[18].Value = totals.ToolResults;
            p[19].Value = totals.LatestUser;
            p[20].Value = totals.AnatomyOutput;
            p[21].Value = totals.AnatomyReasoning;
            p[22].Value = totals.AnatomyCostNanos;
            upsert.ExecuteNonQuery();
        }
    }

    private static SqliteCommand Prepare(SqliteConnection connection, string sql, int parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 0; i < parameters; i++)
        {
            command.Parameters.Add(new SqliteParameter(string.Create(CultureInfo.InvariantCulture, $"$p{i}"), DBNull.Value));
        }

        return command;
    }

    private void ResetConnection()
    {
        // Statements first: a connection closes only once its statements are finalized.
        _insert?.Dispose();
        _upsertHourly?.Dispose();
        _upsertDaily?.Dispose();
        _connection?.Dispose();
        _insert = null;
        _upsertHourly = null;
        _upsertDaily = null;
        _connection = null;
    }

    private readonly record struct RollupKey(long Bucket, string TeamId, string KeyId, string Model, string Status);

    private sealed class RollupTotals
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
        public long AnatomyRequests;
        public long AnatomySystem;
        public long Tools;
        public long History;
        public long ToolResults;
        public long LatestUser;
        public long AnatomyOutput;
        public long AnatomyReasoning;
        public long AnatomyCostNanos;

        public void Add(UsageEvent e, long costNanos)
        {
            if (e.Anatomy is { } anatomy)
            {
                AnatomyRequests++;
                AnatomySystem += anatomy.System;
                Tools += anatomy.Tools;
                History += anatomy.History;
                ToolResults += anatomy.ToolResults;
                LatestUser += anatomy.LatestUser;
                AnatomyOutput += e.Usage.OutputTokens;
                AnatomyReasoning += e.Usage.ReasoningTokens;
                AnatomyCostNanos += costNanos;
            }

            Requests++;
            InputTokensReceived += e.InputTokensReceived;
            InputTokensSent += e.InputTokensSent;
            InputTokens += e.Usage.InputTokens;
            OutputTokens += e.Usage.OutputTokens;
            CachedInputTokens += e.Usage.CachedInputTokens;
            ReasoningTokens += e.Usage.ReasoningTokens;
            CostNanos += costNanos;
            TokensSaved += e.TokensSaved;
        }
    }
}

/// <summary>
/// A prepared statement bound through SQLitePCL directly: Microsoft.Data.Sqlite allocates a binder object (and a
/// UTF-8 copy of every string) per parameter per execution, which made the ledger writer the largest allocator in
/// the gateway. Strings are encoded into one reused buffer and copied by SQLite (SQLITE_TRANSIENT).
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private readonly ArrayBufferWriter<byte> _json = new(256);
    private readonly Utf8JsonWriter _writer = new(Stream.Null);
    private byte[] _utf8 = new byte[256];

    public RawStatement(SqliteConnection connection, string sql, int parameters)
    {
        _db = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
        Check(raw.sqlite3_prepare_v2(_db, sql, out _statement));
        if (raw.sqlite3_bind_parameter_count(_statement) != parameters)
        {
            _statement.Dispose();
            throw new InvalidOperationException($"The statement has {raw.sqlite3_bind_parameter_count(_statement)} parameters, not {parameters}.");
        }
    }

    /// <summary>Binds parameter <c>$p{index}</c> (each appears once, in order) to text, or NULL.</summary>
    public void Text(int index, string? value)
    {
        if (value is null)
        {
            Check(raw.sqlite3_bind_null(_statement, index + 1));
            return;
        }

        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (_utf8.Length < max)
        {
            _utf8 = new byte[Math.Max(max, _utf8.Length * 2)];
        }

        var length = Encoding.UTF8.GetBytes(value, _utf8);
        Check(raw.sqlite3_bind_text(_statement, index + 1, _utf8.AsSpan(0, length)));
    }

    public void Integer(int index, long value) => Check(raw.sqlite3_bind_int64(_statement, index + 1, value));

    public void Integer(int index, long? value) =>
        Check(value is { } v ? raw.sqlite3_bind_int64(_statement, index + 1, v) : raw.sqlite3_bind_null(_statement, index + 1));

    public void Real(int index, double? value) =>
        Check(value is { } v ? raw.sqlite3_bind_double(_statement, index + 1, v) : raw.sqlite3_bind_null(_statement, index + 1));

    /// <summary>Binds a decimal as its invariant text (exact; the same text <c>decimal.ToString</c> gives).</summary>
    public void Decimal(int index, decimal value)
    {
        Span<byte> text = stackalloc byte[64];
        if (!value.TryFormat(text, out var length, default, CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException("A decimal did not fit its text buffer.");
        }

        Check(raw.sqlite3_bind_text(_statement, index + 1, text[..length]));
    }

    /// <summary>Binds the JSON text of the stage savings.</summary>
    public void Json(int index, IReadOnlyList<StageSaving> stages)
    {
        _json.ResetWrittenCount();
        _writer.Reset(_json);
        JsonSerializer.Serialize(_writer, stages, LedgerJsonContext.Default.IReadOnlyListStageSaving);
        _writer.Flush();

        Check(raw.sqlite3_bind_text(_statement, index + 1, _json.WrittenSpan));
    }

    /// <summary>Runs the statement once and resets it; returns the number of rows it changed.</summary>
    public int Execute()
    {
        var rc = raw.sqlite3_step(_statement);
        raw.sqlite3_reset(_statement);
        if (rc != raw.SQLITE_DONE)
        {
            throw new SqliteException(raw.sqlite3_errmsg(_db).utf8_to_string(), rc, raw.sqlite3_extended_errcode(_db));
        }

        return raw.sqlite3_changes(_db);
    }

    public void Dispose()
    {
        _statement.Dispose();
        _writer.Dispose();
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException(raw.sqlite3_errmsg(_db).utf8_to_string(), rc, raw.sqlite3_extended_errcode(_db));
        }
    }
}
