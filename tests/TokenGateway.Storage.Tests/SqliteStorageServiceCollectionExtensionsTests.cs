using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Teams;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.Storage.Tests;

public sealed class SqliteStorageServiceCollectionExtensionsTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private IHost BuildHost()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["Storage:DataDirectory"] = _directory.Path;
        builder.Configuration["Storage:LedgerFlushInterval"] = "00:00:00.010";
        builder.Services.AddSqliteStorage();
        return builder.Build();
    }

    [Fact]
    public async Task AddSqliteStorage_HostLifecycle_StoresTeamsAndUsageDurably()
    {
        string teamId;
        using (var host = BuildHost())
        {
            await host.StartAsync();
            var teams = host.Services.GetRequiredService<ITeamStore>();
            var ledger = host.Services.GetRequiredService<IUsageLedger>();
            teamId = (await teams.CreateTeamAsync("platform", CancellationToken.None)).Id;
            for (var i = 0; i < 20; i++)
            {
                ledger.Record(UsageEvents.Create(i, teamId: teamId));
            }

            // No flush: a graceful stop must drain the ledger.
            await host.StopAsync();
        }

        using (var host = BuildHost())
        {
            await host.StartAsync();
            var teams = host.Services.GetRequiredService<ITeamStore>();
            var usage = host.Services.GetRequiredService<IUsageQueryService>();

            var team = await teams.GetTeamAsync(teamId, CancellationToken.None);
            var report = await usage.QueryAsync(new UsageQuery { TeamId = teamId }, CancellationToken.None);

            Assert.Equal("platform", team?.Name);
            Assert.Equal(20, report.Totals.Requests);
            Assert.True(File.Exists(Path.Combine(_directory.Path, "tokengateway.db")));
            await host.StopAsync();
        }
    }

    [Fact]
    public void AddSqliteStorage_Defaults_MatchDocumentedValues()
    {
        Assert.Equal("./data", new StorageOptions().DataDirectory);
        using var host = BuildHost();

        var options = host.Services.GetRequiredService<IOptions<StorageOptions>>().Value;

        Assert.Equal("tokengateway.db", options.DatabaseFile);
        Assert.Equal(10_000, options.LedgerQueueCapacity);
        Assert.Equal(500, options.LedgerBatchSize);
        Assert.Equal(TimeSpan.FromMilliseconds(10), options.LedgerFlushInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(200), new StorageOptions().LedgerFlushInterval);
        Assert.Same(TimeProvider.System, host.Services.GetRequiredService<TimeProvider>());
        Assert.Same(host.Services.GetRequiredService<IUsageLedger>(), host.Services.GetServices<IHostedService>().OfType<IUsageLedger>().Single());
    }

    [Fact]
    public void ConnectionString_AbsoluteDatabaseFile_IgnoresDataDirectory()
    {
        var file = Path.Combine(_directory.Path, "elsewhere", "gw.db");
        var options = new StorageOptions { DataDirectory = "./data", DatabaseFile = file };

        Assert.Equal(file, options.DatabasePath);
        Assert.Contains(file, options.ConnectionString, StringComparison.Ordinal);
    }
}
