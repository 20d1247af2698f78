using System.Diagnostics;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.Storage.Tests.Ledger;

public sealed class DurableUsageLedgerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly StorageTestHost _host;

    public DurableUsageLedgerTests() => _host = new StorageTestHost();

    public void Dispose() => _host.Dispose();

    private async Task<DurableUsageLedger> StartLedgerAsync(StorageTestHost host, ILedgerStore? store = null)
    {
        var ledger = host.CreateLedger(store);
        host.Track(ledger);
        await ledger.StartAsync(CancellationToken.None);
        return ledger;
    }

    [Fact]
    public async Task Record_NEvents_FlushWritesExactlyNRows()
    {
        var sut = await StartLedgerAsync(_host);

        for (var i = 0; i < 1234; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(1234, await _host.CountRowsAsync());
        Assert.Equal(1234, await _host.RollupRequestsAsync());
        Assert.Equal(0, sut.SpoolDepth);
    }

    [Fact]
    public async Task Record_DuplicateRequestId_StoresOneRowAndCountsItOnce()
    {
        var sut = await StartLedgerAsync(_host);

        sut.Record(UsageEvents.Create(1));
        sut.Record(UsageEvents.Create(1));
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        sut.Record(UsageEvents.Create(1));
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(1, await _host.CountRowsAsync());
        Assert.Equal(1, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task FlushAsync_NothingRecorded_CompletesImmediately()
    {
        var sut = await StartLedgerAsync(_host);

        var flush = sut.FlushAsync(CancellationToken.None);

        Assert.True(flush.IsCompletedSuccessfully);
        Assert.Equal(0, await _host.CountRowsAsync());
    }

    public static TheoryData<string> Faults => ["locked", "busy", "disk-full", "io"];

    private static Exception CreateFault(string kind) => kind switch
    {
        "locked" => new SqliteException("database is locked", 6),
        "busy" => new SqliteException("database is locked", 5),
        "disk-full" => new SqliteException("database or disk is full", 13),
        _ => new IOException("disk I/O error"),
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Record_StoreFailingForAWhile_SpoolsThenWritesEveryEventOnce(string fault)
    {
        var store = new FaultyLedgerStore(_host.Store);
        store.FailAlways(() => CreateFault(fault));
        var sut = await StartLedgerAsync(_host, store);

        for (var i = 0; i < 800; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        await WaitUntilAsync(() => store.FailedCalls >= 3);
        Assert.Equal(800, sut.SpoolDepth);
        Assert.Equal(0, await _host.CountRowsAsync());

        store.Recover();
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(800, await _host.CountRowsAsync());
        Assert.Equal(800, await _host.RollupRequestsAsync());
        Assert.Equal(0, sut.SpoolDepth);
    }

    [Fact]
    public async Task Record_StoreFailsNTimesDuringOverflow_ReplaysJournalExactlyOnce()
    {
        _host.Options.LedgerQueueCapacity = 16;
        _host.Options.LedgerBatchSize = 8;
        var store = new FaultyLedgerStore(_host.Store);
        store.FailNext(5);
        var sut = await StartLedgerAsync(_host, store);

        for (var i = 0; i < 500; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.True(sut.OverflowCount > 0);
        Assert.Equal(5, store.FailedCalls);
        Assert.Equal(500, await _host.CountRowsAsync());
        Assert.Equal(500, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task Record_QueueFullWhileStoreBlocked_NeverBlocksAndLosesNothing()
    {
        _host.Options.LedgerQueueCapacity = 16;
        var store = new FaultyLedgerStore(_host.Store);
        store.CloseGate();
        var sut = await StartLedgerAsync(_host, store);

        var recording = Task.Run(() =>
        {
            var slowest = TimeSpan.Zero;
            for (var i = 0; i < 5000; i++)
            {
                var started = Stopwatch.GetTimestamp();
                sut.Record(UsageEvents.Create(i));
                var elapsed = Stopwatch.GetElapsedTime(started);
                slowest = elapsed > slowest ? elapsed : slowest;
            }

            return slowest;
        });

        // The store is blocked for the whole loop: if Record waited on it, this would time out.
        await recording.WaitAsync(Timeout);
        Assert.Equal(16, sut.QueueDepth);
        Assert.True(sut.OverflowCount >= 5000 - 16 - 500);
        Assert.Equal(5000, sut.SpoolDepth);

        store.OpenGate();
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(5000, await _host.CountRowsAsync());
        Assert.Equal(5000, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task Record_SlowStore_RecordStaysFastAndAllEventsArrive()
    {
        _host.Options.LedgerQueueCapacity = 64;
        _host.Options.LedgerBatchSize = 32;
        var store = new FaultyLedgerStore(_host.Store) { Delay = TimeSpan.FromMilliseconds(30) };
        var sut = await StartLedgerAsync(_host, store);

        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < 3000; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        var recordTime = Stopwatch.GetElapsedTime(started);
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        // 3000 events at 32 per 30 ms batch would take about 3 s if Record waited for the store.
        Assert.True(recordTime < TimeSpan.FromSeconds(2), $"Record loop took {recordTime}");
        Assert.Equal(3000, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Record_ConcurrentFromManyThreads_EveryEventStoredOnce()
    {
        _host.Options.LedgerQueueCapacity = 256;
        var sut = await StartLedgerAsync(_host);
        const int threads = 8;
        const int perThread = 1500;

        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < perThread; i++)
            {
                sut.Record(UsageEvents.Create((t * perThread) + i));
            }
        })));
        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(threads * perThread, await _host.CountRowsAsync());
        Assert.Equal(threads * perThread, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task StopAsync_WithoutFlush_DrainsEverythingAndLeavesNoSpool()
    {
        var sut = await StartLedgerAsync(_host);
        for (var i = 0; i < 700; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        await sut.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(700, await _host.CountRowsAsync());
        Assert.Equal(0, sut.SpoolDepth);
        Assert.All(_host.JournalFiles(), f => Assert.Equal(0, new FileInfo(f).Length));
    }

    [Fact]
    public async Task StopAsync_StoreDownPastDeadline_ReturnsAndNextStartReplays()
    {
        var store = new FaultyLedgerStore(_host.Store);
        store.FailAlways();
        var first = await StartLedgerAsync(_host, store);
        for (var i = 0; i < 100; i++)
        {
            first.Record(UsageEvents.Create(i));
        }

        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await first.StopAsync(deadline.Token).WaitAsync(Timeout);
        first.Dispose();
        Assert.Equal(0, await _host.CountRowsAsync());

        var second = await StartLedgerAsync(_host);
        await second.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(100, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Abandon_MidLoadWithStoreStuck_NewInstanceRecoversEveryEventExactlyOnce()
    {
        _host.Options.LedgerQueueCapacity = 64;
        var store = new FaultyLedgerStore(_host.Store);
        var crashed = await StartLedgerAsync(_host, store);
        for (var i = 0; i < 300; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        await crashed.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        store.CloseGate();
        for (var i = 300; i < 1000; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        // kill -9: no StopAsync, no flush; the batch in the writer's hands is never committed.
        crashed.Abandon();
        Assert.Equal(300, await _host.CountRowsAsync());

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(1000, await _host.CountRowsAsync());
        Assert.Equal(1000, await _host.RollupRequestsAsync());
        Assert.Equal(0, recovered.SpoolDepth);
    }

    [Fact]
    public async Task Start_JournalLeftovers_NotRecoveredUntilTheReplayIsCommitted()
    {
        var crashed = _host.CreateLedger();
        for (var i = 0; i < 40; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();
        var store = new FaultyLedgerStore(_host.Store);
        store.CloseGate(); // the replay reaches the store but cannot commit yet

        var recovered = await StartLedgerAsync(_host, store);
        var wait = recovered.WaitForRecoveryAsync(CancellationToken.None);
        await WaitUntilAsync(() => store.Calls > 0);

        Assert.False(recovered.IsRecovered);
        Assert.False(wait.IsCompleted);

        // Events recorded meanwhile do not count towards recovery: only the earlier run's lines do.
        recovered.Record(UsageEvents.Create(100));
        store.OpenGate();
        await wait.WaitAsync(Timeout);

        Assert.True(recovered.IsRecovered);
        Assert.True(await _host.CountRowsAsync() >= 40);
    }

    [Fact]
    public async Task Record_HugeClientModel_JournalRowAndRollupKeysHoldTheBoundedValue()
    {
        var sut = _host.CreateLedger(); // not started: what is recorded stays in the journal
        var model = new string('m', 1_000_000);
        for (var i = 0; i < 5; i++)
        {
            sut.Record(UsageEvents.Create(i, model: model, status: UsageStatus.Rejected));
        }

        // 5 × 1 MB of model would be 5 MB of journal; bounded, a line is well under 2 KB.
        // (The active segment is pre-sized: what it holds is the bytes before its zero tail.)
        Assert.True(_host.JournalFiles().Sum(f => File.ReadAllBytes(f).AsSpan().TrimEnd((byte)0).Length) < 5 * 2048);
        sut.Abandon();

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        await using var connection = await _host.Database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT MAX(LENGTH(model)) FROM usage_events UNION ALL SELECT MAX(LENGTH(model)) FROM usage_hourly UNION ALL SELECT MAX(LENGTH(model)) FROM usage_daily;";
        await using var reader = await command.ExecuteReaderAsync();
        var lengths = new List<long>();
        while (await reader.ReadAsync())
        {
            lengths.Add(reader.GetInt64(0));
        }

        Assert.Equal([StoredText.MaxLength, StoredText.MaxLength, StoredText.MaxLength], lengths);
        Assert.Equal(5, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Start_NoJournal_RecoveredAtOnce()
    {
        var sut = await StartLedgerAsync(_host);

        Assert.True(sut.IsRecovered);
        Assert.True(sut.WaitForRecoveryAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Abandon_NeverStarted_NewInstanceRecoversEveryEvent()
    {
        var crashed = _host.CreateLedger();
        for (var i = 0; i < 250; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(250, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Abandon_AfterCommitBeforeTruncate_ReplayDoesNotDoubleCount()
    {
        var first = await StartLedgerAsync(_host);
        for (var i = 0; i < 50; i++)
        {
            first.Record(UsageEvents.Create(i));
        }

        await first.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        var journal = Assert.Single(_host.JournalFiles());
        var copy = await File.ReadAllBytesAsync(journal);
        first.Abandon();

        // Put back a journal whose lines are all committed already, as if the process died before truncating it.
        await File.WriteAllBytesAsync(journal, copy);
        var second = await StartLedgerAsync(_host);
        second.Record(UsageEvents.Create(50));
        await second.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(51, await _host.CountRowsAsync());
        Assert.Equal(51, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task Abandon_JournalWithAndWithoutAnatomy_ReplayRoundTripsItAndOlderLinesReplayWithNone()
    {
        var crashed = _host.CreateLedger(); // not started: every event stays in the journal
        for (var i = 0; i < 6; i++)
        {
            crashed.Record(UsageEvents.Create(i) with { Anatomy = i % 2 == 0 ? new TokenAnatomy(i, 2 * i, 3 * i, 4 * i, 5 * i + 1) : null });
        }

        crashed.Abandon();
        // A line written before the anatomy field existed: the same JSON without the property.
        var current = System.Text.Json.JsonSerializer.Serialize(UsageEvents.Create(99), LedgerJsonContext.Default.UsageEvent);
        Assert.Contains(",\"anatomy\":null", current, StringComparison.Ordinal);
        var older = current.Replace(",\"anatomy\":null", string.Empty, StringComparison.Ordinal);
        var journal = Assert.Single(_host.JournalFiles());
        Assert.Contains("\"anatomy\":{\"system\":4,\"tools\":8,\"history\":12,\"toolResults\":16,\"latestUser\":21}", await File.ReadAllTextAsync(journal), StringComparison.Ordinal);
        await File.AppendAllTextAsync(journal, older + "\n");

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        var usage = _host.CreateQueryService();
        for (var i = 0; i < 6; i++)
        {
            var read = await usage.GetAsync(UsageEvents.Create(i).RequestId, CancellationToken.None);
            Assert.Equal(i % 2 == 0 ? new TokenAnatomy(i, 2 * i, 3 * i, 4 * i, 5 * i + 1) : null, read!.Anatomy);
        }

        var old = await usage.GetAsync(UsageEvents.Create(99).RequestId, CancellationToken.None);
        Assert.NotNull(old);
        Assert.Null(old.Anatomy);
        Assert.Equal(7, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Start_JournalWithTornLastLine_ReplaysCompleteLinesOnly()
    {
        var crashed = _host.CreateLedger();
        for (var i = 0; i < 10; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();
        var journal = Assert.Single(_host.JournalFiles());
        await File.AppendAllTextAsync(journal, "{\"requestId\":\"req_torn\",\"timest");

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(10, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Record_SmallSegments_RotatesAndDeletesCommittedSegments()
    {
        _host.Options.LedgerJournalSegmentBytes = 4096;
        var sut = await StartLedgerAsync(_host);
        for (var i = 0; i < 400; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await sut.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(400, await _host.CountRowsAsync());
        Assert.True(_host.JournalFiles().Length <= 1);
    }

    [Fact]
    public async Task Abandon_PreSizedSegmentWithZeroTail_ReplaysEveryLineOnce()
    {
        _host.Options.LedgerJournalSegmentBytes = 64 * 1024;
        var crashed = _host.CreateLedger(); // not started: every event stays in the journal
        for (var i = 0; i < 20; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon(); // as kill -9: the segment keeps its pre-sized length
        var journal = Assert.Single(_host.JournalFiles());
        var bytes = await File.ReadAllBytesAsync(journal);
        Assert.Equal(64 * 1024, bytes.Length);
        var written = bytes.AsSpan().TrimEnd((byte)0).Length;
        Assert.Equal((byte)'\n', bytes[written - 1]);
        Assert.Equal(20, bytes.AsSpan(0, written).Count((byte)'\n'));

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await recovered.WaitForRecoveryAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(20, await _host.CountRowsAsync());
        Assert.Equal(20, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task Abandon_PreSizedSegmentWithTornLineBeforeZeroTail_ReplaysCompleteLinesOnly()
    {
        _host.Options.LedgerJournalSegmentBytes = 64 * 1024;
        var crashed = _host.CreateLedger();
        for (var i = 0; i < 10; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();
        var journal = Assert.Single(_host.JournalFiles());
        var written = (await File.ReadAllBytesAsync(journal)).AsSpan().TrimEnd((byte)0).Length;
        // The process died inside its copy of line 11: part of the line, then the zeros that were never overwritten.
        await using (var stream = new FileStream(journal, FileMode.Open, FileAccess.Write))
        {
            stream.Position = written;
            await stream.WriteAsync("{\"requestId\":\"req_torn\",\"timest"u8.ToArray());
        }

        Assert.Equal(64 * 1024, new FileInfo(journal).Length);
        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(10, await _host.CountRowsAsync());
        Assert.Null(await _host.CreateQueryService().GetAsync("req_torn", CancellationToken.None));
    }

    [Fact]
    public async Task Record_SegmentFull_SealsItWithoutZeroTailAndReplaysAcrossSegments()
    {
        _host.Options.LedgerJournalSegmentBytes = 4096;
        var crashed = _host.CreateLedger();
        for (var i = 0; i < 60; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();
        var files = _host.JournalFiles().Order(StringComparer.Ordinal).ToArray();
        Assert.True(files.Length > 5, $"{files.Length} segments");
        foreach (var sealedFile in files[..^1])
        {
            // Sealed: cut to its whole lines, in the format pwrite-era segments have.
            var bytes = await File.ReadAllBytesAsync(sealedFile);
            Assert.InRange(bytes.Length, 1, 4096);
            Assert.Equal((byte)'\n', bytes[^1]);
            Assert.DoesNotContain((byte)0, bytes);
        }

        Assert.Equal(4096, new FileInfo(files[^1]).Length); // the active one, as the kill left it

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(60, await _host.CountRowsAsync());
        Assert.Equal(60, await _host.RollupRequestsAsync());
    }

    [Fact]
    public async Task Record_LineLargerThanTheSegment_GetsASegmentOfItsOwnAndReplays()
    {
        _host.Options.LedgerJournalSegmentBytes = 4096;
        var crashed = _host.CreateLedger();
        crashed.Record(UsageEvents.Create(0));
        var stages = Enumerable.Range(0, 300).Select(i => new StageSaving($"stage_{i:D3}", i)).ToList();
        crashed.Record(UsageEvents.Create(1) with { Stages = stages }); // about 10 KB: more than the room left, and than a segment
        crashed.Record(UsageEvents.Create(2));
        crashed.Abandon();

        var files = _host.JournalFiles().Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(3, files.Length);
        var big = await File.ReadAllBytesAsync(files[1]);
        Assert.True(big.Length > 4096, $"{big.Length} bytes");
        Assert.Equal(1, big.AsSpan().Count((byte)'\n'));

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(3, await _host.CountRowsAsync());
        var read = await _host.CreateQueryService().GetAsync(UsageEvents.Create(1).RequestId, CancellationToken.None);
        Assert.Equal(stages, read!.Stages);
    }

    [Fact]
    public async Task Start_SegmentWrittenBeforePreSizing_StillReplays()
    {
        // A segment as pwrite appended them (no zero tail, ends at its last newline), next to a pre-sized one.
        var older = string.Concat(Enumerable.Range(0, 5).Select(i =>
            System.Text.Json.JsonSerializer.Serialize(UsageEvents.Create(i), LedgerJsonContext.Default.UsageEvent) + "\n"));
        await File.WriteAllTextAsync(JournalSegment.PathFor(_host.Options.JournalPath, 1), older);
        var crashed = _host.CreateLedger();
        for (var i = 5; i < 8; i++)
        {
            crashed.Record(UsageEvents.Create(i));
        }

        crashed.Abandon();
        Assert.Equal(2, _host.JournalFiles().Length);

        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(8, await _host.CountRowsAsync());
    }

    [Fact]
    public async Task Record_AfterCatchUpOnALargeSegment_NewSegmentAndReplayCountEachEventOnce()
    {
        var sut = await StartLedgerAsync(_host);
        for (var i = 0; i < 3000; i++)
        {
            sut.Record(UsageEvents.Create(i)); // well over a megabyte of lines: caught up, the file is replaced, not zeroed
        }

        await sut.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        var deadline = Stopwatch.StartNew();
        while (_host.JournalFiles().Sum(f => File.ReadAllBytes(f).AsSpan().TrimEnd((byte)0).Length) > 0)
        {
            Assert.True(deadline.Elapsed < Timeout, "the caught-up journal was never emptied");
            await Task.Delay(20);
        }

        for (var i = 3000; i < 3010; i++)
        {
            sut.Record(UsageEvents.Create(i));
        }

        sut.Abandon();
        var recovered = await StartLedgerAsync(_host);
        await recovered.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(3010, await _host.CountRowsAsync());
        Assert.Equal(3010, await _host.RollupRequestsAsync());
    }

    [Fact]
    public void Constructor_SecondInstanceOnSameJournal_Throws()
    {
        var first = _host.CreateLedger();
        _host.Track(first);

        var ex = Assert.Throws<InvalidOperationException>(() => _host.CreateLedger());

        Assert.Contains("another gateway process", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Record_MissingRequestId_Throws()
    {
        var sut = _host.CreateLedger();
        _host.Track(sut);

        Assert.Throws<ArgumentException>(() => sut.Record(UsageEvents.Create(1, requestId: "")));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp();
        while (!condition())
        {
            if (Stopwatch.GetElapsedTime(deadline) > Timeout)
            {
                throw new TimeoutException("Condition not reached.");
            }

            await Task.Delay(5);
        }
    }
}
