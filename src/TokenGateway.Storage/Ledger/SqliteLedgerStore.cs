using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
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
            estimated, latency_ms, ttft_ms, parent_request_id, attempt)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13, $p14, $p15, $p16, $p17,
            $p18, $p19, $p20, $p21, $p22, $p23, $p24, $p25, $p26, $p27);
        """;

    private const string UpsertHourlySql = """
        INSERT INTO usage_hourly (
            hour, team_id, key_id, model, status, requests, input_tokens_received, input_tokens_sent, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, tokens_saved)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13)
        ON CONFLICT (hour, team_id, key_id, model, status) DO UPDATE SET
        """ + RollupIncrements;

    private const string UpsertDailySql = """
        INSERT INTO usage_daily (
            day, team_id, key_id, model, status, requests, input_tokens_received, input_tokens_sent, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, tokens_saved)
        VALUES ($p0, $p1, $p2, $p3, $p4, $p5, $p6, $p7, $p8, $p9, $p10, $p11, $p12, $p13)
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
            tokens_saved = tokens_saved + excluded.tokens_saved;
        """;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<RollupKey, RollupTotals> _hourly = [];
    private readonly Dictionary<RollupKey, RollupTotals> _daily = [];
    private SqliteConnection? _connection;
    private SqliteCommand? _insert;
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
                _insert = Prepare(_connection, InsertSql, 28);
                _upsertHourly = Prepare(_connection, UpsertHourlySql, 14);
                _upsertDaily = Prepare(_connection, UpsertDailySql, 14);
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
        insert.Transaction = transaction;
        _hourly.Clear();
        _daily.Clear();
        var inserted = 0;
        foreach (var e in events)
        {
            var costNanos = LedgerSchema.ToNanos(e.CostUsd);
            var p = insert.Parameters;
            p[0].Value = e.RequestId;
            p[1].Value = e.Timestamp.ToUnixTimeMilliseconds();
            p[2].Value = (object?)e.TeamId ?? DBNull.Value;
            p[3].Value = (object?)e.KeyId ?? DBNull.Value;
            p[4].Value = e.Route ?? string.Empty;
            p[5].Value = (object?)e.Provider ?? DBNull.Value;
            p[6].Value = (object?)e.Model ?? DBNull.Value;
            p[7].Value = e.Stream ? 1 : 0;
            p[8].Value = e.Status ?? string.Empty;
            p[9].Value = e.HttpStatus;
            p[10].Value = (object?)e.ErrorCode ?? DBNull.Value;
            p[11].Value = e.InputTokensReceived;
            p[12].Value = e.InputTokensSent;
            p[13].Value = e.Usage.InputTokens;
            p[14].Value = e.Usage.OutputTokens;
            p[15].Value = e.Usage.CachedInputTokens;
            p[16].Value = e.Usage.CacheWriteTokens;
            p[17].Value = e.Usage.CacheWrite1hTokens;
            p[18].Value = e.Usage.ReasoningTokens;
            p[19].Value = costNanos;
            p[20].Value = e.CostUsd.ToString(CultureInfo.InvariantCulture);
            p[21].Value = e.TokensSaved;
            p[22].Value = JsonSerializer.Serialize(e.Stages ?? [], LedgerJsonContext.Default.IReadOnlyListStageSaving);
            p[23].Value = e.Estimated ? 1 : 0;
            p[24].Value = e.LatencyMs;
            p[25].Value = (object?)e.TtftMs ?? DBNull.Value;
            p[26].Value = (object?)e.ParentRequestId ?? DBNull.Value;
            p[27].Value = (object?)e.Attempt ?? DBNull.Value;
            if (insert.ExecuteNonQuery() == 0)
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

        public void Add(UsageEvent e, long costNanos)
        {
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
