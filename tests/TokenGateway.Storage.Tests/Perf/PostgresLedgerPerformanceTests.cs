using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Tests.TestSupport;
using Xunit.Abstractions;

namespace TokenGateway.Storage.Tests.Perf;

/// <summary>
/// Sustained ledger throughput on the real PostgreSQL server, for docs/scaling.md. Runs only with
/// <c>TOKENGATEWAY_PERF=1</c> and a server on 127.0.0.1:55432 (about half a minute).
/// </summary>
[Trait("Category", "Performance")]
public sealed class PostgresLedgerPerformanceTests(PostgresDatabaseFixture databases, ITestOutputHelper output) : IClassFixture<PostgresDatabaseFixture>
{
    private const int Total = 200_000;

    [PostgresPerformanceFact]
    public async Task Store_SequentialBatches_ReportsEventsPerSecondAndPerPostgresCore()
    {
        foreach (var batchSize in new[] { 500, 2000 })
        {
            await using var storage = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("perf"));
            var events = Generate();
            await storage.Ledger.WriteBatchAsync(events[..batchSize], CancellationToken.None); // opens the writer's connection
            var backends = await BackendPidsAsync(storage);
            var serverCpu = ServerCpu(backends);
            var clientCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (var i = batchSize; i < Total; i += batchSize)
            {
                await storage.Ledger.WriteBatchAsync(events[i..Math.Min(Total, i + batchSize)], CancellationToken.None);
            }

            sw.Stop();
            serverCpu = ServerCpu(backends) - serverCpu;
            clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientCpu;
            var written = Total - batchSize;
            Report($"PostgreSQL store, batches of {batchSize}: {written:N0} events in {sw.Elapsed.TotalSeconds:F1} s = {written / sw.Elapsed.TotalSeconds:N0} events/s; " +
                $"PostgreSQL backend CPU {serverCpu.TotalSeconds:F1} s = {written / serverCpu.TotalSeconds:N0} events per PostgreSQL core-second; " +
                $"client CPU {clientCpu.TotalSeconds:F1} s; load {LoadAverage()}");
            Assert.Equal(Total, await storage.ScalarAsync("SELECT count(*) FROM usage_events"));
            Assert.Equal(Total, await storage.ScalarAsync("SELECT sum(requests) FROM usage_hourly"));
        }
    }

    [PostgresPerformanceFact]
    public async Task Ledger_SustainedRecordAndCommit_ReportsEventsPerSecond()
    {
        await using var storage = await PostgresTestStorage.CreateAsync(await databases.CreateAsync("perfledger"));
        using var directory = new TempDirectory();
        using var ledger = new DurableUsageLedger(
            storage.Ledger,
            Options.Create(new StorageOptions { DataDirectory = directory.Path, LedgerFlushInterval = TimeSpan.FromMilliseconds(200) }),
            TimeProvider.System,
            NullLogger<DurableUsageLedger>.Instance);
        await ledger.StartAsync(CancellationToken.None);
        var events = Generate();

        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = t; i < Total; i += 4)
            {
                ledger.Record(events[i]);
            }
        })));
        var recorded = sw.Elapsed;
        await ledger.FlushAsync(CancellationToken.None);
        sw.Stop();
        await ledger.StopAsync(CancellationToken.None);

        Report($"ledger (journal + queue + PostgreSQL, batches of 500): {Total:N0} events recorded by 4 threads in {recorded.TotalSeconds:F2} s, " +
            $"committed after {sw.Elapsed.TotalSeconds:F2} s = {Total / sw.Elapsed.TotalSeconds:N0} events/s sustained; " +
            $"overflowed to journal replay: {ledger.OverflowCount:N0}; load {LoadAverage()}");
        Assert.Equal(Total, await storage.ScalarAsync("SELECT count(*) FROM usage_events"));
    }

    private static UsageEvent[] Generate()
    {
        var random = new Random(42);
        return [.. Enumerable.Range(0, Total).Select(i => LedgerPerformanceTests.Generated(i, random) with
        {
            // Now-ish timestamps: the month partitions the writer creates ahead, as in production.
            Timestamp = DateTimeOffset.UtcNow.AddMilliseconds(i),
        })];
    }

    private static async Task<int[]> BackendPidsAsync(PostgresTestStorage storage)
    {
        await using var connection = await storage.Database.DataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", connection);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            pids.Add(reader.GetInt32(0));
        }

        return [.. pids];
    }

    /// <summary>utime + stime of the given server processes (the server runs on this machine).</summary>
    private static TimeSpan ServerCpu(int[] pids)
    {
        long ticks = 0;
        foreach (var pid in pids)
        {
            var path = $"/proc/{pid}/stat";
            if (!File.Exists(path))
            {
                continue;
            }

            var fields = File.ReadAllText(path).Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }

        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine(line);
    }
}

/// <summary>A measurement on the real PostgreSQL server: needs <c>TOKENGATEWAY_PERF=1</c> and the server.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class PostgresPerformanceFactAttribute : FactAttribute
{
    public PostgresPerformanceFactAttribute()
    {
        Skip = Environment.GetEnvironmentVariable("TOKENGATEWAY_PERF") != "1"
            ? "Performance measurement; set TOKENGATEWAY_PERF=1 to run."
            : PostgresTestServer.UnavailableReason;
        Timeout = 0;
    }
}
