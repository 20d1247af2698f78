using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Storage;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Sqlite;
using TokenGateway.Storage.Teams;

namespace TokenGateway.Benchmarks.Storage;

/// <summary>
/// The ledger's hot path (<see cref="DurableUsageLedger.Record"/>: serialize + journal append + enqueue) and the batch
/// writer's commit cost. Run: <c>dotnet run -c Release --project tests/TokenGateway.Benchmarks -- --filter *LedgerBenchmarks*</c>.
/// </summary>
[MemoryDiagnoser]
public class LedgerBenchmarks
{
    private const int BatchSize = 500;

    private string _directory = "";
    private DurableUsageLedger _ledger = null!;
    private SqliteLedgerStore _store = null!;
    private UsageEvent _event = null!;
    private List<UsageEvent> _batch = [];
    private int _next;
    private byte[] _line = [];
    private JournalSegment? _segment;
    private long _segmentId;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "tg-ledger-bench", Guid.NewGuid().ToString("N"));
        var options = Options.Create(new StorageOptions { DataDirectory = _directory });
        var database = new SqliteDatabase(options, TeamSchema.All.Concat(LedgerSchema.All), TimeProvider.System, NullLogger<SqliteDatabase>.Instance);
        _store = new SqliteLedgerStore(database);

        // Record is measured against a writer that keeps up (a no-op store), so the numbers are the request's cost only.
        _ledger = new DurableUsageLedger(new NullLedgerStore(), options, TimeProvider.System, NullLogger<DurableUsageLedger>.Instance);
        _ledger.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        _event = CreateEvent(0);
        _line = [.. System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(_event, LedgerJsonContext.Default.UsageEvent), (byte)'\n'];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ledger.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        _ledger.Dispose();
        _segment?.Delete();
        _store.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [IterationSetup(Target = nameof(WriteBatch500))]
    public void PrepareBatch() => _batch = [.. Enumerable.Range(_next, BatchSize).Select(CreateEvent)];

    /// <summary>Per-request cost on the proxy path.</summary>
    [Benchmark]
    public void Record() => _ledger.Record(_event);

    /// <summary>
    /// The journal write alone (what <see cref="Record"/> does under its lock): one serialized event line appended to a
    /// 16 MiB segment, a fresh segment when it is full (as the ledger rotates).
    /// </summary>
    [Benchmark]
    public void JournalAppend()
    {
        if (_segment is null || !_segment.HasRoom(_line.Length))
        {
            _segment?.Delete();
            _segment = JournalSegment.CreateNew(Path.Combine(_directory, "bench.journal"), ++_segmentId, 16 * 1024 * 1024);
        }

        _segment.Append(_line);
    }

    /// <summary>One writer transaction of 500 new events into SQLite (insert + hourly/daily rollups).</summary>
    [Benchmark(OperationsPerInvoke = BatchSize)]
    public int WriteBatch500()
    {
        _next += BatchSize;
        return _store.WriteBatchAsync(_batch, CancellationToken.None).GetAwaiter().GetResult();
    }

    private static UsageEvent CreateEvent(int i) => new()
    {
        RequestId = $"req_{i:D9}_{Guid.NewGuid():N}",
        Timestamp = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).AddMilliseconds(i * 100L),
        TeamId = $"team_{i % 20:D2}",
        KeyId = $"key_{i % 60:D2}",
        Route = "/v1/chat/completions",
        Provider = "openai",
        Model = (i % 3) switch { 0 => "gpt-4o", 1 => "gpt-4o-mini", _ => "claude-sonnet-4-5" },
        Stream = true,
        Status = UsageStatus.Ok,
        HttpStatus = 200,
        InputTokensReceived = 1500,
        InputTokensSent = 1100,
        Usage = new TokenUsage(1100, 300, CachedInputTokens: 200, ReasoningTokens: 20),
        CostUsd = 0.004321m,
        TokensSaved = 400,
        Stages = [new StageSaving("compact", 300), new StageSaving("dedupe", 100)],
        LatencyMs = 812.5,
        TtftMs = 150.25,
    };

    private sealed class NullLedgerStore : ILedgerStore
    {
        public Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken) => Task.FromResult(events.Count);
    }
}
