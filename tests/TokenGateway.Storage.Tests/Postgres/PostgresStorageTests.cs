using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Postgres;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.Storage.Tests.Postgres;

/// <summary>PostgreSQL-only behaviour on the real server: migrations, partitions, parity with SQLite, outages.</summary>
public sealed class PostgresStorageTests(PostgresDatabaseFixture databases) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [PostgresFact]
    public async Task Initialize_FourReplicasStartTogether_OneSchemaAndNoError()
    {
        var connectionString = await databases.CreateAsync("migrate");
        var starters = Enumerable.Range(0, 4).Select(_ => PostgresTestStorage.CreateDatabase(connectionString)).ToList();
        try
        {
            // Released together: each takes the advisory lock in turn; the later ones find every step applied.
            using var go = new ManualResetEventSlim();
            var tasks = starters.Select(d => Task.Run(async () =>
            {
                go.Wait();
                await d.InitializeAsync(retry: true, CancellationToken.None);
            })).ToList();
            go.Set();
            await Task.WhenAll(tasks).WaitAsync(Timeout);

            await using var storage = await PostgresTestStorage.CreateAsync(connectionString);
            Assert.Equal(PostgresSchema.All.Count(), await storage.ScalarAsync("SELECT count(*) FROM schema_version"));
            Assert.Equal(PostgresSchema.All.Select(m => m.Component).Distinct().Count(), await storage.ScalarAsync("SELECT count(DISTINCT component) FROM schema_version"));
            var month = PostgresDatabase.MonthOf(DateTimeOffset.UtcNow);
            foreach (var ahead in new[] { 0, 1, 2 })
            {
                Assert.Equal(1, await storage.ScalarAsync(
                    $"SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_events'::regclass AND inhrelid = '{PostgresDatabase.PartitionName(month.AddMonths(ahead))}'::regclass"));
            }
        }
        finally
        {
            foreach (var starter in starters)
            {
                await starter.DisposeAsync();
            }
        }
    }

    [PostgresFact]
    public async Task WriteBatch_EventsFromSeveralMonths_EachInItsMonthlyPartition()
    {
        await using var storage = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("parts"));
        DateTimeOffset[] times = [new(2025, 1, 31, 23, 59, 59, TimeSpan.Zero), new(2025, 2, 1, 0, 0, 0, TimeSpan.Zero), new(2026, 3, 15, 8, 0, 0, TimeSpan.Zero)];
        var events = times.Select((t, i) => UsageEvents.Create(i, timestamp: t)).ToList();

        Assert.Equal(3, await storage.Ledger.WriteBatchAsync(events, CancellationToken.None));

        Assert.Equal(1, await storage.ScalarAsync("SELECT count(*) FROM usage_events_p202501"));
        Assert.Equal(1, await storage.ScalarAsync("SELECT count(*) FROM usage_events_p202502"));
        Assert.Equal(1, await storage.ScalarAsync("SELECT count(*) FROM usage_events_p202603"));
        Assert.Equal(3, await storage.ScalarAsync("SELECT count(*) FROM usage_events"));

        // A query over one month reads only that month's partition.
        await using var connection = await storage.Database.DataSource.OpenConnectionAsync();
        await using var explain = new Npgsql.NpgsqlCommand(
            "EXPLAIN SELECT count(*) FROM usage_events WHERE ts >= '2025-02-01Z' AND ts < '2025-03-01Z'", connection);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        Assert.Contains(plan, line => line.Contains("usage_events_p202502", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, line => line.Contains("usage_events_p202501", StringComparison.Ordinal) || line.Contains("usage_events_p202603", StringComparison.Ordinal));
    }

    [PostgresFact]
    public async Task WriteBatch_PartitionDroppedUnderTheWriter_FailsOnceThenRecreatesIt()
    {
        await using var storage = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("dropped"));
        var march = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.Zero);
        await storage.Ledger.WriteBatchAsync([UsageEvents.Create(0, timestamp: march)], CancellationToken.None);
        await storage.ExecuteAsync("DROP TABLE usage_events_p202603");

        // The writer retries a failed batch (DurableUsageLedger); the retry must not hit the same missing partition.
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => storage.Ledger.WriteBatchAsync([UsageEvents.Create(1, timestamp: march)], CancellationToken.None));
        var retried = await storage.Ledger.WriteBatchAsync([UsageEvents.Create(1, timestamp: march)], CancellationToken.None);

        Assert.Equal(1, retried);
        Assert.Equal(1, await storage.ScalarAsync("SELECT count(*) FROM usage_events_p202603"));
    }

    [PostgresFact]
    public async Task Usage_SameEventsAsSqlite_EveryQueryAnswersTheSame()
    {
        await using var postgres = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("parity"));
        using var sqlite = new StorageTestHost();
        var random = new Random(20261203);
        string?[] teams = ["team_a", "team_b", "Team_c", null];
        string?[] models = ["gpt-4o", "claude-sonnet-4-5", null];
        string[] statuses = [UsageStatus.Ok, UsageStatus.UpstreamError, UsageStatus.Rejected];
        var start = new DateTimeOffset(2026, 2, 27, 0, 0, 0, TimeSpan.Zero); // crosses a month (and partition) boundary
        var events = Enumerable.Range(0, 3000).Select(i => UsageEvents.Create(
            i,
            teamId: teams[random.Next(teams.Length)],
            keyId: random.Next(5) == 0 ? null : $"key_{random.Next(4)}",
            model: models[random.Next(models.Length)],
            status: statuses[random.Next(statuses.Length)],
            timestamp: start.AddMilliseconds(random.NextInt64(5L * 86_400_000)),
            cost: random.Next(0, 9_000_000) / 1_000_000_000m)).ToList();
        foreach (var batch in events.Chunk(500))
        {
            await postgres.Ledger.WriteBatchAsync(batch, CancellationToken.None);
            await sqlite.Store.WriteBatchAsync(batch, CancellationToken.None);
        }

        var sqliteQueries = sqlite.CreateQueryService();
        string?[] groupBys = [null, "team", "key", "model", "day", "hour"];
        var queries = new List<UsageQuery> { new(), new() { GroupBy = "day" }, new() { From = start, To = start.AddDays(5) } };
        for (var i = 0; i < 60; i++)
        {
            var from = start.AddMilliseconds(random.NextInt64(-86_400_000, 5L * 86_400_000));
            queries.Add(new UsageQuery
            {
                From = random.Next(4) == 0 ? null : from,
                To = random.Next(4) == 0 ? null : from.AddMilliseconds(random.NextInt64(1, 3L * 86_400_000)),
                TeamId = random.Next(3) == 0 ? teams[random.Next(3)] : null,
                KeyId = random.Next(5) == 0 ? "key_1" : null,
                Model = random.Next(5) == 0 ? "gpt-4o" : null,
                Status = random.Next(5) == 0 ? UsageStatus.Ok : null,
                GroupBy = groupBys[random.Next(groupBys.Length)],
            });
        }

        foreach (var query in queries)
        {
            var expected = await sqliteQueries.QueryAsync(query, CancellationToken.None);
            var actual = await postgres.Usage.QueryAsync(query, CancellationToken.None);
            Assert.Equal(expected.Totals, actual.Totals);
            Assert.Equal(expected.Groups, actual.Groups);
        }

        var sqliteList = await ToListAsync(sqliteQueries.ListAsync(new UsageQuery { TeamId = "team_a", From = start.AddDays(1) }, 50, CancellationToken.None));
        var postgresList = await ToListAsync(postgres.Usage.ListAsync(new UsageQuery { TeamId = "team_a", From = start.AddDays(1) }, 50, CancellationToken.None));
        Assert.Equal(sqliteList.Select(e => e.RequestId), postgresList.Select(e => e.RequestId));
        Assert.Equal(3000, await postgres.ScalarAsync("SELECT sum(requests) FROM usage_daily"));
        Assert.Equal(3000, await postgres.ScalarAsync("SELECT sum(requests) FROM usage_hourly"));
        SqliteConnection.ClearAllPools();
    }

    [PostgresFact]
    public async Task Ledger_PostgresUnreachableThenBack_SpooledEventsLandOnceWithoutRestart()
    {
        var connectionString = await databases.CreateAsync("outage");
        await using var storage = await PostgresTestStorage.CreateAsync(connectionString);
        using var directory = new TempDirectory();
        using var ledger = CreateLedger(storage.Ledger, directory.Path);
        await ledger.StartAsync(CancellationToken.None);
        for (var i = 0; i < 100; i++)
        {
            ledger.Record(UsageEvents.Create(i));
        }

        await ledger.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await PostgresTestServer.BlockAsync(connectionString);
        try
        {
            for (var i = 100; i < 300; i++)
            {
                ledger.Record(UsageEvents.Create(i));
            }

            await Task.Delay(500);
            Assert.Equal(200, ledger.SpoolDepth); // journaled, not committed: the store is down
        }
        finally
        {
            await PostgresTestServer.UnblockAsync(connectionString);
        }

        await ledger.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await ledger.StopAsync(CancellationToken.None);

        Assert.Equal(0, ledger.SpoolDepth);
        await AssertExactlyOnceAsync(storage, 300);
    }

    [PostgresFact]
    public async Task Ledger_RestartWhilePostgresDown_JournalReplayedOnceWhenItIsBack()
    {
        var connectionString = await databases.CreateAsync("replay");
        await using var storage = await PostgresTestStorage.CreateAsync(connectionString);
        using var directory = new TempDirectory();
        using (var first = CreateLedger(storage.Ledger, directory.Path))
        {
            await first.StartAsync(CancellationToken.None);
            for (var i = 0; i < 150; i++)
            {
                first.Record(UsageEvents.Create(i));
            }

            await first.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
            await PostgresTestServer.BlockAsync(connectionString);
            for (var i = 150; i < 400; i++)
            {
                first.Record(UsageEvents.Create(i));
            }

            // Shut down while PostgreSQL is unreachable: the 250 uncommitted events stay in the journal.
            using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await first.StopAsync(giveUp.Token);
        }

        await PostgresTestServer.UnblockAsync(connectionString);
        await using var restarted = await PostgresTestStorage.CreateAsync(connectionString);

        using var second = CreateLedger(restarted.Ledger, directory.Path);
        await second.StartAsync(CancellationToken.None);
        await second.WaitForRecoveryAsync(CancellationToken.None).WaitAsync(Timeout);
        await second.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await second.StopAsync(CancellationToken.None);

        // A journal may also hold lines committed just before a crash: replaying those changes nothing either.
        Assert.Equal(0, await restarted.Ledger.WriteBatchAsync([.. Enumerable.Range(0, 150).Select(i => UsageEvents.Create(i))], CancellationToken.None));
        await AssertExactlyOnceAsync(restarted, 400);
    }

    private static async Task AssertExactlyOnceAsync(PostgresTestStorage storage, int expected)
    {
        var report = await storage.Usage.QueryAsync(new UsageQuery(), CancellationToken.None);
        var all = Enumerable.Range(0, expected).Select(i => UsageEvents.Create(i)).ToList();
        Assert.Equal(expected, await storage.ScalarAsync("SELECT count(*) FROM usage_events"));
        Assert.Equal(expected, await storage.ScalarAsync("SELECT count(DISTINCT request_id) FROM usage_events"));
        Assert.Equal(expected, await storage.ScalarAsync("SELECT count(*) FROM usage_event_ids"));
        Assert.Equal(expected, report.Totals.Requests);
        Assert.Equal(all.Sum(e => e.CostUsd), report.Totals.CostUsd);
        Assert.Equal(all.Sum(e => (long)e.Usage.OutputTokens), report.Totals.OutputTokens);
    }

    private static DurableUsageLedger CreateLedger(ILedgerStore store, string directory) => new(
        store,
        Options.Create(new StorageOptions
        {
            DataDirectory = directory,
            LedgerFlushInterval = TimeSpan.FromMilliseconds(5),
            LedgerMaxRetryDelay = TimeSpan.FromMilliseconds(200),
        }),
        TimeProvider.System,
        NullLogger<DurableUsageLedger>.Instance);

    private static async Task<List<UsageEvent>> ToListAsync(IAsyncEnumerable<UsageEvent> source)
    {
        var list = new List<UsageEvent>();
        await foreach (var e in source)
        {
            list.Add(e);
        }

        return list;
    }
}
