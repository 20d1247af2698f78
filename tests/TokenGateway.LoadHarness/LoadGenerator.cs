using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using HdrHistogram;

namespace TokenGateway.LoadHarness;

/// <summary>Where requests go: a base address, the headers that target needs, and the process whose CPU is charged.</summary>
internal sealed record Target(string Name, Uri BaseAddress, IReadOnlyDictionary<string, string> Headers, ChildProcess Process);

/// <summary>Open-loop latency (corrected for coordinated omission) of one target and payload, in microseconds.</summary>
internal sealed record OpenLoopResult(double RateRps, long Requests, long Errors, long? P50Us, long? P99Us, long? P999Us, long? MaxUs,
    double MeanDispatchLatenessUs, long? TtftP50Us, long? TtftP99Us, string? FirstError);

/// <summary>Closed-loop throughput at a fixed number of connections, and the target process's CPU per request.</summary>
internal sealed record ThroughputResult(int Connections, double Rps, long Requests, long Errors, double? CpuUsPerRequest, string? FirstError)
{
    /// <summary>Bytes the target process allocated per completed request (EventPipe <c>alloc-rate</c>); null for node or when unavailable.</summary>
    public double? AllocBytesPerRequest { get; init; }

    /// <summary>Seconds of whole counter intervals inside the measured window that <see cref="AllocBytesPerRequest"/> covers.</summary>
    public double? AllocWindowSeconds { get; init; }

    public string? AllocNote { get; init; }
}

/// <summary>
/// The one client used for every target. Open loop: requests are scheduled at fixed intended send times and each
/// latency is recorded from its intended time (so a stalled server is charged for the requests it delayed, as wrk2
/// does). Closed loop: N workers send back to back for a bounded time. Every phase is bounded in count and time.
/// </summary>
internal sealed class LoadGenerator(HarnessOptions options)
{
    private const long HighestTrackableUs = 120_000_000;
    private static readonly MediaTypeHeaderValue _json = new("application/json");

    public async Task<OpenLoopResult> OpenLoopAsync(Target target, Payload payload)
    {
        var rate = payload.BaseRate * options.RateScale;
        var warmup = (int)(rate * options.Warmup.TotalSeconds);
        var total = warmup + (int)(rate * options.Measure.TotalSeconds);
        var interval = Stopwatch.Frequency / rate;

        using var client = CreateClient(target, maxConnections: 256);
        var latency = new LongHistogram(HighestTrackableUs, 3);
        var ttft = new LongHistogram(HighestTrackableUs, 3);
        var gate = new object();
        long errors = 0;
        string? firstError = null;
        var tasks = new Task[total];
        double latenessTicks = 0;

        async Task OneAsync(long intended, bool record)
        {
            var outcome = await SendAsync(client, target, payload);
            var end = Stopwatch.GetTimestamp();
            if (!record)
            {
                return;
            }

            lock (gate)
            {
                if (outcome.Error is null)
                {
                    latency.RecordValue(ToMicros(end - intended));
                    if (payload.Stream)
                    {
                        ttft.RecordValue(ToMicros(outcome.FirstByte - intended));
                    }
                }
                else
                {
                    errors++;
                    firstError ??= outcome.Error;
                }
            }
        }

        // A dedicated thread keeps the schedule: sleep while far from the next send time, then yield-spin the last
        // millisecond (sched_yield gives the core away whenever a server thread is runnable).
        var dispatcher = new Thread(() =>
        {
            var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 20;
            for (var i = 0; i < total; i++)
            {
                var intended = start + (long)(i * interval);
                WaitUntil(intended);
                latenessTicks += Stopwatch.GetTimestamp() - intended;
                var record = i >= warmup;
                tasks[i] = Task.Run(() => OneAsync(intended, record));
            }
        })
        { IsBackground = true, Name = "open-loop dispatcher" };
        dispatcher.Start();
        dispatcher.Join();
        await Task.WhenAll(tasks);

        var ok = latency.TotalCount;
        return new OpenLoopResult(rate, ok + errors, errors,
            Percentile(latency, 50), Percentile(latency, 99), Percentile(latency, 99.9), ok > 0 ? latency.GetMaxValue() : null,
            total > 0 ? latenessTicks / total * 1e6 / Stopwatch.Frequency : 0,
            payload.Stream ? Percentile(ttft, 50) : null,
            payload.Stream ? Percentile(ttft, 99) : null,
            firstError);
    }

    /// <summary>
    /// Latency at one connection: requests sent back to back (no concurrency, like <c>wrk -c1</c>) for
    /// <paramref name="measure"/> after <paramref name="warmup"/>; each latency from send to the end of the body.
    /// </summary>
    public async Task<(long? P50Us, long? P99Us, long Errors, string? FirstError)> SequentialAsync(
        Target target, Payload payload, TimeSpan warmup, TimeSpan measure)
    {
        using var client = CreateClient(target, maxConnections: 1);
        var latency = new LongHistogram(HighestTrackableUs, 3);
        var measureFrom = Stopwatch.GetTimestamp() + ToTicks(warmup);
        var measureTo = measureFrom + ToTicks(measure);
        long errors = 0;
        string? firstError = null;
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            if (start >= measureTo)
            {
                break;
            }

            var outcome = await SendAsync(client, target, payload);
            if (start < measureFrom)
            {
                continue;
            }

            if (outcome.Error is null)
            {
                latency.RecordValue(ToMicros(Stopwatch.GetTimestamp() - start));
            }
            else
            {
                errors++;
                firstError ??= outcome.Error;
            }
        }

        return (Percentile(latency, 50), Percentile(latency, 99), errors, firstError);
    }

    /// <summary>Warms a freshly started target (JIT, connection pools, caches) with a short closed loop; nothing is recorded.</summary>
    public Task WarmAsync(Target target, Payload payload) =>
        ClosedLoopAsync(target, payload, connections: 8, TimeSpan.Zero, options.TargetWarmup);

    /// <summary>
    /// Maximum throughput at <see cref="HarnessOptions.Connections"/>; for a .NET target also the bytes it allocated per
    /// request, from its <c>alloc-rate</c> counter over the whole counter intervals inside the measured window.
    /// </summary>
    public async Task<ThroughputResult> ClosedLoopAsync(Target target, Payload payload)
    {
        if (!target.Process.IsDotNet)
        {
            return await ClosedLoopAsync(target, payload, options.Connections, options.ThroughputWarmup, options.ThroughputMeasure);
        }

        var monitor = RuntimeDiagnostics.TryMonitorAllocations(target.Process.Id, out var error);
        if (monitor is null)
        {
            return await ClosedLoopAsync(target, payload, options.Connections, options.ThroughputWarmup, options.ThroughputMeasure) with { AllocNote = error };
        }

        await using (monitor)
        {
            return await ClosedLoopAsync(target, payload, options.Connections, options.ThroughputWarmup, options.ThroughputMeasure, monitor);
        }
    }

    private async Task<ThroughputResult> ClosedLoopAsync(Target target, Payload payload, int connections, TimeSpan warmup, TimeSpan measure,
        AllocationMonitor? monitor = null)
    {
        using var client = CreateClient(target, connections);
        var begin = Stopwatch.GetTimestamp();
        var measureFrom = begin + ToTicks(warmup);
        var measureTo = measureFrom + ToTicks(measure);
        long completed = 0;
        long errors = 0;
        string? firstError = null;

        // Successful completions per millisecond since begin, so requests can be counted over any counter interval.
        var ticksPerMs = Stopwatch.Frequency / 1000;
        var perMs = new long[(int)((measureTo - begin) / ticksPerMs) + 2];
        long CompletedBetween(long from, long to)
        {
            var first = Math.Clamp((from - begin) / ticksPerMs, 0, perMs.Length);
            var last = Math.Clamp((to - begin) / ticksPerMs, 0, perMs.Length);
            long sum = 0;
            for (var i = first; i < last; i++)
            {
                sum += Interlocked.Read(ref perMs[i]);
            }

            return sum;
        }

        async Task WorkerAsync()
        {
            while (Stopwatch.GetTimestamp() < measureTo)
            {
                var outcome = await SendAsync(client, target, payload);
                var end = Stopwatch.GetTimestamp();
                if (outcome.Error is null && end < measureTo)
                {
                    Interlocked.Increment(ref perMs[(end - begin) / ticksPerMs]);
                }

                if (end < measureFrom || end > measureTo)
                {
                    continue;
                }

                if (outcome.Error is null)
                {
                    Interlocked.Increment(ref completed);
                }
                else
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, outcome.Error, null);
                }
            }
        }

        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(WorkerAsync)).ToArray();
        await Task.Delay(warmup);
        var cpuBefore = target.Process.CpuTime();
        var windowStart = Stopwatch.GetTimestamp();
        await Task.Delay(measure);
        var cpuAfter = target.Process.CpuTime();
        var window = (Stopwatch.GetTimestamp() - windowStart) / (double)Stopwatch.Frequency;
        await Task.WhenAll(workers);

        var done = Interlocked.Read(ref completed);
        var result = new ThroughputResult(connections, done / window, done, Interlocked.Read(ref errors),
            done > 0 ? (cpuAfter - cpuBefore).TotalMicroseconds / done : null, firstError);
        if (monitor is null)
        {
            return result;
        }

        await monitor.WaitPastAsync(measureTo, TimeSpan.FromSeconds(3));
        var (perRequest, seconds) = monitor.BytesPerRequest(measureFrom, measureTo, CompletedBetween);
        return result with
        {
            AllocBytesPerRequest = perRequest,
            AllocWindowSeconds = seconds,
            AllocNote = perRequest is null ? monitor.Problem ?? "no whole counter interval inside the measured window" : null,
        };
    }

    private HttpClient CreateClient(Target target, int maxConnections)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
        };
        return new HttpClient(handler) { BaseAddress = target.BaseAddress, Timeout = options.RequestTimeout };
    }

    private readonly record struct Outcome(long FirstByte, string? Error);

    private static async Task<Outcome> SendAsync(HttpClient client, Target target, Payload payload)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new ByteArrayContent(payload.NextBody()) };
            request.Content.Headers.ContentType = _json;
            foreach (var (name, value) in target.Headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            foreach (var (name, value) in payload.Headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            var read = await body.ReadAsync(buffer);
            var firstByte = Stopwatch.GetTimestamp();
            var total = 0L;
            var tail = new byte[16];
            var tailLength = 0;
            while (read > 0)
            {
                total += read;
                tailLength = KeepTail(tail, tailLength, buffer.AsSpan(0, read));
                read = await body.ReadAsync(buffer);
            }

            // An SSE stream ends with "data: [DONE]": look in its last bytes (the marker may straddle two reads).
            var sawDone = payload.Stream && tail.AsSpan(0, tailLength).IndexOf("[DONE]"u8) >= 0;

            if (!response.IsSuccessStatusCode)
            {
                return new Outcome(firstByte, $"HTTP {(int)response.StatusCode}");
            }

            if (total == 0 || (payload.Stream && !sawDone))
            {
                return new Outcome(firstByte, payload.Stream ? "stream ended without [DONE]" : "empty body");
            }

            return new Outcome(firstByte, null);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return new Outcome(0, e.GetType().Name + ": " + e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static int KeepTail(byte[] tail, int tailLength, ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length >= tail.Length)
        {
            chunk[^tail.Length..].CopyTo(tail);
            return tail.Length;
        }

        var keep = Math.Min(tailLength, tail.Length - chunk.Length);
        tail.AsSpan(tailLength - keep, keep).CopyTo(tail);
        chunk.CopyTo(tail.AsSpan(keep));
        return keep + chunk.Length;
    }

    private static void WaitUntil(long timestamp)
    {
        while (true)
        {
            var remaining = timestamp - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }

            if (remaining > Stopwatch.Frequency / 500)
            {
                Thread.Sleep((int)(remaining * 1000 / Stopwatch.Frequency) - 1);
            }
            else
            {
                Thread.Yield();
            }
        }
    }

    private static long? Percentile(LongHistogram histogram, double percentile) =>
        histogram.TotalCount > 0 ? histogram.GetValueAtPercentile(percentile) : null;

    private static long ToMicros(long ticks) => Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 0, HighestTrackableUs);

    private static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}
