using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Core.Budgets;
using TokenGateway.Storage.Policies;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Tests.Policies;

public sealed class SqlitePolicyStoreTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tg-policies-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 5, 12, 0, 0, TimeSpan.Zero));

    private SqlitePolicyStore CreateSut() => new(Database(Path.Combine(_directory, "nested")), _time);

    private SqliteDatabase Database(string directory) => new(
        Options.Create(new StorageOptions { DataDirectory = directory, DatabaseFile = "gateway.db" }),
        PolicySchema.All, _time, NullLogger<SqliteDatabase>.Instance);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static TeamPolicy FullPolicy() => PolicyJson.Parse("""
        {"budget": {"usd": 50.5, "tokens": 2000000, "period": "week", "softAlertPercent": 80, "hard": true},
         "rateLimits": {"requestsPerMinute": 600, "tokensPerMinute": 200000},
         "models": {"allow": ["gpt-4o*", "claude-*"], "deny": ["o1*"]},
         "maxTokens": {"default": 1024, "cap": 4096},
         "optimization": {"compact": {"toon": true}}, "structuredOutput": {"maxRepairs": 1}}
        """).Policy!;

    [Fact]
    public async Task PutAsync_ThenGet_RoundTripsEveryField()
    {
        var sut = CreateSut();
        var policy = FullPolicy();

        var stored = await sut.PutAsync(PolicyScope.Team, "team-1", policy, CancellationToken.None);
        var read = await sut.GetAsync(PolicyScope.Team, "team-1", CancellationToken.None);

        Assert.NotNull(read);
        Assert.Equal(_time.GetUtcNow(), stored.UpdatedAt);
        Assert.Equal(_time.GetUtcNow(), read.UpdatedAt);
        Assert.Equal(policy.Budget, read.Policy.Budget);
        Assert.Equal(policy.RateLimits, read.Policy.RateLimits);
        Assert.Equal(policy.MaxTokens, read.Policy.MaxTokens);
        Assert.Equal(policy.Models!.Allow, read.Policy.Models!.Allow);
        Assert.Equal(policy.Models.Deny, read.Policy.Models.Deny);
        Assert.True(JsonNode.DeepEquals(policy.Optimization, read.Policy.Optimization));
        Assert.True(JsonNode.DeepEquals(policy.StructuredOutput, read.Policy.StructuredOutput));
    }

    [Fact]
    public async Task PutAsync_Existing_ReplacesAndUpdatesTimestamp()
    {
        var sut = CreateSut();
        await sut.PutAsync(PolicyScope.Team, "team-1", FullPolicy(), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(5));

        await sut.PutAsync(PolicyScope.Team, "team-1", new TeamPolicy { Budget = new BudgetPolicy { Usd = 1 } }, CancellationToken.None);
        var read = await sut.GetAsync(PolicyScope.Team, "team-1", CancellationToken.None);

        Assert.Equal(1m, read!.Policy.Budget!.Usd);
        Assert.Null(read.Policy.RateLimits);
        Assert.Equal(_time.GetUtcNow(), read.UpdatedAt);
    }

    [Fact]
    public async Task ScopesAndIds_AreIndependent()
    {
        var sut = CreateSut();

        await sut.PutAsync(PolicyScope.Team, "x", new TeamPolicy { Budget = new BudgetPolicy { Usd = 1 } }, CancellationToken.None);
        await sut.PutAsync(PolicyScope.Key, "x", new TeamPolicy { Budget = new BudgetPolicy { Usd = 2 } }, CancellationToken.None);
        await sut.PutAsync(PolicyScope.Default, PolicyStoreIds.Default, new TeamPolicy { Budget = new BudgetPolicy { Usd = 3 } }, CancellationToken.None);

        Assert.Equal(1m, (await sut.GetAsync(PolicyScope.Team, "x", CancellationToken.None))!.Policy.Budget!.Usd);
        Assert.Equal(2m, (await sut.GetAsync(PolicyScope.Key, "x", CancellationToken.None))!.Policy.Budget!.Usd);
        Assert.Equal(3m, (await sut.GetAsync(PolicyScope.Default, PolicyStoreIds.Default, CancellationToken.None))!.Policy.Budget!.Usd);
        Assert.Null(await sut.GetAsync(PolicyScope.Team, "y", CancellationToken.None));
    }

    [Fact]
    public async Task DeleteAsync_RemovesOnlyThatPolicy()
    {
        var sut = CreateSut();
        await sut.PutAsync(PolicyScope.Team, "a", TeamPolicy.Empty, CancellationToken.None);
        await sut.PutAsync(PolicyScope.Team, "b", TeamPolicy.Empty, CancellationToken.None);

        var deleted = await sut.DeleteAsync(PolicyScope.Team, "a", CancellationToken.None);
        var again = await sut.DeleteAsync(PolicyScope.Team, "a", CancellationToken.None);

        Assert.True(deleted);
        Assert.False(again);
        Assert.Null(await sut.GetAsync(PolicyScope.Team, "a", CancellationToken.None));
        Assert.NotNull(await sut.GetAsync(PolicyScope.Team, "b", CancellationToken.None));
    }

    [Fact]
    public async Task ListAsync_ReturnsScopeOrderedById()
    {
        var sut = CreateSut();
        foreach (var id in new[] { "t3", "t1", "t2" })
        {
            await sut.PutAsync(PolicyScope.Team, id, TeamPolicy.Empty, CancellationToken.None);
        }

        await sut.PutAsync(PolicyScope.Key, "k1", TeamPolicy.Empty, CancellationToken.None);

        var teams = await sut.ListAsync(PolicyScope.Team, CancellationToken.None);

        Assert.Equal(["t1", "t2", "t3"], teams.Select(p => p.Id));
        Assert.All(teams, p => Assert.Equal(PolicyScope.Team, p.Scope));
    }

    [Fact]
    public async Task NewInstance_SameFile_SeesPersistedPolicies()
    {
        await CreateSut().PutAsync(PolicyScope.Team, "t1", FullPolicy(), CancellationToken.None);

        var read = await CreateSut().GetAsync(PolicyScope.Team, "t1", CancellationToken.None);

        Assert.Equal(50.5m, read!.Policy.Budget!.Usd);
    }

    [Fact]
    public async Task ConcurrentWrites_AllPersist()
    {
        var sut = CreateSut();

        await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(() => sut.PutAsync(PolicyScope.Team, $"t{i:D2}", new TeamPolicy { Budget = new BudgetPolicy { Usd = i } }, CancellationToken.None))));

        var all = await sut.ListAsync(PolicyScope.Team, CancellationToken.None);
        Assert.Equal(32, all.Count);
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (decimal?)i), all.Select(p => p.Policy.Budget!.Usd));
    }

    [Fact]
    public async Task Database_ExistingAdHocPoliciesTable_MigratesWithoutLosingRowsAndRecordsVersion()
    {
        // A database from before the migration: the store used to create its table itself on first use.
        var directory = Path.Combine(_directory, "legacy");
        Directory.CreateDirectory(directory);
        await using (var legacy = new SqliteConnection($"Data Source={Path.Combine(directory, "gateway.db")}"))
        {
            await legacy.OpenAsync();
            await using var create = legacy.CreateCommand();
            create.CommandText = """
                CREATE TABLE policies (scope TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (scope, id)) WITHOUT ROWID;
                INSERT INTO policies VALUES ('team', 'old', '{"budget":{"usd":7}}', '2026-01-01T00:00:00.0000000+00:00');
                """;
            await create.ExecuteNonQueryAsync();
        }

        var database = Database(directory);
        var sut = new SqlitePolicyStore(database, _time);

        var old = await sut.GetAsync(PolicyScope.Team, "old", CancellationToken.None);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await using var version = connection.CreateCommand();
        version.CommandText = "SELECT COUNT(*) FROM schema_version WHERE component = 'policies' AND version = 1";

        Assert.Equal(7m, old!.Policy.Budget!.Usd);
        Assert.Equal(1L, (long)(await version.ExecuteScalarAsync())!);
    }
}
