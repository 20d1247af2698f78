using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Win32.SafeHandles;
using TokenGateway.Core.Metering;

namespace TokenGateway.Storage.Ledger;

/// <summary>
/// The usage ledger: <see cref="Record"/> appends the event to an on-disk journal and queues it in memory; one
/// background writer commits batches to the <see cref="ILedgerStore"/>. See docs/ledger.md for the guarantees.
/// </summary>
/// <remarks>
/// Invariants (all sequence numbers are assigned under <see cref="_appendLock"/>, in journal order):
/// <list type="bullet">
/// <item>Every recorded event is in a journal segment, or (only if the journal write failed) in the queue or
/// <see cref="_unjournaled"/>.</item>
/// <item>Events enter the queue in sequence order; an event that does not fit sets <see cref="_replayFromSeq"/>, so the
/// writer later re-reads the journal instead.</item>
/// <item><see cref="_committedThrough"/> = W means every event with sequence ≤ W is committed.</item>
/// <item>A segment file is deleted or truncated only when every line in it is committed.</item>
/// </list>
/// </remarks>
internal sealed partial class DurableUsageLedger : IUsageLedger, ILedgerRecovery, IHostedService, IDisposable
{
    private static readonly TimeSpan BaseRetryDelay = TimeSpan.FromMilliseconds(100);

    /// <summary>A caught-up active segment with at most this many bytes written is zeroed and reused; a larger one is replaced.</summary>
    private const long MaxZeroedInPlace = 1024 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_jsonWriter;

    private readonly ILedgerStore _store;
    private readonly StorageOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<DurableUsageLedger> _logger;
    private readonly Channel<LedgerEntry> _queue;
    private readonly Lock _appendLock = new();
    private readonly Lock _flushLock = new();
    private readonly List<JournalSegment> _sealed = [];
    private readonly ConcurrentQueue<LedgerEntry> _unjournaled = new();
    private readonly List<FlushWaiter> _flushWaiters = [];
    private readonly CancellationTokenSource _hardStop = new();
    private readonly string _journalPath;
    private readonly SafeFileHandle _processLock;
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _recoveryTarget;

    private JournalSegment? _active;
    private long _nextSegmentId;
    private long _lastSeq;
    private long _replayFromSeq = long.MaxValue;
    private long _committedThrough;
    private long _overflowed;
    private bool _journalFailing;
    private int _pendingFlushes;
    private volatile bool _stopping;
    private CancellationTokenSource? _waitCts;
    private Task? _writerTask;

    public DurableUsageLedger(ILedgerStore store, IOptions<StorageOptions> options, TimeProvider time, ILogger<DurableUsageLedger> logger)
    {
        _store = store;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _journalPath = _options.JournalPath;
        _queue = Channel.CreateBounded<LedgerEntry>(new BoundedChannelOptions(_options.LedgerQueueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails fast instead; the event is already journaled.
        });

        Directory.CreateDirectory(Path.GetDirectoryName(_journalPath)!); // JournalPath is absolute
        _processLock = AcquireProcessLock(_journalPath);
        var leftovers = JournalSegment.FindExisting(_journalPath);
        _sealed.AddRange(leftovers);
        _nextSegmentId = leftovers.Count == 0 ? 1 : leftovers[^1].Id + 1;
        if (leftovers.Count > 0)
        {
            // Leftover lines take the first sequence numbers, so FlushAsync also waits for their replay.
            _lastSeq = leftovers.Sum(s => s.Appended);
            _replayFromSeq = 0;
            _recoveryTarget = _lastSeq;
            LogRecovering(_logger, _lastSeq, leftovers.Count);
        }
        else
        {
            _recovered.TrySetResult();
        }
    }

    public bool IsRecovered => _recovered.Task.IsCompleted;

    public Task WaitForRecoveryAsync(CancellationToken cancellationToken) => _recovered.Task.WaitAsync(cancellationToken);

    public int QueueDepth => _queue.Reader.Count;

    public long SpoolDepth
    {
        get
        {
            long depth = _unjournaled.Count;
            lock (_appendLock)
            {
                if (_active is not null)
                {
                    depth += Math.Max(0, _active.Appended - _active.Committed);
                }

                foreach (var segment in _sealed)
                {
                    depth += Math.Max(0, segment.Appended - segment.Committed);
                }
            }

            return depth;
        }
    }

    /// <summary>Events that did not fit in the queue and were picked up from the journal instead.</summary>
    public long OverflowCount => Interlocked.Read(ref _overflowed);

    public void Record(UsageEvent usageEvent)
    {
        ArgumentNullException.ThrowIfNull(usageEvent);
        ArgumentException.ThrowIfNullOrEmpty(usageEvent.RequestId);

        // Client-controlled text (the requested model on model_not_found, say) is cut before it is journaled,
        // committed or used as a rollup key.
        usageEvent = StoredText.Bound(usageEvent);
        var line = Serialize(usageEvent);
        lock (_appendLock)
        {
            var seq = ++_lastSeq;
            var segment = TryAppendLocked(line.Span);
            var entry = new LedgerEntry(seq, segment, usageEvent);
            if (_queue.Writer.TryWrite(entry))
            {
                if (_queue.Reader.Count >= _options.LedgerBatchSize)
                {
                    Wake(); // a full batch need not wait for the flush interval
                }

                return;
            }

            // Queue full: never block the request. The journal line is the durable copy; without one, keep it in memory.
            if (segment is null)
            {
                _unjournaled.Enqueue(entry);
            }

            if (_replayFromSeq > seq)
            {
                _replayFromSeq = seq;
            }

            _overflowed++;
        }
    }

    public Task FlushAsync(CancellationToken cancellationToken)
    {
        long target;
        lock (_appendLock)
        {
            target = _lastSeq;
        }

        if (Volatile.Read(ref _committedThrough) >= target)
        {
            return Task.CompletedTask;
        }

        var waiter = new FlushWaiter(target, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_flushLock)
        {
            _flushWaiters.Add(waiter);
            _pendingFlushes++;
        }

        CompleteFlushWaiters();
        Wake();
        return waiter.Completion.Task.WaitAsync(cancellationToken);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_appendLock)
        {
            // Allocate and map the first segment now, so the first request does not pay for it.
            TryOpenActiveLocked();
        }

        _writerTask ??= Task.Run(() => RunWriterAsync(_hardStop.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_writerTask is null)
        {
            return;
        }

        _stopping = true;
        Wake();
        try
        {
            await _writerTask.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutdown deadline: what is left stays in the journal and is replayed on the next start.
            await _hardStop.CancelAsync();
            await _writerTask.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        lock (_appendLock)
        {
            SealActiveLocked(); // cut the pre-sized file to what it holds (nothing, once drained)
        }

        var left = SpoolDepth;
        if (left > 0)
        {
            LogStoppedWithSpool(_logger, left);
        }
    }

    public void Dispose()
    {
        // Not a flush (StopAsync is): whatever is uncommitted stays in the journal for the next start.
        _hardStop.Cancel();
        CloseFiles(seal: true);
    }

    /// <summary>
    /// Test hook that does what <c>kill -9</c> does to this instance: no flush, the writer stops where it is, and every
    /// file handle (including the process lock) is closed, so a new instance can take over the same files.
    /// </summary>
    internal void Abandon()
    {
        var left = SpoolDepth;
        _hardStop.Cancel();
        CloseFiles(seal: false); // a killed process leaves the active segment pre-sized, with its zero tail
        LogAbandoned(_logger, left);
    }

    private void CloseFiles(bool seal)
    {
        lock (_appendLock)
        {
            if (seal)
            {
                _active?.Seal();
            }

            _active?.Close();
            _active = null;
            foreach (var segment in _sealed)
            {
                segment.Close();
            }

            _processLock.Dispose();
        }
    }

    private static SafeFileHandle AcquireProcessLock(string journalPath)
    {
        var path = journalPath + ".lock";
        try
        {
            // FileShare.None is an exclusive advisory lock (flock on Unix); the OS drops it when the process dies.
            return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException(
                $"The usage ledger journal '{journalPath}' is in use by another gateway process. Give each process its own Storage:DataDirectory.", ex);
        }
    }

    private static ReadOnlyMemory<byte> Serialize(UsageEvent usageEvent)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(2048);
        buffer.ResetWrittenCount();
        var writer = t_jsonWriter ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        JsonSerializer.Serialize(writer, usageEvent, LedgerJsonContext.Default.UsageEvent);
        buffer.Write("\n"u8);
        return buffer.WrittenMemory;
    }

    private JournalSegment? TryAppendLocked(ReadOnlySpan<byte> line)
    {
        try
        {
            if (_active is { } full && !full.HasRoom(line.Length))
            {
                SealActiveLocked();
            }

            var segment = _active ??= OpenSegmentLocked(line.Length);
            segment.Append(line);

            if (_journalFailing)
            {
                _journalFailing = false;
                LogJournalRecovered(_logger, _journalPath);
            }

            return segment;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Disk full or read-only: the event still goes to the queue (or memory) and is never dropped silently.
            if (!_journalFailing)
            {
                _journalFailing = true;
                LogJournalWriteFailed(_logger, ex, _journalPath);
            }

            return null;
        }
    }

    private void TryOpenActiveLocked()
    {
        try
        {
            _active ??= OpenSegmentLocked(0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Record tries again (and reports a failing journal) when it needs the segment.
        }
    }

    private JournalSegment OpenSegmentLocked(int lineLength)
    {
        // Pre-sized; a line longer than a segment gets a segment of its own size.
        var segment = JournalSegment.CreateNew(_journalPath, _nextSegmentId, Math.Max(_options.LedgerJournalSegmentBytes, lineLength));
        _nextSegmentId++;
        return segment;
    }

    private void SealActiveLocked()
    {
        if (_active is null)
        {
            return;
        }

        _active.Seal();
        _sealed.Add(_active);
        _active = null; // the next Record opens a fresh segment
    }

    private async Task RunWriterAsync(CancellationToken hardStop)
    {
        while (!hardStop.IsCancellationRequested)
        {
            try
            {
                await WriteLoopAsync(hardStop);
                return;
            }
            catch (Exception) when (hardStop.IsCancellationRequested)
            {
                // Hard stop: everything not committed is still in the journal.
                return;
            }
            catch (Exception ex)
            {
                // A bug, not a store fault (those are retried inside). Re-read the journal so nothing in hand is lost.
                LogWriterFaulted(_logger, ex);
                lock (_appendLock)
                {
                    _replayFromSeq = Math.Min(_replayFromSeq, Volatile.Read(ref _committedThrough) + 1);
                }

                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, hardStop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task WriteLoopAsync(CancellationToken hardStop)
    {
        var batch = new List<LedgerEntry>(_options.LedgerBatchSize);
        var events = new List<UsageEvent>(_options.LedgerBatchSize);
        while (true)
        {
            hardStop.ThrowIfCancellationRequested();
            if (Volatile.Read(ref _replayFromSeq) != long.MaxValue || !_unjournaled.IsEmpty)
            {
                await ReplayAsync(hardStop);
                continue;
            }

            if (!FillBatch(batch))
            {
                if (CaughtUp() && _stopping)
                {
                    return;
                }

                await WaitForWorkAsync(null, hardStop);
                continue;
            }

            // Give a partial batch up to the flush interval to fill, unless someone is waiting for it.
            var started = _time.GetTimestamp();
            while (batch.Count < _options.LedgerBatchSize && !ShouldNotWait())
            {
                var remaining = _options.LedgerFlushInterval - _time.GetElapsedTime(started);
                if (remaining <= TimeSpan.Zero)
                {
                    break;
                }

                await WaitForWorkAsync(remaining, hardStop);
                if (!FillBatch(batch))
                {
                    break;
                }
            }

            await CommitQueuedAsync(batch, events, hardStop);
            batch.Clear();
        }
    }

    private bool FillBatch(List<LedgerEntry> batch)
    {
        var added = false;
        while (batch.Count < _options.LedgerBatchSize && _queue.Reader.TryRead(out var entry))
        {
            batch.Add(entry);
            added = true;
        }

        return added;
    }

    private async Task CommitQueuedAsync(List<LedgerEntry> batch, List<UsageEvent> events, CancellationToken hardStop)
    {
        events.Clear();
        foreach (var entry in batch)
        {
            // Entries whose segment is being (or was) replayed are committed by the replay.
            if (entry.Segment is not { Replaying: true })
            {
                events.Add(entry.Event);
            }
        }

        if (events.Count > 0)
        {
            await WriteWithRetryAsync(events, hardStop);
        }

        foreach (var entry in batch)
        {
            if (entry.Segment is { Replaying: false } segment)
            {
                segment.MarkCommitted(1);
            }
        }

        var maxSeq = batch[^1].Seq;
        if (Volatile.Read(ref _replayFromSeq) > maxSeq)
        {
            AdvanceCommitted(maxSeq);
        }

        DeleteCommittedSegments();
    }

    private async Task ReplayAsync(CancellationToken hardStop)
    {
        List<JournalSegment> segments;
        long sealedThrough;
        lock (_appendLock)
        {
            SealActiveLocked();
            sealedThrough = _lastSeq;
            _replayFromSeq = long.MaxValue;
            segments = [.. _sealed];
            foreach (var segment in segments)
            {
                segment.Replaying = true;
                segment.ResetCommitted();
            }
        }

        var events = new List<UsageEvent>(_options.LedgerBatchSize);
        while (_unjournaled.TryPeek(out _))
        {
            events.Clear();
            var taken = new List<LedgerEntry>();
            while (events.Count < _options.LedgerBatchSize && _unjournaled.TryDequeue(out var entry))
            {
                taken.Add(entry);
                events.Add(entry.Event);
            }

            try
            {
                await WriteWithRetryAsync(events, hardStop);
            }
            catch (OperationCanceledException)
            {
                // Keep them for whoever runs next in this process (Record after shutdown is not expected).
                foreach (var entry in taken)
                {
                    _unjournaled.Enqueue(entry);
                }

                throw;
            }
        }

        long replayed = 0;
        foreach (var segment in segments)
        {
            replayed += await ReplaySegmentAsync(segment, events, hardStop);
            lock (_appendLock)
            {
                _sealed.Remove(segment);
            }

            try
            {
                segment.Delete();
            }
            catch (IOException ex)
            {
                // Harmless: a later start replays it again and INSERT OR IGNORE skips every line.
                LogSegmentDeleteFailed(_logger, ex, segment.FilePath);
            }
        }

        if (segments.Count > 0)
        {
            LogReplayed(_logger, replayed, segments.Count);
        }

        AdvanceCommitted(sealedThrough);
    }

    private async Task<long> ReplaySegmentAsync(JournalSegment segment, List<UsageEvent> events, CancellationToken hardStop)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(segment.FilePath, hardStop);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }

        long replayed = 0;
        var lineNumber = 0;
        ReadOnlyMemory<byte> remaining = bytes;
        events.Clear();
        while (JournalSegment.TryReadLine(ref remaining, out var line))
        {
            lineNumber++;
            var usageEvent = TryParse(line.Span);
            if (usageEvent is null)
            {
                // Only a line torn by a crash during its own write can be unreadable; that request was never acknowledged.
                LogUnreadableLine(_logger, segment.FilePath, lineNumber);
                continue;
            }

            events.Add(usageEvent);
            if (events.Count == _options.LedgerBatchSize)
            {
                await WriteWithRetryAsync(events, hardStop);
                segment.MarkCommitted(events.Count);
                replayed += events.Count;
                events.Clear();
            }
        }

        if (events.Count > 0)
        {
            await WriteWithRetryAsync(events, hardStop);
            segment.MarkCommitted(events.Count);
            replayed += events.Count;
            events.Clear();
        }

        return replayed;
    }

    private static UsageEvent? TryParse(ReadOnlySpan<byte> line)
    {
        try
        {
            var usageEvent = JsonSerializer.Deserialize(line, LedgerJsonContext.Default.UsageEvent);
            return string.IsNullOrEmpty(usageEvent?.RequestId) ? null : StoredText.Bound(usageEvent); // journals written before the bound
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task WriteWithRetryAsync(List<UsageEvent> events, CancellationToken hardStop)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                await _store.WriteBatchAsync(events, hardStop);
                if (failures > 0)
                {
                    LogStoreRecovered(_logger, failures);
                }

                return;
            }
            catch (Exception ex) when (!hardStop.IsCancellationRequested)
            {
                failures++;
                var delay = RetryDelay(failures);
                LogStoreWriteFailed(_logger, ex, events.Count, failures, delay.TotalMilliseconds);
                await Task.Delay(delay, _time, hardStop);
            }
        }
    }

    private TimeSpan RetryDelay(int failures)
    {
        var max = _options.LedgerMaxRetryDelay;
        var exponent = Math.Min(failures - 1, 20);
        var delay = BaseRetryDelay * Math.Pow(2, exponent);
        return delay < max ? delay : max;
    }

    private void AdvanceCommitted(long seq)
    {
        if (seq > Volatile.Read(ref _committedThrough))
        {
            Volatile.Write(ref _committedThrough, seq);
        }

        if (seq >= _recoveryTarget && !_recovered.Task.IsCompleted)
        {
            // The leftover lines took sequence numbers 1.._recoveryTarget, so they are all committed now.
            _recovered.TrySetResult();
            LogRecovered(_logger, _recoveryTarget);
        }

        CompleteFlushWaiters();
    }

    /// <summary>Called when the queue is empty: truncates the journal if everything is committed.</summary>
    private bool CaughtUp()
    {
        bool caughtUp;
        JournalSegment? retired = null;
        lock (_appendLock)
        {
            caughtUp = _replayFromSeq == long.MaxValue && _unjournaled.IsEmpty && Volatile.Read(ref _committedThrough) >= _lastSeq;
            if (caughtUp && _active is { Length: > 0 } active)
            {
                if (active.Length <= MaxZeroedInPlace)
                {
                    active.Truncate(); // zeroes what was written: no system call, the file is reused
                }
                else
                {
                    // Zeroing this much would hold the append lock for milliseconds: drop the file (outside the lock)
                    // and let the next Record start a fresh one.
                    retired = active;
                    _active = null;
                }
            }
        }

        if (retired is not null)
        {
            try
            {
                retired.Delete();
            }
            catch (IOException ex)
            {
                LogTruncateFailed(_logger, ex, retired.FilePath);
            }

            lock (_appendLock)
            {
                TryOpenActiveLocked(); // the replacement is allocated here, not by the next request
            }
        }

        if (!caughtUp && _stopping && Volatile.Read(ref _replayFromSeq) == long.MaxValue)
        {
            // Defensive: if the watermark cannot be explained by the queue, re-read the journal before exiting.
            lock (_appendLock)
            {
                if (_queue.Reader.Count == 0 && Volatile.Read(ref _committedThrough) < _lastSeq)
                {
                    _replayFromSeq = Volatile.Read(ref _committedThrough) + 1;
                }
            }
        }

        CompleteFlushWaiters();
        return caughtUp;
    }

    private void DeleteCommittedSegments()
    {
        lock (_appendLock)
        {
            for (var i = _sealed.Count - 1; i >= 0; i--)
            {
                var segment = _sealed[i];
                if (!segment.Replaying && segment.Committed >= segment.Appended)
                {
                    _sealed.RemoveAt(i);
                    try
                    {
                        segment.Delete();
                    }
                    catch (IOException ex)
                    {
                        LogSegmentDeleteFailed(_logger, ex, segment.FilePath);
                    }
                }
            }
        }
    }

    private void CompleteFlushWaiters()
    {
        var committed = Volatile.Read(ref _committedThrough);
        lock (_flushLock)
        {
            for (var i = _flushWaiters.Count - 1; i >= 0; i--)
            {
                if (_flushWaiters[i].Target <= committed)
                {
                    _flushWaiters[i].Completion.TrySetResult();
                    _flushWaiters.RemoveAt(i);
                    _pendingFlushes--;
                }
            }
        }
    }

    private bool ShouldNotWait() =>
        _stopping || Volatile.Read(ref _pendingFlushes) > 0 || Volatile.Read(ref _replayFromSeq) != long.MaxValue;

    private async Task WaitForWorkAsync(TimeSpan? timeout, CancellationToken hardStop)
    {
        if (_queue.Reader.TryPeek(out _))
        {
            return;
        }

        using var cts = timeout is { } t ? new CancellationTokenSource(t, _time) : new CancellationTokenSource();
        using var registration = hardStop.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), cts);
        Interlocked.Exchange(ref _waitCts, cts);
        try
        {
            if (!ShouldNotWait())
            {
                if (timeout is null)
                {
                    await _queue.Reader.WaitToReadAsync(cts.Token); // idle: the first event wakes the writer
                }
                else
                {
                    // Filling a batch: sleep until the flush interval ends or Wake() (full batch, flush, stop) rather
                    // than waking for every event recorded meanwhile (a thread hop per request under load).
                    await Task.Delay(Timeout.InfiniteTimeSpan, _time, cts.Token);
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            // Timeout or wake-up.
        }
        finally
        {
            Interlocked.CompareExchange(ref _waitCts, null, cts);
        }

        hardStop.ThrowIfCancellationRequested();
    }

    private void Wake()
    {
        try
        {
            Volatile.Read(ref _waitCts)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The writer finished that wait already.
        }
    }

    [LoggerMessage(4010, LogLevel.Warning, "Usage ledger journal holds {Events} events in {Segments} segment(s) from an earlier run; replaying them")]
    private static partial void LogRecovering(ILogger logger, long events, int segments);

    [LoggerMessage(4011, LogLevel.Information, "Usage ledger replayed {Events} journaled events from {Segments} segment(s)")]
    private static partial void LogReplayed(ILogger logger, long events, int segments);

    [LoggerMessage(4022, LogLevel.Information, "Usage ledger recovery complete: the {Events} journaled events from the earlier run are committed; budgets may now be seeded")]
    private static partial void LogRecovered(ILogger logger, long events);

    [LoggerMessage(4012, LogLevel.Warning, "Usage ledger store write of {Events} events failed (attempt {Attempt}); retrying in {DelayMs} ms; events stay in the journal")]
    private static partial void LogStoreWriteFailed(ILogger logger, Exception exception, int events, int attempt, double delayMs);

    [LoggerMessage(4013, LogLevel.Information, "Usage ledger store is writable again after {Failures} failed attempt(s)")]
    private static partial void LogStoreRecovered(ILogger logger, int failures);

    [LoggerMessage(4014, LogLevel.Error, "Usage ledger cannot write its journal {JournalPath}; events are kept in memory only until the store accepts them")]
    private static partial void LogJournalWriteFailed(ILogger logger, Exception exception, string journalPath);

    [LoggerMessage(4015, LogLevel.Information, "Usage ledger journal {JournalPath} is writable again")]
    private static partial void LogJournalRecovered(ILogger logger, string journalPath);

    [LoggerMessage(4016, LogLevel.Warning, "Usage ledger journal {SegmentPath} line {Line} is unreadable (torn by a crash during its write); skipped")]
    private static partial void LogUnreadableLine(ILogger logger, string segmentPath, int line);

    [LoggerMessage(4017, LogLevel.Warning, "Usage ledger could not delete committed journal segment {SegmentPath}")]
    private static partial void LogSegmentDeleteFailed(ILogger logger, Exception exception, string segmentPath);

    [LoggerMessage(4018, LogLevel.Warning, "Usage ledger could not truncate committed journal {SegmentPath}")]
    private static partial void LogTruncateFailed(ILogger logger, Exception exception, string segmentPath);

    [LoggerMessage(4019, LogLevel.Warning, "Usage ledger stopped with {Events} events not yet committed; they stay in the journal and are replayed on the next start")]
    private static partial void LogStoppedWithSpool(ILogger logger, long events);

    [LoggerMessage(4020, LogLevel.Error, "Usage ledger writer failed unexpectedly; restarting it and re-reading the journal")]
    private static partial void LogWriterFaulted(ILogger logger, Exception exception);

    [LoggerMessage(4021, LogLevel.Information, "Usage ledger abandoned without flushing (crash simulation); {Events} events left in the journal")]
    private static partial void LogAbandoned(ILogger logger, long events);

    private readonly record struct LedgerEntry(long Seq, JournalSegment? Segment, UsageEvent Event);

    private sealed record FlushWaiter(long Target, TaskCompletionSource Completion);
}
