using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Storage.Schemas;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Tests.Schemas;

public sealed class SqliteSchemaRegistryTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tg-schemas-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 5, 12, 0, 0, TimeSpan.Zero));

    private SqliteSchemaRegistry CreateSut() => new(new SqliteDatabase(
        Options.Create(new StorageOptions { DataDirectory = _directory, DatabaseFile = "gateway.db" }),
        OutputSchemaSchema.All, _time, NullLogger<SqliteDatabase>.Instance), _time);

    private static JsonObject Schema(string property) =>
        new() { ["type"] = "object", ["properties"] = new JsonObject { [property] = new JsonObject { ["type"] = "string" } } };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task AddVersionAsync_SameNameTwice_NumbersVersionsAndLatestIsNewest()
    {
        var sut = CreateSut();

        var v1 = await sut.AddVersionAsync("person", Schema("a"), "first", CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(1));
        var v2 = await sut.AddVersionAsync("person", Schema("b"), null, CancellationToken.None);

        Assert.Equal(1, v1.Version);
        Assert.Equal(2, v2.Version);
        var latest = await sut.GetLatestAsync("person", CancellationToken.None);
        Assert.Equal(2, latest!.Version);
        Assert.True(JsonNode.DeepEquals(Schema("b"), latest.Schema));
        var first = await sut.GetVersionAsync("person", 1, CancellationToken.None);
        Assert.Equal("first", first!.Description);
        Assert.Equal(_time.GetUtcNow().AddMinutes(-1), first.CreatedAt);
    }

    [Fact]
    public async Task ListAsync_SeveralNames_SummarisesEachOrderedByName()
    {
        var sut = CreateSut();
        await sut.AddVersionAsync("zeta", Schema("a"), null, CancellationToken.None);
        await sut.AddVersionAsync("alpha", Schema("a"), null, CancellationToken.None);
        await sut.AddVersionAsync("alpha", Schema("b"), null, CancellationToken.None);

        var list = await sut.ListAsync(CancellationToken.None);
        var versions = await sut.ListVersionsAsync("alpha", CancellationToken.None);

        Assert.Equal(["alpha", "zeta"], list.Select(s => s.Name));
        Assert.Equal(2, list[0].LatestVersion);
        Assert.Equal(2, list[0].Versions);
        Assert.Equal([1, 2], versions.Select(v => v.Version));
    }

    [Fact]
    public async Task GetAsync_UnknownNameOrVersion_ReturnsNull()
    {
        var sut = CreateSut();
        await sut.AddVersionAsync("person", Schema("a"), null, CancellationToken.None);

        Assert.Null(await sut.GetLatestAsync("nobody", CancellationToken.None));
        Assert.Null(await sut.GetVersionAsync("person", 2, CancellationToken.None));
        Assert.Empty(await sut.ListVersionsAsync("nobody", CancellationToken.None));
    }

    [Fact]
    public async Task AddVersionAsync_ConcurrentCreates_GetDistinctVersions()
    {
        var sut = CreateSut();

        var created = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => sut.AddVersionAsync("race", Schema("p" + i), null, CancellationToken.None)));

        Assert.Equal(Enumerable.Range(1, 8), created.Select(c => c.Version).Order());
    }

    [Fact]
    public async Task AddVersionAsync_InvalidName_Throws()
    {
        var sut = CreateSut();

        await Assert.ThrowsAsync<ArgumentException>(() => sut.AddVersionAsync("bad name!", Schema("a"), null, CancellationToken.None));
    }
}
