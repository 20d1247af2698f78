using System.Diagnostics;
using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace TokenGateway.LoadHarness;

/// <summary>
/// Out-of-process runtime figures of a .NET child over its diagnostics IPC channel (EventPipe): the bytes it allocates
/// (the <c>System.Runtime</c> <c>alloc-rate</c> counter) and its live GC heap after a full collection the harness
/// induces (the runtime provider's GCHeapCollect keyword, as dotnet-gcdump does).
/// </summary>
internal static class RuntimeDiagnostics
{
    /// <summary>Counter interval: short enough that a 1 s smoke window holds several whole intervals.</summary>
    public const double CounterIntervalSeconds = 0.25;

    private const long GcHeapCollectKeyword = 0x800000;

    /// <summary>
    /// Forces a blocking full GC in <paramref name="pid"/> and returns the bytes that survived it (the sum of the
    /// promoted sizes of every generation, LOH and POH), or null when the process cannot be reached in time.
    /// </summary>
    public static async Task<long?> LiveHeapAfterFullGcAsync(int pid, TimeSpan timeout)
    {
        EventPipeSession session;
        try
        {
            var provider = new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational,
                (long)ClrTraceEventParser.Keywords.GC | GcHeapCollectKeyword);
            session = new DiagnosticsClient(pid).StartEventPipeSession(provider, requestRundown: false, circularBufferMB: 16);
        }
        catch (Exception e) when (e is ServerNotAvailableException or UnsupportedCommandException or ServerErrorException or IOException or TimeoutException)
        {
            return null;
        }

        using (session)
        {
            var live = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            var processing = Task.Run(() =>
            {
                using var source = new EventPipeEventSource(session.EventStream);
                var fullGcStarted = false;
                source.Clr.GCStart += gc => fullGcStarted |= gc.Depth == 2;
                source.Clr.GCHeapStats += stats =>
                {
                    if (fullGcStarted)
                    {
                        live.TrySetResult(stats.TotalPromotedSize0 + stats.TotalPromotedSize1 + stats.TotalPromotedSize2
                            + stats.TotalPromotedSize3 + stats.TotalPromotedSize4);
                    }
                };
                source.Process();
            });

            await Task.WhenAny(live.Task, Task.Delay(timeout));
            await StopAsync(session, processing);
            return live.Task.IsCompletedSuccessfully ? live.Task.Result : null;
        }
    }

    /// <summary>Starts collecting <c>alloc-rate</c> intervals of <paramref name="pid"/>; null (with the reason) when it cannot.</summary>
    public static AllocationMonitor? TryMonitorAllocations(int pid, out string? error)
    {
        try
        {
            var provider = new EventPipeProvider("System.Runtime", EventLevel.Informational, 0,
                new Dictionary<string, string> { ["EventCounterIntervalSec"] = CounterIntervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            var session = new DiagnosticsClient(pid).StartEventPipeSession(provider, requestRundown: false, circularBufferMB: 16);
            error = null;
            return new AllocationMonitor(session);
        }
        catch (Exception e) when (e is ServerNotAvailableException or UnsupportedCommandException or ServerErrorException or IOException or TimeoutException)
        {
            error = "EventPipe unavailable: " + e.Message;
            return null;
        }
    }

    internal static async Task StopAsync(EventPipeSession session, Task processing)
    {
        try
        {
            await session.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is ServerNotAvailableException or ServerErrorException or IOException or TimeoutException or EndOfStreamException)
        {
            // The process went away or the session already ended: the stream ends either way.
        }

        try
        {
            await processing.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or IOException or EndOfStreamException or ObjectDisposedException)
        {
            // A torn stream at the end of a session carries nothing the harness still needs.
        }
    }
}

/// <summary>One <c>alloc-rate</c> counter interval: the bytes allocated between two polls (Stopwatch ticks of the same monotonic clock).</summary>
internal readonly record struct AllocationInterval(long StartTicks, long EndTicks, double Bytes);

/// <summary>A live EventPipe session collecting a process's allocation counter intervals until disposed.</summary>
internal sealed class AllocationMonitor : IAsyncDisposable
{
    private readonly EventPipeSession _session;
    private readonly Task _processing;
    private readonly List<AllocationInterval> _intervals = [];
    private long _lastEndTicks;
    private volatile string? _problem;

    public AllocationMonitor(EventPipeSession session)
    {
        _session = session;
        _processing = Task.Run(() =>
        {
            using var source = new EventPipeEventSource(_session.EventStream);
            source.Dynamic.All += OnEvent;
            source.Process();
        });
    }

    /// <summary>Why no figure can be given (the child's event clock is not the harness's), or null.</summary>
    public string? Problem => _problem;

    /// <summary>Waits until an interval ending after <paramref name="ticks"/> has arrived (EventPipe delivers in blocks), or the timeout passes.</summary>
    public async Task WaitPastAsync(long ticks, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Interlocked.Read(ref _lastEndTicks) < ticks && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Bytes allocated per completed request over the counter intervals that lie wholly inside [from, to], with the
    /// requests counted over exactly those intervals; null when no whole interval fits or nothing completed.
    /// </summary>
    public (double? BytesPerRequest, double Seconds) BytesPerRequest(long from, long to, Func<long, long, long> completedBetween)
    {
        double bytes = 0;
        long requests = 0;
        long ticks = 0;
        lock (_intervals)
        {
            foreach (var interval in _intervals)
            {
                if (interval.StartTicks >= from && interval.EndTicks <= to)
                {
                    bytes += interval.Bytes;
                    requests += completedBetween(interval.StartTicks, interval.EndTicks);
                    ticks += interval.EndTicks - interval.StartTicks;
                }
            }
        }

        return (requests > 0 && _problem is null ? bytes / requests : null, ticks / (double)Stopwatch.Frequency);
    }

    public async ValueTask DisposeAsync()
    {
        await RuntimeDiagnostics.StopAsync(_session, _processing);
        _session.Dispose();
    }

    private void OnEvent(TraceEvent data)
    {
        if (data.EventName != "EventCounters" || data.PayloadValue(0) is not IDictionary<string, object> outer
            || outer.TryGetValue("Payload", out var inner) is false || inner is not IDictionary<string, object> payload
            || !payload.TryGetValue("Name", out var name) || !Equals(name, "alloc-rate"))
        {
            return;
        }

        var increment = Convert.ToDouble(payload["Increment"], System.Globalization.CultureInfo.InvariantCulture);
        var seconds = Convert.ToDouble(payload["IntervalSec"], System.Globalization.CultureInfo.InvariantCulture);

        // EventPipe time stamps are the child's QueryPerformanceCounter: on Linux CLOCK_MONOTONIC in ns, the clock the
        // harness's Stopwatch reads, so intervals and request completions share one time base.
#pragma warning disable CS0618 // Discouraged, not obsolete: the raw stamp is what lines up with Stopwatch.
        var end = data.TimeStampQPC;
#pragma warning restore CS0618
        var skew = Stopwatch.GetTimestamp() - end;
        if (skew < 0 || skew > 30 * Stopwatch.Frequency)
        {
            _problem = $"counter time stamps are not on the harness clock (skew {skew / (double)Stopwatch.Frequency:0.###} s)";
            return;
        }

        var start = end - (long)(seconds * Stopwatch.Frequency);
        lock (_intervals)
        {
            _intervals.Add(new AllocationInterval(start, end, increment));
        }

        Interlocked.Exchange(ref _lastEndTicks, end);
    }
}
