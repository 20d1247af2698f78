using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Postgres;
using TokenGateway.Storage.Postgres.Ledger;
using TokenGateway.Storage.Postgres.Usage;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Tests.TestSupport;
using TokenGateway.Storage.Usage;

namespace TokenGateway.Storage.Tests.Ledger;

/// <summary>
/// A ledger written before token anatomy existed (schema v1) is migrated in place: old rows read back with no anatomy,
/// their rollup rows count no anatomy requests, and new events with one add to the same rollup rows.
/// </summary>
public sealed class LedgerAnatomyMigrationTests(PostgresDatabaseFixture databases) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly DateTimeOffset Hour = new(2026, 3, 2, 10, 0, 0, TimeSpan.Zero);

    private static readonly TokenAnatomy NewAnatomy = new(40, 300, 120, 60, 25);

    [Fact]
    public async Task Sqlite_V1Database_MigratedWithNullAnatomyAndNewEventsRolledUp()
    {
        using var directory = new TempDirectory();
        var options = Options.Create(new StorageOptions { DataDirectory = directory.Path });
        var v1 = new SqliteDatabase(options, TeamSchema.All.Append(LedgerSchema.V1), TimeProvider.System, NullLogger<SqliteDatabase>.Instance);
        await using (var connection = await v1.OpenAsync(CancellationToken.None))
        await using (var command = connection.CreateCommand())
        {
            var ts = Hour.AddMinutes(5).ToUnixTimeMilliseconds();
            var hour = Hour.ToUnixTimeSeconds();
            var day = hour / 86400 * 86400;
            command.CommandText = $"""
                INSERT INTO usage_events (request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status,
                    error_code, input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
                    cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
                    estimated, latency_ms, ttft_ms, parent_request_id, attempt)
                VALUES ('req_old', {ts}, 'team_a', 'key_a1', '/v1/chat/completions', 'openai', 'gpt-4o', 0, 'ok', 200, NULL,
                    100, 90, 90, 20, 0, 0, 0, 0, 1000, '0.000001', 10, '[]', 0, 1.5, NULL, NULL, NULL);
                INSERT INTO usage_hourly VALUES ({hour}, 'team_a', 'key_a1', 'gpt-4o', 'ok', 1, 100, 90, 90, 20, 0, 0, 1000, 10);
                INSERT INTO usage_daily VALUES ({day}, 'team_a', 'key_a1', 'gpt-4o', 'ok', 1, 100, 90, 90, 20, 0, 0, 1000, 10);
                """;
            await command.ExecuteNonQueryAsync();
        }

        SqliteConnection.ClearAllPools();
        var migrated = new SqliteDatabase(options, TeamSchema.All.Concat(LedgerSchema.All), TimeProvider.System, NullLogger<SqliteDatabase>.Instance);
        using var store = new SqliteLedgerStore(migrated);
        await AssertMigratedAsync(store, new SqliteUsageQueryService(migrated));
        SqliteConnection.ClearAllPools();
    }

    [PostgresFact]
    public async Task Postgres_V1Database_MigratedWithNullAnatomyAndNewEventsRolledUp()
    {
        var connectionString = await databases.CreateAsync("anatomy_migrate");
        var options = Options.Create(new PostgresStorageOptions { ConnectionString = connectionString, StartupTimeout = TimeSpan.FromSeconds(10) });
        await using (var v1 = new PostgresDatabase(options, PostgresSchema.All.Where(m => m.Version == 1), TimeProvider.System, NullLogger<PostgresDatabase>.Instance))
        {
            await v1.InitializeAsync(retry: false, CancellationToken.None);
            await v1.EnsurePartitionsAsync([PostgresDatabase.MonthOf(Hour)], CancellationToken.None);
            await using var connection = await v1.OpenAsync(CancellationToken.None);
            var hour = Hour.ToUnixTimeSeconds();
            await using var command = new NpgsqlCommand($"""
                INSERT INTO usage_event_ids VALUES ('req_old', '2026-03-02 10:05:00+00');
                INSERT INTO usage_events (request_id, ts, team_id, key_id, route, provider, model, stream, status, http_status,
                    error_code, input_tokens_received, input_tokens_sent, input_tokens, output_tokens, cached_input_tokens,
                    cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, cost_nanos, cost_usd, tokens_saved, stages,
                    estimated, latency_ms, ttft_ms, parent_request_id, attempt)
                VALUES ('req_old', '2026-03-02 10:05:00+00', 'team_a', 'key_a1', '/v1/chat/completions', 'openai', 'gpt-4o', false,
                    'ok', 200, NULL, 100, 90, 90, 20, 0, 0, 0, 0, 1000, 0.000001, 10, '[]', false, 1.5, NULL, NULL, NULL);
                INSERT INTO usage_hourly VALUES ({hour}, 'team_a', 'key_a1', 'gpt-4o', 'ok', 1, 100, 90, 90, 20, 0, 0, 1000, 10);
                INSERT INTO usage_daily VALUES ({hour / 86400 * 86400}, 'team_a', 'key_a1', 'gpt-4o', 'ok', 1, 100, 90, 90, 20, 0, 0, 1000, 10);
                """, connection);
            await command.ExecuteNonQueryAsync();
        }

        await using var migrated = new PostgresDatabase(options, PostgresSchema.All, TimeProvider.System, NullLogger<PostgresDatabase>.Instance);
        await migrated.InitializeAsync(retry: false, CancellationToken.None);
        await using var store = new PostgresLedgerStore(migrated);
        await AssertMigratedAsync(store, new PostgresUsageQueryService(migrated));
    }

    private static async Task AssertMigratedAsync(ILedgerStore store, IUsageQueryService usage)
    {
        var old = await usage.GetAsync("req_old", CancellationToken.None);
        Assert.NotNull(old);
        Assert.Null(old.Anatomy);
        Assert.Empty(await usage.GetTokenAnatomyAsync(null, Hour.AddDays(-1), Hour.AddDays(2), CancellationToken.None));

        var fresh = UsageEvents.Create(1, timestamp: Hour.AddMinutes(20)) with { Anatomy = NewAnatomy };
        Assert.Equal(1, await store.WriteBatchAsync([fresh], CancellationToken.None));

        // Whole days (daily rollup), whole hours (hourly rollup) and a mid-hour window (events) agree.
        foreach (var (from, to) in new[] { (Hour.AddDays(-1), Hour.AddDays(2)), (Hour, Hour.AddHours(1)), (Hour.AddMinutes(1), Hour.AddMinutes(59)) })
        {
            var rollup = Assert.Single(await usage.GetTokenAnatomyAsync("team_a", from, to, CancellationToken.None));
            Assert.Equal(new TokenAnatomyRollup("team_a", "gpt-4o", 1, 40, 300, 120, 60, 25, fresh.Usage.OutputTokens, fresh.Usage.ReasoningTokens, fresh.CostUsd), rollup);
            Assert.Equal(2, (await usage.QueryAsync(new UsageQuery { From = from, To = to }, CancellationToken.None)).Totals.Requests);
        }
    }
}
