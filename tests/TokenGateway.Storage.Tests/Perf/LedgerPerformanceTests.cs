using System.Diagnostics;
using System.Globalization;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Tests.TestSupport;
using Xunit.Abstractions;

namespace TokenGateway.Storage.Tests.Perf;

/// <summary>Measurements for docs/ledger.md (not part of the default run; see <see cref="PerformanceFactAttribute"/>).</summary>
[Trait("Category", "Performance")]
public sealed class LedgerPerformanceTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset MonthStart = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly string[] Models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "claude-sonnet-4-5", "text-embedding-3-small"];

    /// <summary>1,000,000 events over 30 days: 20 teams × 3 keys, 6 models, 95% ok / 3% upstream_error / 2% client_aborted.</summary>
    internal static UsageEvent Generated(int i, Random random)
    {
        var team = random.Next(20);
        var roll = random.Next(100);
        return new UsageEvent
        {
            RequestId = string.Create(CultureInfo.InvariantCulture, $"req_{i:D9}"),
            Timestamp = MonthStart.AddMilliseconds(i * 2592L), // 30 days / 1M events, in arrival order
            TeamId = string.Create(CultureInfo.InvariantCulture, $"team_{team:D2}"),
            KeyId = string.Create(CultureInfo.InvariantCulture, $"key_{team:D2}_{random.Next(3)}"),
            Route = "/v1/chat/completions",
            Provider = "openai",
            Model = Models[random.Next(Models.Length)],
            Status = roll < 95 ? UsageStatus.Ok : roll < 98 ? UsageStatus.UpstreamError : UsageStatus.ClientAborted,
            HttpStatus = 200,
            InputTokensReceived = 1200 + random.Next(800),
            InputTokensSent = 900 + random.Next(600),
            Usage = new TokenUsage(900 + random.Next(600), 100 + random.Next(400), CachedInputTokens: random.Next(300), ReasoningTokens: random.Next(50)),
            CostUsd = random.Next(1, 5_000_000) / 1_000_000_000m,
            TokensSaved = random.Next(500),
            Stages = [new StageSaving("compact", 120), new StageSaving("dedupe", 30)],
            LatencyMs = 350,
            TtftMs = 120,
        };
    }

    [PerformanceFact]
    public async Task Query_MillionEvents_ReportsTimings()
    {
        using var host = new StorageTestHost();
        var random = new Random(42);
        const int total = 1_000_000;
        var batch = new List<UsageEvent>(500);
        var write = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        for (var i = 0; i < total; i++)
        {
            batch.Add(Generated(i, random));
            if (batch.Count == 500)
            {
                await host.Store.WriteBatchAsync(batch, CancellationToken.None);
                batch.Clear();
            }
        }

        write.Stop();
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Report($"store: wrote {total:N0} events in {write.Elapsed.TotalSeconds:F1} s = {total / write.Elapsed.TotalSeconds:N0} events/s wall, " +
            $"{cpu.TotalSeconds:F1} s CPU = {total / cpu.TotalSeconds:N0} events per CPU-second (500 per transaction, generation included; load {LoadAverage()})");
        Report($"database: {new FileInfo(host.Database.Path).Length / 1024 / 1024} MiB, rollup rows: {await host.CountRowsAsync("usage_hourly"):N0}");

        var sut = host.CreateQueryService();
        var month = new UsageQuery { From = MonthStart, To = MonthStart.AddDays(30) };
        await Measure("totals, one team, whole month", month with { TeamId = "team_07" }, total / 20);
        await Measure("groupBy model, whole month", month with { GroupBy = "model" }, total);
        await Measure("groupBy day, whole month", month with { GroupBy = "day" }, total);
        await Measure("groupBy hour, one team, one week", new UsageQuery { TeamId = "team_07", From = MonthStart, To = MonthStart.AddDays(7), GroupBy = "hour" }, total / 20 * 7 / 30);
        await Measure("totals, one team, partial-hour range", month with { TeamId = "team_07", From = MonthStart.AddMinutes(17), To = MonthStart.AddDays(29).AddMinutes(43) }, total / 20);

        var list = Stopwatch.StartNew();
        var count = 0;
        await foreach (var _ in sut.ListAsync(new UsageQuery { TeamId = "team_07" }, 100, CancellationToken.None))
        {
            count++;
        }

        Report($"list 100 newest for one team: {list.Elapsed.TotalMilliseconds:F1} ms ({count} rows)");

        async Task Measure(string name, UsageQuery query, long expectedApprox)
        {
            await sut.QueryAsync(query, CancellationToken.None); // warm the page cache once
            var timings = new List<double>();
            UsageReport? report = null;
            for (var run = 0; run < 5; run++)
            {
                var sw = Stopwatch.StartNew();
                report = await sut.QueryAsync(query, CancellationToken.None);
                timings.Add(sw.Elapsed.TotalMilliseconds);
            }

            timings.Sort();
            Report($"{name}: median {timings[2]:F1} ms, min {timings[0]:F1} ms ({report!.Totals.Requests:N0} requests, {report.Groups.Count} groups)");
            Assert.InRange(report.Totals.Requests, expectedApprox * 8 / 10, expectedApprox * 12 / 10);
        }
    }

    [PerformanceFact]
    public async Task Ledger_SustainedRecordAndCommit_ReportsEventsPerSecond()
    {
        using var host = new StorageTestHost(o => o.LedgerFlushInterval = TimeSpan.FromMilliseconds(200));
        var ledger = host.CreateLedger();
        host.Track(ledger);
        await ledger.StartAsync(CancellationToken.None);
        var random = new Random(7);
        const int total = 200_000;
        var events = Enumerable.Range(0, total).Select(i => Generated(i, random)).ToList();

        var sw = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var recordTicks = 0L;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            var started = Stopwatch.GetTimestamp();
            for (var i = t; i < total; i += 4)
            {
                ledger.Record(events[i]);
            }

            Interlocked.Add(ref recordTicks, Stopwatch.GetTimestamp() - started);
        })));
        var recorded = sw.Elapsed;
        await ledger.FlushAsync(CancellationToken.None);
        sw.Stop();
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;

        Report($"ledger: {total:N0} events recorded by 4 threads in {recorded.TotalSeconds:F2} s, committed after {sw.Elapsed.TotalSeconds:F2} s " +
            $"= {total / sw.Elapsed.TotalSeconds:N0} events/s sustained ({cpu.TotalSeconds:F1} s CPU = {total / cpu.TotalSeconds:N0} events per CPU-second); " +
            $"overflowed to journal replay: {ledger.OverflowCount:N0}; load {LoadAverage()}");
        Assert.Equal(total, await host.CountRowsAsync());
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine(line);
    }
}
