using Microsoft.Extensions.Time.Testing;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Teams;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.Storage.Tests.Teams;

public sealed class SqliteTeamStoreTests : IDisposable
{
    private readonly StorageTestHost _host = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _host.Dispose();

    private SqliteTeamStore CreateSut() => _host.CreateTeamStore(_time);

    [Fact]
    public async Task CreateTeamAsync_ThenGet_ReturnsStoredTeam()
    {
        var sut = CreateSut();

        var created = await sut.CreateTeamAsync("  Search  ", CancellationToken.None);
        var read = await sut.GetTeamAsync(created.Id, CancellationToken.None);

        Assert.StartsWith("team_", created.Id, StringComparison.Ordinal);
        Assert.Equal(31, created.Id.Length);
        Assert.Equal("Search", created.Name);
        Assert.Equal(_time.GetUtcNow(), created.CreatedAt);
        Assert.Equal(created, read);
    }

    [Fact]
    public async Task GetTeamAsync_Unknown_ReturnsNull()
    {
        var sut = CreateSut();

        Assert.Null(await sut.GetTeamAsync("team_missing", CancellationToken.None));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task CreateTeamAsync_BlankName_Throws(string name)
    {
        var sut = CreateSut();

        await Assert.ThrowsAsync<ArgumentException>(() => sut.CreateTeamAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task ListTeamsAsync_PagedByCursor_ReturnsEveryTeamOnceInCreationOrder()
    {
        var sut = CreateSut();
        var created = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            created.Add((await sut.CreateTeamAsync($"team {i}", CancellationToken.None)).Id);
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await sut.ListTeamsAsync(3, cursor, CancellationToken.None);
            seen.AddRange(page.Items.Select(t => t.Id));
            cursor = page.NextCursor;
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(created, seen);
    }

    [Fact]
    public async Task ListTeamsAsync_ExactlyOnePage_HasNoCursor()
    {
        var sut = CreateSut();
        await sut.CreateTeamAsync("a", CancellationToken.None);
        await sut.CreateTeamAsync("b", CancellationToken.None);

        var page = await sut.ListTeamsAsync(2, null, CancellationToken.None);

        Assert.Equal(2, page.Items.Count);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public async Task CreateKeyAsync_ThenFindByHash_ReturnsKeyWithoutSecret()
    {
        var sut = CreateSut();
        var team = await sut.CreateTeamAsync("payments", CancellationToken.None);
        var expires = _time.GetUtcNow().AddDays(30);

        var key = await sut.CreateKeyAsync(team.Id, "ci", "hash-1", "tg-abcd", expires, CancellationToken.None);
        var found = await sut.FindKeyByHashAsync("hash-1", CancellationToken.None);
        var byId = await sut.GetKeyAsync(key.Id, CancellationToken.None);

        Assert.StartsWith("key_", key.Id, StringComparison.Ordinal);
        Assert.Equal(team.Id, key.TeamId);
        Assert.Equal("tg-abcd", key.Prefix);
        Assert.Equal(expires, key.ExpiresAt);
        Assert.Null(key.RevokedAt);
        Assert.Equal(key, found);
        Assert.Equal(key, byId);
        Assert.Null(await sut.FindKeyByHashAsync("hash-2", CancellationToken.None));
    }

    [Fact]
    public async Task CreateKeyAsync_UnknownTeam_ThrowsKeyNotFound()
    {
        var sut = CreateSut();

        await Assert.ThrowsAsync<KeyNotFoundException>(
            () => sut.CreateKeyAsync("team_missing", "k", "hash", "tg-x", null, CancellationToken.None));
    }

    [Fact]
    public async Task ListKeysAsync_TwoTeams_ReturnsOnlyThatTeamsKeysPaged()
    {
        var sut = CreateSut();
        var a = await sut.CreateTeamAsync("a", CancellationToken.None);
        var b = await sut.CreateTeamAsync("b", CancellationToken.None);
        var aKeys = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            aKeys.Add((await sut.CreateKeyAsync(a.Id, $"k{i}", $"ha{i}", "tg-a", null, CancellationToken.None)).Id);
            await sut.CreateKeyAsync(b.Id, $"k{i}", $"hb{i}", "tg-b", null, CancellationToken.None);
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var first = await sut.ListKeysAsync(a.Id, 4, null, CancellationToken.None);
        var second = await sut.ListKeysAsync(a.Id, 4, first.NextCursor, CancellationToken.None);

        Assert.Equal(aKeys, first.Items.Concat(second.Items).Select(k => k.Id));
        Assert.All(first.Items.Concat(second.Items), k => Assert.Equal(a.Id, k.TeamId));
        Assert.NotNull(first.NextCursor);
        Assert.Null(second.NextCursor);
    }

    [Fact]
    public async Task RevokeKeyAsync_Twice_KeepsFirstRevocationAndDeactivates()
    {
        var sut = CreateSut();
        var team = await sut.CreateTeamAsync("t", CancellationToken.None);
        var key = await sut.CreateKeyAsync(team.Id, "k", "hash", "tg-x", null, CancellationToken.None);
        var first = _time.GetUtcNow();

        Assert.True(await sut.RevokeKeyAsync(key.Id, first, CancellationToken.None));
        Assert.True(await sut.RevokeKeyAsync(key.Id, first.AddHours(1), CancellationToken.None));
        var revoked = await sut.FindKeyByHashAsync("hash", CancellationToken.None);

        Assert.Equal(first, revoked!.RevokedAt);
        Assert.False(revoked.IsActive(first));
    }

    [Fact]
    public async Task RevokeKeyAsync_UnknownKey_ReturnsFalse()
    {
        var sut = CreateSut();

        Assert.False(await sut.RevokeKeyAsync("key_missing", _time.GetUtcNow(), CancellationToken.None));
    }

    [Fact]
    public async Task FindKeyByHashAsync_ExpiredKey_IsNotActive()
    {
        var sut = CreateSut();
        var team = await sut.CreateTeamAsync("t", CancellationToken.None);
        await sut.CreateKeyAsync(team.Id, "k", "hash", "tg-x", _time.GetUtcNow().AddMinutes(5), CancellationToken.None);

        var key = await sut.FindKeyByHashAsync("hash", CancellationToken.None);

        Assert.True(key!.IsActive(_time.GetUtcNow()));
        Assert.False(key.IsActive(_time.GetUtcNow().AddMinutes(5)));
    }

    [Fact]
    public async Task SetSettingAsync_Overwrite_ReturnsLatestValue()
    {
        var sut = CreateSut();

        Assert.Null(await sut.GetSettingAsync("admin_key_hash", CancellationToken.None));
        await sut.SetSettingAsync("admin_key_hash", "one", CancellationToken.None);
        await sut.SetSettingAsync("admin_key_hash", "two", CancellationToken.None);

        Assert.Equal("two", await sut.GetSettingAsync("admin_key_hash", CancellationToken.None));
    }

    [Fact]
    public async Task Store_ReopenedOnSameFile_KeepsDataAndAppliesMigrationsOnce()
    {
        var sut = CreateSut();
        var team = await sut.CreateTeamAsync("durable", CancellationToken.None);

        var reopened = new SqliteTeamStore(_host.CreateDatabase(), _time);
        var read = await reopened.GetTeamAsync(team.Id, CancellationToken.None);

        Assert.Equal(team, read);
        Assert.Equal(TeamSchema.All.Concat(LedgerSchema.All).Count(), await _host.CountRowsAsync("schema_version")); // each migration once
    }

    [Fact]
    public async Task Database_Initialize_UsesWalJournalMode()
    {
        await using var connection = await _host.Database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";

        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }
}
