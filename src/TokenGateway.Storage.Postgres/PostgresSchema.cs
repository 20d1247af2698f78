namespace TokenGateway.Storage.Postgres;

/// <summary>
/// The PostgreSQL tables, one component per store, mirroring the SQLite schema: ids and names compare byte-wise
/// (<c>COLLATE "C"</c>, like SQLite's BINARY) so keyset paging and ordering match; times are <c>timestamptz</c>.
/// </summary>
/// <remarks>
/// The ledger (<c>usage_events</c>) is range-partitioned by month on <c>ts</c>. A unique constraint on a partitioned
/// table must contain the partition key, so exactly-once per request id is enforced by <c>usage_event_ids</c>, a plain
/// table keyed by request id that every batch inserts into first (<c>ON CONFLICT DO NOTHING</c>); only the ids it
/// accepted reach <c>usage_events</c> and the rollups. Rollups use '' for a missing team/key/model (they are part of
/// the key) and Unix seconds of the UTC hour/day start, as in SQLite. Cost is integer nano-dollars (exact sums) plus
/// the exact <c>numeric</c> for single-event reads. JSON that callers read back verbatim (policies, output schemas)
/// is stored as text: <c>jsonb</c> would reorder an output schema's properties.
/// </remarks>
internal static class PostgresSchema
{
    public static readonly PostgresMigration Teams = new("teams", 1, """
        CREATE TABLE teams (
            id         text COLLATE "C" NOT NULL PRIMARY KEY,
            name       text             NOT NULL,
            created_at timestamptz      NOT NULL
        );
        CREATE TABLE virtual_keys (
            id         text COLLATE "C" NOT NULL PRIMARY KEY,
            team_id    text COLLATE "C" NOT NULL REFERENCES teams (id),
            name       text             NOT NULL,
            key_hash   text COLLATE "C" NOT NULL UNIQUE,
            prefix     text             NOT NULL,
            created_at timestamptz      NOT NULL,
            expires_at timestamptz      NULL,
            revoked_at timestamptz      NULL
        );
        CREATE INDEX ix_virtual_keys_team ON virtual_keys (team_id, id);
        CREATE TABLE settings (
            name       text COLLATE "C" NOT NULL PRIMARY KEY,
            value      text             NOT NULL,
            updated_at timestamptz      NOT NULL
        );
        """);

    public static readonly PostgresMigration Policies = new("policies", 1, """
        CREATE TABLE policies (
            scope      text COLLATE "C" NOT NULL,
            id         text COLLATE "C" NOT NULL,
            json       text             NOT NULL,
            updated_at timestamptz      NOT NULL,
            PRIMARY KEY (scope, id)
        );
        """);

    public static readonly PostgresMigration OutputSchemas = new("output_schemas", 1, """
        CREATE TABLE output_schemas (
            name        text COLLATE "C" NOT NULL,
            version     integer          NOT NULL,
            json        text             NOT NULL,
            description text             NULL,
            created_at  timestamptz      NOT NULL,
            PRIMARY KEY (name, version)
        );
        """);

    public static readonly PostgresMigration Ledger = new("ledger", 1, """
        CREATE TABLE usage_event_ids (
            request_id text COLLATE "C" NOT NULL PRIMARY KEY,
            ts         timestamptz      NOT NULL
        );
        CREATE TABLE usage_events (
            request_id            text COLLATE "C" NOT NULL,
            ts                    timestamptz      NOT NULL,
            team_id               text COLLATE "C" NULL,
            key_id                text COLLATE "C" NULL,
            route                 text             NOT NULL,
            provider              text             NULL,
            model                 text COLLATE "C" NULL,
            stream                boolean          NOT NULL,
            status                text COLLATE "C" NOT NULL,
            http_status           integer          NOT NULL,
            error_code            text             NULL,
            input_tokens_received integer          NOT NULL,
            input_tokens_sent     integer          NOT NULL,
            input_tokens          integer          NOT NULL,
            output_tokens         integer          NOT NULL,
            cached_input_tokens   integer          NOT NULL,
            cache_write_tokens    integer          NOT NULL,
            cache_write_1h_tokens integer          NOT NULL,
            reasoning_tokens      integer          NOT NULL,
            cost_nanos            bigint           NOT NULL,
            cost_usd              numeric          NOT NULL,
            tokens_saved          integer          NOT NULL,
            stages                jsonb            NOT NULL,
            estimated             boolean          NOT NULL,
            latency_ms            double precision NOT NULL,
            ttft_ms               double precision NULL,
            parent_request_id     text             NULL,
            attempt               text             NULL,
            PRIMARY KEY (request_id, ts)
        ) PARTITION BY RANGE (ts);
        CREATE INDEX ix_usage_events_ts ON usage_events (ts);
        CREATE INDEX ix_usage_events_team_ts ON usage_events (team_id, ts);
        CREATE INDEX ix_usage_events_key_ts ON usage_events (key_id, ts);

        CREATE TABLE usage_hourly (
            hour                  bigint           NOT NULL,
            team_id               text COLLATE "C" NOT NULL,
            key_id                text COLLATE "C" NOT NULL,
            model                 text COLLATE "C" NOT NULL,
            status                text COLLATE "C" NOT NULL,
            requests              bigint           NOT NULL,
            input_tokens_received bigint           NOT NULL,
            input_tokens_sent     bigint           NOT NULL,
            input_tokens          bigint           NOT NULL,
            output_tokens         bigint           NOT NULL,
            cached_input_tokens   bigint           NOT NULL,
            reasoning_tokens      bigint           NOT NULL,
            cost_nanos            bigint           NOT NULL,
            tokens_saved          bigint           NOT NULL,
            PRIMARY KEY (hour, team_id, key_id, model, status)
        );
        CREATE INDEX ix_usage_hourly_team ON usage_hourly (team_id, hour);
        CREATE INDEX ix_usage_hourly_key ON usage_hourly (key_id, hour);

        CREATE TABLE usage_daily (LIKE usage_hourly INCLUDING ALL);
        ALTER TABLE usage_daily RENAME COLUMN hour TO day;
        """);

    /// <summary>
    /// Token anatomy (issue #18): the input parts as sent on each event (NULL when unknown, as for every row written
    /// before this version; the partitions inherit the columns), and per rollup row the count and sums of the events
    /// that carry one, with their billed output, reasoning and cost.
    /// </summary>
    public static readonly PostgresMigration LedgerAnatomy = new("ledger", 2, """
        ALTER TABLE usage_events
            ADD COLUMN anatomy_system       integer NULL,
            ADD COLUMN anatomy_tools        integer NULL,
            ADD COLUMN anatomy_history      integer NULL,
            ADD COLUMN anatomy_tool_results integer NULL,
            ADD COLUMN anatomy_latest_user  integer NULL;
        """ + RollupAnatomyColumns("usage_hourly") + RollupAnatomyColumns("usage_daily"));

    public static IEnumerable<PostgresMigration> All => [Teams, Policies, OutputSchemas, Ledger, LedgerAnatomy];

    private static string RollupAnatomyColumns(string table) => $"""
        ALTER TABLE {table}
            ADD COLUMN anatomy_requests     bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_system       bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_tools        bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_history      bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_tool_results bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_latest_user  bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_output       bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_reasoning    bigint NOT NULL DEFAULT 0,
            ADD COLUMN anatomy_cost_nanos   bigint NOT NULL DEFAULT 0;

        """;
}
