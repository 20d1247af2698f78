using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Policies;
using TokenGateway.Storage.Schemas;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Tests.TestSupport;
using TokenGateway.Storage.Usage;

namespace TokenGateway.Storage.Tests.Contracts;

/// <summary>The stores one backend provides, over one fresh database.</summary>
public sealed record StoreSet(ITeamStore Teams, IPolicyStore Policies, ISchemaRegistry Schemas, ILedgerStore Ledger, IUsageQueryService Usage);

/// <summary>
/// The storage contracts, written once and run against every backend (SQLite and PostgreSQL subclasses), so both
/// keep the same semantics: ids, ordering, paging, time precision, exactly-once ledger writes.
/// </summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero).AddTicks(1234567));

    private StoreSet? _stores;

    protected StoreSet Stores => _stores ?? throw new InvalidOperationException("InitializeAsync has not run.");

    protected abstract Task<StoreSet> CreateStoresAsync(TimeProvider time);

    public async Task InitializeAsync() => _stores = await CreateStoresAsync(Time);

    public abstract Task DisposeAsync();

    [StoreFact]
    public async Task Teams_CreateThenGet_SameTeamWithMillisecondTime()
    {
        var created = await Stores.Teams.CreateTeamAsync("  Search  ", CancellationToken.None);
        var read = await Stores.Teams.GetTeamAsync(created.Id, CancellationToken.None);

        Assert.StartsWith("team_", created.Id, StringComparison.Ordinal);
        Assert.Equal(31, created.Id.Length);
        Assert.Equal("Search", created.Name);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Time.GetUtcNow().ToUnixTimeMilliseconds()), created.CreatedAt);
        Assert.Equal(created, read);
        Assert.Null(await Stores.Teams.GetTeamAsync("team_missing", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => Stores.Teams.CreateTeamAsync("   ", CancellationToken.None));
    }

    [StoreFact]
    public async Task Teams_ListedByCursor_EveryTeamOnceInCreationOrder()
    {
        var created = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            created.Add((await Stores.Teams.CreateTeamAsync($"team {i}", CancellationToken.None)).Id);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await Stores.Teams.ListTeamsAsync(3, cursor, CancellationToken.None);
            seen.AddRange(page.Items.Select(t => t.Id));
            cursor = page.NextCursor;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(created, seen);
    }

    [StoreFact]
    public async Task Keys_CreateFindListRevoke_SameAnswers()
    {
        var team = await Stores.Teams.CreateTeamAsync("t", CancellationToken.None);
        var expires = Time.GetUtcNow().AddDays(3).AddTicks(7777);
        var key = await Stores.Teams.CreateKeyAsync(team.Id, "ci", "hash-1", "tg-abcd", expires, CancellationToken.None);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var second = await Stores.Teams.CreateKeyAsync(team.Id, "ci2", "hash-2", "tg-efgh", null, CancellationToken.None);

        Assert.StartsWith("key_", key.Id, StringComparison.Ordinal);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(expires.ToUnixTimeMilliseconds()), key.ExpiresAt);
        Assert.Equal(key, await Stores.Teams.FindKeyByHashAsync("hash-1", CancellationToken.None));
        Assert.Equal(second, await Stores.Teams.GetKeyAsync(second.Id, CancellationToken.None));
        Assert.Null(await Stores.Teams.FindKeyByHashAsync("hash-unknown", CancellationToken.None));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => Stores.Teams.CreateKeyAsync("team_missing", "x", "hash-3", "tg-x", null, CancellationToken.None));

        var first = await Stores.Teams.ListKeysAsync(team.Id, 1, null, CancellationToken.None);
        var rest = await Stores.Teams.ListKeysAsync(team.Id, 1, first.NextCursor, CancellationToken.None);
        Assert.Equal([key], first.Items);
        Assert.Equal([second], rest.Items);
        Assert.Null(rest.NextCursor);

        var revokedAt = Time.GetUtcNow().AddTicks(4321);
        Assert.True(await Stores.Teams.RevokeKeyAsync(key.Id, revokedAt, CancellationToken.None));
        Assert.True(await Stores.Teams.RevokeKeyAsync(key.Id, revokedAt.AddHours(1), CancellationToken.None));
        Assert.False(await Stores.Teams.RevokeKeyAsync("key_missing", revokedAt, CancellationToken.None));
        var revoked = await Stores.Teams.FindKeyByHashAsync("hash-1", CancellationToken.None);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(revokedAt.ToUnixTimeMilliseconds()), revoked!.RevokedAt); // the first revocation wins
    }

    [StoreFact]
    public async Task Settings_SetTwice_LastValueWins()
    {
        Assert.Null(await Stores.Teams.GetSettingAsync("admin_key_hash", CancellationToken.None));
        await Stores.Teams.SetSettingAsync("admin_key_hash", "one", CancellationToken.None);
        await Stores.Teams.SetSettingAsync("admin_key_hash", "two", CancellationToken.None);

        Assert.Equal("two", await Stores.Teams.GetSettingAsync("admin_key_hash", CancellationToken.None));
    }

    [StoreFact]
    public async Task Policies_PutGetListDelete_SameAnswers()
    {
        var policy = PolicyJson.Parse("""{"budget": {"usd": 50.5, "period": "week", "hard": true}, "models": {"allow": ["gpt-4o*"]}}""").Policy!;
        var stored = await Stores.Policies.PutAsync(PolicyScope.Team, "team_b", policy, CancellationToken.None);
        await Stores.Policies.PutAsync(PolicyScope.Team, "Team_A", policy, CancellationToken.None);
        await Stores.Policies.PutAsync(PolicyScope.Team, "team_a", policy, CancellationToken.None);
        await Stores.Policies.PutAsync(PolicyScope.Key, "team_b", TeamPolicy.Empty, CancellationToken.None);

        var read = await Stores.Policies.GetAsync(PolicyScope.Team, "team_b", CancellationToken.None);
        Assert.Equal(stored.UpdatedAt, read!.UpdatedAt);
        Assert.Equal(PolicyJson.Serialize(policy), PolicyJson.Serialize(read.Policy));
        Assert.Equal(["Team_A", "team_a", "team_b"], (await Stores.Policies.ListAsync(PolicyScope.Team, CancellationToken.None)).Select(p => p.Id));

        Assert.True(await Stores.Policies.DeleteAsync(PolicyScope.Team, "team_b", CancellationToken.None));
        Assert.False(await Stores.Policies.DeleteAsync(PolicyScope.Team, "team_b", CancellationToken.None));
        Assert.Null(await Stores.Policies.GetAsync(PolicyScope.Team, "team_b", CancellationToken.None));
        Assert.NotNull(await Stores.Policies.GetAsync(PolicyScope.Key, "team_b", CancellationToken.None));
    }

    [StoreFact]
    public async Task Schemas_VersionsListAndConcurrentCreates_SameAnswers()
    {
        // Property order is part of the schema (it orders the model's answer): it must read back unchanged.
        var schema = JsonNode.Parse("""{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}},"required":["zeta"]}""")!.AsObject();
        var v1 = await Stores.Schemas.AddVersionAsync("invoice", schema, "first", CancellationToken.None);
        var v2 = await Stores.Schemas.AddVersionAsync("invoice", schema, null, CancellationToken.None);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Stores.Schemas.AddVersionAsync("busy", schema, null, CancellationToken.None)));

        Assert.Equal((1, 2), (v1.Version, v2.Version));
        var latest = await Stores.Schemas.GetLatestAsync("invoice", CancellationToken.None);
        Assert.Equal(2, latest!.Version);
        Assert.Equal(schema.ToJsonString(), latest.Schema.ToJsonString());
        Assert.Equal(v1.CreatedAt, (await Stores.Schemas.GetVersionAsync("invoice", 1, CancellationToken.None))!.CreatedAt);
        Assert.Equal("first", (await Stores.Schemas.GetVersionAsync("invoice", 1, CancellationToken.None))!.Description);
        Assert.Null(await Stores.Schemas.GetVersionAsync("invoice", 3, CancellationToken.None));
        Assert.Equal(Enumerable.Range(1, 8), (await Stores.Schemas.ListVersionsAsync("busy", CancellationToken.None)).Select(s => s.Version));
        var summaries = await Stores.Schemas.ListAsync(CancellationToken.None);
        Assert.Equal([("busy", 8, 8), ("invoice", 2, 2)], summaries.Select(s => (s.Name, s.LatestVersion, s.Versions)));
    }

    [StoreFact]
    public async Task Ledger_BatchReplayedAndDuplicated_EachRequestIdStoredOnce()
    {
        var events = Enumerable.Range(0, 50).Select(i => UsageEvents.Create(i)).ToList();

        var first = await Stores.Ledger.WriteBatchAsync(events, CancellationToken.None);
        var replay = await Stores.Ledger.WriteBatchAsync(events, CancellationToken.None);
        var mixed = await Stores.Ledger.WriteBatchAsync([UsageEvents.Create(50), UsageEvents.Create(50), events[3]], CancellationToken.None);
        var report = await Stores.Usage.QueryAsync(new UsageQuery(), CancellationToken.None);

        Assert.Equal((50, 0, 1), (first, replay, mixed));
        Assert.Equal(51, report.Totals.Requests);
        Assert.Equal(events.Append(UsageEvents.Create(50)).Sum(e => (long)e.InputTokensReceived), report.Totals.InputTokensReceived);
        Assert.Equal(events.Append(UsageEvents.Create(50)).Sum(e => e.CostUsd), report.Totals.CostUsd);
    }

    [StoreFact]
    public async Task Ledger_DuplicatesWithinAndAcrossBatches_RollupsPerKeyEqualTheDistinctEvents()
    {
        // 120 events over three days, two teams, two models and two statuses: several rollup rows per batch.
        var events = Enumerable.Range(0, 120).Select(i => UsageEvents.Create(
            i, teamId: $"team_{i % 2}", model: i % 3 == 0 ? "m1" : "m2", status: i % 5 == 0 ? UsageStatus.Rejected : UsageStatus.Ok,
            timestamp: UsageEvents.BaseTime.AddMinutes(i * 37), cost: 0.001m * (i + 1))).ToList();
        List<UsageEvent> first = [.. events[..60], events[5], events[10], events[10], events[59]];
        List<UsageEvent> second = [events[70], .. events[40..120], events[70], events[0], events[119]];

        var written = (
            await Stores.Ledger.WriteBatchAsync(first, CancellationToken.None),
            await Stores.Ledger.WriteBatchAsync(second, CancellationToken.None),
            await Stores.Ledger.WriteBatchAsync(events, CancellationToken.None));

        Assert.Equal((60, 60, 0), written);
        foreach (var groupBy in new[] { "team", "model", "day", "hour" })
        {
            var report = await Stores.Usage.QueryAsync(new UsageQuery { GroupBy = groupBy }, CancellationToken.None);
            var expected = events
                .GroupBy(e => groupBy switch
                {
                    "team" => e.TeamId!,
                    "model" => e.Model!,
                    "day" => e.Timestamp.UtcDateTime.Date.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                    _ => new DateTime(e.Timestamp.UtcDateTime.Ticks / TimeSpan.TicksPerHour * TimeSpan.TicksPerHour, DateTimeKind.Utc)
                        .ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                })
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (g.Key, (long)g.Count(), g.Sum(e => (long)e.InputTokensReceived), g.Sum(e => (long)e.Usage.OutputTokens), g.Sum(e => e.CostUsd)));

            Assert.Equal(expected, report.Groups.Select(g => (g.Key, g.Totals.Requests, g.Totals.InputTokensReceived, g.Totals.OutputTokens, g.Totals.CostUsd)));
        }

        var rejected = await Stores.Usage.QueryAsync(new UsageQuery { Status = UsageStatus.Rejected }, CancellationToken.None);
        Assert.Equal(events.Count(e => e.Status == UsageStatus.Rejected), rejected.Totals.Requests);
    }

    [StoreFact]
    public async Task Ledger_GetAsync_RoundTripsEveryField()
    {
        var e = UsageEvents.Create(7, teamId: null, model: "weird\u00e9") with
        {
            ErrorCode = "upstream_error",
            Estimated = true,
            TtftMs = null,
            ParentRequestId = "req_parent",
            Attempt = "fallback:1",
            CostUsd = 0.000123456789m,
            Timestamp = UsageEvents.BaseTime.AddMilliseconds(1234.5),
            Usage = new TokenUsage(1, 2, 3, 4, 5, 6),
        };
        await Stores.Ledger.WriteBatchAsync([e], CancellationToken.None);

        var read = await Stores.Usage.GetAsync(e.RequestId, CancellationToken.None);
        var expected = e with { Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(e.Timestamp.ToUnixTimeMilliseconds()) };

        Assert.Equal(Json(expected), Json(read!));
        Assert.Null(await Stores.Usage.GetAsync("req_missing", CancellationToken.None));
    }

    [StoreFact]
    public async Task Usage_GroupedAndListed_SameShape()
    {
        var events = Enumerable.Range(0, 30).Select(i => UsageEvents.Create(
            i, teamId: i % 3 == 0 ? null : $"team_{i % 2}", model: i % 4 == 0 ? "a" : "B",
            timestamp: UsageEvents.BaseTime.AddMinutes(i * 97))).ToList();
        await Stores.Ledger.WriteBatchAsync(events, CancellationToken.None);

        var byTeam = await Stores.Usage.QueryAsync(new UsageQuery { GroupBy = "team" }, CancellationToken.None);
        var byHour = await Stores.Usage.QueryAsync(new UsageQuery { GroupBy = "hour", From = UsageEvents.BaseTime.AddMinutes(30), To = UsageEvents.BaseTime.AddHours(20) }, CancellationToken.None);
        var listed = new List<UsageEvent>();
        await foreach (var e in Stores.Usage.ListAsync(new UsageQuery { Model = "B" }, 5, CancellationToken.None))
        {
            listed.Add(e);
        }

        Assert.Equal(["", "team_0", "team_1"], byTeam.Groups.Select(g => g.Key));
        Assert.Equal(events.Count(e => e.TeamId is null), byTeam.Groups[0].Totals.Requests);
        Assert.Equal("2026-03-01T01:00:00Z", byHour.Groups[0].Key);
        Assert.Equal(events.Count(e => e.Timestamp >= UsageEvents.BaseTime.AddMinutes(30) && e.Timestamp < UsageEvents.BaseTime.AddHours(20)), byHour.Totals.Requests);
        Assert.Equal(events.Where(e => e.Model == "B").OrderByDescending(e => e.Timestamp).Take(5).Select(e => e.RequestId), listed.Select(e => e.RequestId));
        await Assert.ThrowsAsync<ArgumentException>(() => Stores.Usage.QueryAsync(new UsageQuery { GroupBy = "week" }, CancellationToken.None));
    }

    [StoreFact]
    public async Task Ledger_Anatomy_RoundTripsAndStaysNullWhenUnknown()
    {
        var with = UsageEvents.Create(1) with { Anatomy = new TokenAnatomy(12, 345, 6789, 1011, 12) };
        var without = UsageEvents.Create(2);
        await Stores.Ledger.WriteBatchAsync([with, without], CancellationToken.None);

        var readWith = await Stores.Usage.GetAsync(with.RequestId, CancellationToken.None);
        var readWithout = await Stores.Usage.GetAsync(without.RequestId, CancellationToken.None);
        var listed = new List<UsageEvent>();
        await foreach (var e in Stores.Usage.ListAsync(new UsageQuery(), 10, CancellationToken.None))
        {
            listed.Add(e);
        }

        Assert.Equal(new TokenAnatomy(12, 345, 6789, 1011, 12), readWith!.Anatomy);
        Assert.Null(readWithout!.Anatomy);
        Assert.Equal([null, new TokenAnatomy(12, 345, 6789, 1011, 12)], listed.Select(e => e.Anatomy));
        Assert.Equal(Json(with with { Timestamp = readWith.Timestamp }), Json(readWith));
    }

    [StoreFact]
    public async Task Usage_TokenAnatomy_RolledUpPerTeamAndModelFromRollupsAndEdgeEvents()
    {
        // Four days of events every 37 minutes, across two teams (and none), two models; every third one without an
        // anatomy (rejected before parsing). The window starts and ends mid-hour, so the answer combines edge events,
        // hourly rows and daily rows.
        var events = Enumerable.Range(0, 160).Select(i => UsageEvents.Create(
            i, teamId: i % 5 == 0 ? null : $"team_{i % 2}", model: i % 4 == 0 ? "claude" : "gpt-4o",
            timestamp: UsageEvents.BaseTime.AddMinutes(i * 37)) with
            {
                Anatomy = i % 3 == 0 ? null : new TokenAnatomy(10 + i, 200 + i % 9, 3 * i, i % 13, 7 + i % 5),
            }).ToList();
        await Stores.Ledger.WriteBatchAsync(events, CancellationToken.None);
        await Stores.Ledger.WriteBatchAsync(events.Take(40).ToList(), CancellationToken.None); // a replay adds nothing

        var from = UsageEvents.BaseTime.AddMinutes(50);
        var to = UsageEvents.BaseTime.AddDays(3).AddHours(5).AddMinutes(20);
        var all = await Stores.Usage.GetTokenAnatomyAsync(null, from, to, CancellationToken.None);
        var team1 = await Stores.Usage.GetTokenAnatomyAsync("team_1", from, to, CancellationToken.None);
        var empty = await Stores.Usage.GetTokenAnatomyAsync(null, to, from, CancellationToken.None);

        static List<TokenAnatomyRollup> Expected(IEnumerable<UsageEvent> source) => [.. source
            .Where(e => e.Anatomy is not null)
            .GroupBy(e => (Team: e.TeamId ?? "", Model: e.Model ?? ""))
            .OrderBy(g => g.Key.Team, StringComparer.Ordinal).ThenBy(g => g.Key.Model, StringComparer.Ordinal)
            .Select(g => new TokenAnatomyRollup(g.Key.Team, g.Key.Model, g.Count(),
                g.Sum(e => (long)e.Anatomy!.Value.System), g.Sum(e => (long)e.Anatomy!.Value.Tools),
                g.Sum(e => (long)e.Anatomy!.Value.History), g.Sum(e => (long)e.Anatomy!.Value.ToolResults),
                g.Sum(e => (long)e.Anatomy!.Value.LatestUser), g.Sum(e => (long)e.Usage.OutputTokens),
                g.Sum(e => (long)e.Usage.ReasoningTokens), g.Sum(e => e.CostUsd)))];
        var inWindow = events.Where(e => e.Timestamp >= from && e.Timestamp < to).ToList();

        Assert.Equal(Expected(inWindow), all);
        Assert.Equal(["", "team_0", "team_1"], all.Select(r => r.TeamId).Distinct());
        Assert.Equal(Expected(inWindow.Where(e => e.TeamId == "team_1")), team1);
        Assert.Empty(empty);
    }

    private static string Json(UsageEvent e) => JsonSerializer.Serialize(e, LedgerJsonContext.Default.UsageEvent);
}

/// <summary>The contract on the embedded SQLite store.</summary>
public sealed class SqliteStoreContractTests : StoreContractTests
{
    private readonly TempDirectory _directory = new();
    private SqliteLedgerStore? _ledger;

    protected override Task<StoreSet> CreateStoresAsync(TimeProvider time)
    {
        var database = new SqliteDatabase(
            Options.Create(new StorageOptions { DataDirectory = _directory.Path }),
            TeamSchema.All.Concat(LedgerSchema.All).Concat(PolicySchema.All).Concat(OutputSchemaSchema.All),
            time, NullLogger<SqliteDatabase>.Instance);
        _ledger = new SqliteLedgerStore(database);
        return Task.FromResult(new StoreSet(
            new SqliteTeamStore(database, time), new SqlitePolicyStore(database, time), new SqliteSchemaRegistry(database, time),
            _ledger, new SqliteUsageQueryService(database)));
    }

    public override Task DisposeAsync()
    {
        _ledger?.Dispose();
        SqliteConnection.ClearAllPools();
        _directory.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>The contract on PostgreSQL: a fresh database per test on the real server (skipped when none answers).</summary>
public sealed class PostgresStoreContractTests(PostgresDatabaseFixture databases) : StoreContractTests, IPostgresBacked, IClassFixture<PostgresDatabaseFixture>
{
    private PostgresTestStorage? _storage;

    protected override async Task<StoreSet> CreateStoresAsync(TimeProvider time)
    {
        if (PostgresTestServer.UnavailableReason is not null)
        {
            return new StoreSet(null!, null!, null!, null!, null!); // every test of this class is skipped
        }

        _storage = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("contract"), time);
        return new StoreSet(_storage.Teams, _storage.Policies, _storage.Schemas, _storage.Ledger, _storage.Usage);
    }

    public override async Task DisposeAsync()
    {
        if (_storage is not null)
        {
            await _storage.DisposeAsync();
        }
    }
}
