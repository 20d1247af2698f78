using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Ledger;

/// <summary>
/// Ledger tables: one row per request in <c>usage_events</c>, and hourly and daily rollups (<c>usage_hourly</c>,
/// <c>usage_daily</c>) that the writer maintains in the same transaction, only for rows that were actually inserted.
/// </summary>
/// <remarks>
/// Times are Unix milliseconds (events) and Unix seconds of the hour or day start (rollups, UTC). Cost is stored as integer
/// nano-dollars so sums are exact, plus the exact decimal text for single-event reads. The rollup uses '' for a
/// missing team/key/model so they can be part of its primary key.
/// </remarks>
internal static class LedgerSchema
{
    public static readonly SqliteMigration V1 = new("ledger", 1, """
        CREATE TABLE usage_events (
            request_id            TEXT    NOT NULL PRIMARY KEY,
            ts                    INTEGER NOT NULL,
            team_id               TEXT    NULL,
            key_id                TEXT    NULL,
            route                 TEXT    NOT NULL,
            provider              TEXT    NULL,
            model                 TEXT    NULL,
            stream                INTEGER NOT NULL,
            status                TEXT    NOT NULL,
            http_status           INTEGER NOT NULL,
            error_code            TEXT    NULL,
            input_tokens_received INTEGER NOT NULL,
            input_tokens_sent     INTEGER NOT NULL,
            input_tokens          INTEGER NOT NULL,
            output_tokens         INTEGER NOT NULL,
            cached_input_tokens   INTEGER NOT NULL,
            cache_write_tokens    INTEGER NOT NULL,
            cache_write_1h_tokens INTEGER NOT NULL,
            reasoning_tokens      INTEGER NOT NULL,
            cost_nanos            INTEGER NOT NULL,
            cost_usd              TEXT    NOT NULL,
            tokens_saved          INTEGER NOT NULL,
            stages                TEXT    NOT NULL,
            estimated             INTEGER NOT NULL,
            latency_ms            REAL    NOT NULL,
            ttft_ms               REAL    NULL,
            parent_request_id     TEXT    NULL,
            attempt               TEXT    NULL
        );
        CREATE INDEX ix_usage_events_ts ON usage_events (ts);
        CREATE INDEX ix_usage_events_team_ts ON usage_events (team_id, ts);
        CREATE INDEX ix_usage_events_key_ts ON usage_events (key_id, ts);

        CREATE TABLE usage_hourly (
            hour                  INTEGER NOT NULL,
            team_id               TEXT    NOT NULL,
            key_id                TEXT    NOT NULL,
            model                 TEXT    NOT NULL,
            status                TEXT    NOT NULL,
            requests              INTEGER NOT NULL,
            input_tokens_received INTEGER NOT NULL,
            input_tokens_sent     INTEGER NOT NULL,
            input_tokens          INTEGER NOT NULL,
            output_tokens         INTEGER NOT NULL,
            cached_input_tokens   INTEGER NOT NULL,
            reasoning_tokens      INTEGER NOT NULL,
            cost_nanos            INTEGER NOT NULL,
            tokens_saved          INTEGER NOT NULL,
            PRIMARY KEY (hour, team_id, key_id, model, status)
        ) WITHOUT ROWID;
        CREATE INDEX ix_usage_hourly_team ON usage_hourly (team_id, hour);
        CREATE INDEX ix_usage_hourly_key ON usage_hourly (key_id, hour);

        CREATE TABLE usage_daily (
            day                   INTEGER NOT NULL,
            team_id               TEXT    NOT NULL,
            key_id                TEXT    NOT NULL,
            model                 TEXT    NOT NULL,
            status                TEXT    NOT NULL,
            requests              INTEGER NOT NULL,
            input_tokens_received INTEGER NOT NULL,
            input_tokens_sent     INTEGER NOT NULL,
            input_tokens          INTEGER NOT NULL,
            output_tokens         INTEGER NOT NULL,
            cached_input_tokens   INTEGER NOT NULL,
            reasoning_tokens      INTEGER NOT NULL,
            cost_nanos            INTEGER NOT NULL,
            tokens_saved          INTEGER NOT NULL,
            PRIMARY KEY (day, team_id, key_id, model, status)
        ) WITHOUT ROWID;
        CREATE INDEX ix_usage_daily_team ON usage_daily (team_id, day);
        CREATE INDEX ix_usage_daily_key ON usage_daily (key_id, day);
        """);

    /// <summary>
    /// Token anatomy (issue #18): the input parts as sent on each event (NULL when unknown, as for every row written
    /// before this version), and per rollup row the count and sums of the events that carry one, with their billed
    /// output, reasoning and cost, so the anatomy rollup reads whole hours and days like the usage totals.
    /// </summary>
    public static readonly SqliteMigration V2 = new("ledger", 2, """
        ALTER TABLE usage_events ADD COLUMN anatomy_system       INTEGER NULL;
        ALTER TABLE usage_events ADD COLUMN anatomy_tools        INTEGER NULL;
        ALTER TABLE usage_events ADD COLUMN anatomy_history      INTEGER NULL;
        ALTER TABLE usage_events ADD COLUMN anatomy_tool_results INTEGER NULL;
        ALTER TABLE usage_events ADD COLUMN anatomy_latest_user  INTEGER NULL;

        """ + RollupAnatomyColumns("usage_hourly") + RollupAnatomyColumns("usage_daily"));

    public static IEnumerable<SqliteMigration> All => [V1, V2];

    private static string RollupAnatomyColumns(string table) => $"""
        ALTER TABLE {table} ADD COLUMN anatomy_requests     INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_system       INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_tools        INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_history      INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_tool_results INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_latest_user  INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_output       INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_reasoning    INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE {table} ADD COLUMN anatomy_cost_nanos   INTEGER NOT NULL DEFAULT 0;

        """;

    /// <summary>Nano-dollars per dollar.</summary>
    public const decimal NanosPerUsd = 1_000_000_000m;

    /// <summary>Cost in whole nano-dollars (half away from zero), saturating instead of overflowing.</summary>
    public static long ToNanos(decimal usd)
    {
        var nanos = decimal.Round(usd * NanosPerUsd, MidpointRounding.AwayFromZero);
        return nanos >= long.MaxValue ? long.MaxValue : nanos <= long.MinValue ? long.MinValue : (long)nanos;
    }

    public static decimal FromNanos(long nanos) => nanos / NanosPerUsd;
}
