using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Headers;

namespace TokenGateway.LoadHarness;

/// <summary>
/// Memory a proxy holds for K open streams at one point of their life: live GC heap after an induced full GC, and RSS,
/// each taken with no stream open (before) and with the streams mid-flight (during).
/// </summary>
internal sealed record StreamMemorySample(int OutputTokens, int Streams, int OpenAtSample, double EventsPerStreamAtSample,
    double BytesPerStreamAtSample, double SecondsToSample, long? LiveHeapBeforeBytes, long? LiveHeapDuringBytes, long? RssBeforeBytes,
    long? RssDuringBytes, string? Note)
{
    public double? LiveHeapPerStreamBytes =>
        OpenAtSample > 0 && LiveHeapDuringBytes is { } during && LiveHeapBeforeBytes is { } before ? (during - before) / (double)OpenAtSample : null;

    public double? RssPerStreamBytes =>
        OpenAtSample > 0 && RssDuringBytes is { } during && RssBeforeBytes is { } before ? (during - before) / (double)OpenAtSample : null;
}

/// <summary>Short vs long streams through one proxy, and whether the memory per stream grew with the stream's length.</summary>
internal sealed record StreamMemoryResult(string Pacing, StreamMemorySample Short, StreamMemorySample Long)
{
    /// <summary>Wall time of the whole phase (both runs, four induced GCs).</summary>
    public double PhaseSeconds { get; init; }

    /// <summary>A stream is "not growing" when its extra live heap at the long sample stays under this share of the extra bytes it carried.</summary>
    public const double GrowthShareLimit = 0.10;

    /// <summary>Growth below this is measurement noise (a few hundred KB of live heap over K streams), whatever the share.</summary>
    public const double NoiseFloorBytes = 32 * 1024;

    /// <summary>Long per-stream live heap ÷ short per-stream live heap.</summary>
    public double? GrowthRatio => Long.LiveHeapPerStreamBytes is { } l && Short.LiveHeapPerStreamBytes is { } s && s > 0 ? l / s : null;

    /// <summary>Extra live heap per stream at the long sample over the short one.</summary>
    public double? GrowthPerStreamBytes => Long.LiveHeapPerStreamBytes - Short.LiveHeapPerStreamBytes;

    /// <summary>Extra bytes each long stream had carried at its sample over a short one at its own.</summary>
    public double ExtraBytesStreamed => Long.BytesPerStreamAtSample - Short.BytesPerStreamAtSample;

    /// <summary>The most a stream may grow and still count as flat: <see cref="GrowthShareLimit"/> of the extra bytes, at least the noise floor.</summary>
    public double GrowthLimitBytes => Math.Max(GrowthShareLimit * ExtraBytesStreamed, NoiseFloorBytes);

    /// <summary>
    /// Met when the growth per stream stays under <see cref="GrowthLimitBytes"/> (a proxy that buffered the stream would
    /// hold all the extra bytes); null when a sample had fewer than half its streams still open.
    /// </summary>
    public bool? Met => GrowthPerStreamBytes is { } growth && ExtraBytesStreamed > 0
        && Short.OpenAtSample * 2 >= Short.Streams && Long.OpenAtSample * 2 >= Long.Streams
        ? growth <= GrowthLimitBytes
        : null;
}

/// <summary>Runs the stream memory phase against one .NET proxy target; bounded in streams and time.</summary>
internal sealed class StreamMemoryProbe(HarnessOptions options)
{
    private static readonly MediaTypeHeaderValue _json = new("application/json");
    private static readonly TimeSpan _gcTimeout = TimeSpan.FromSeconds(10);

    public async Task<StreamMemoryResult> MeasureAsync(Target target)
    {
        var pacing = options.StreamPacing;
        var started = Stopwatch.GetTimestamp();
        // The first runtime-provider session leaves state behind in the target (the managed side of the provider):
        // take that one before any baseline.
        await RuntimeDiagnostics.LiveHeapAfterFullGcAsync(target.Process.Id, _gcTimeout);
        await PrimeAsync(target, pacing);
        var shortRun = await SampleAsync(target, Payloads.PacedStream(options.ShortStreamTokens, pacing), fraction: 0.3, options.ShortStreamCap, finish: true);
        var longRun = await SampleAsync(target, Payloads.PacedStream(options.LongStreamTokens, pacing), fraction: 0.75, options.LongStreamCap, finish: false);
        return new StreamMemoryResult($"{options.StreamCount} streams, one event per token, latency={pacing.TotalMilliseconds:0}ms after each", shortRun, longRun)
        {
            PhaseSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
        };
    }

    /// <summary>
    /// Runs K short streams at once to completion so the proxy's upstream pool and buffer pools already hold what K concurrent streams need at both baselines
    /// (otherwise the first sample would charge the new pooled connections to its streams).
    /// </summary>
    private async Task PrimeAsync(Target target, TimeSpan pacing)
    {
        var count = options.StreamCount;
        var payload = Payloads.PacedStream(40, pacing);
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = count, UseProxy = false })
        {
            BaseAddress = target.BaseAddress,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var events = new long[count];
        var bytes = new long[count];
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => ReadStreamAsync(client, target, payload, i, events, bytes, cancel.Token)));
    }

    private async Task<StreamMemorySample> SampleAsync(Target target, Payload payload, double fraction, TimeSpan cap, bool finish)
    {
        var count = options.StreamCount;
        var tokens = int.Parse(payload.Name["stream-".Length..], System.Globalization.CultureInfo.InvariantCulture);

        // Let the previous phase's connections and buffers go before the baseline.
        await Task.Delay(200);
        var heapBefore = await RuntimeDiagnostics.LiveHeapAfterFullGcAsync(target.Process.Id, _gcTimeout);
        var rssBefore = target.Process.RssBytes();

        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = count, UseProxy = false })
        {
            BaseAddress = target.BaseAddress,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        using var cancel = new CancellationTokenSource();
        var events = new long[count];
        var bytes = new long[count];
        var done = new int[count];
        string? firstError = null;
        var started = Stopwatch.GetTimestamp();
        var streams = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            var error = await ReadStreamAsync(client, target, payload, i, events, bytes, cancel.Token);
            if (error is not null)
            {
                Interlocked.CompareExchange(ref firstError, error, null);
            }

            Volatile.Write(ref done[i], 1);
        })).ToArray();

        // Sample once three quarters of the streams have passed the fraction of their events (a late starter must not
        // hold the sample back until the others have ended), or at the cap.
        var goal = (long)(fraction * tokens);
        var quorum = (count * 3 + 3) / 4;
        var deadline = started + (long)(cap.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && Enumerable.Range(0, count).Count(i => Volatile.Read(ref done[i]) == 1 || Interlocked.Read(ref events[i]) >= goal) < quorum)
        {
            await Task.Delay(10);
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var openBefore = Enumerable.Range(0, count).Count(i => Volatile.Read(ref done[i]) == 0);
        var streamedEvents = Enumerable.Range(0, count).Average(i => Interlocked.Read(ref events[i]));
        var streamedBytes = Enumerable.Range(0, count).Average(i => Interlocked.Read(ref bytes[i]));
        var heapDuring = await RuntimeDiagnostics.LiveHeapAfterFullGcAsync(target.Process.Id, _gcTimeout);
        var rssDuring = target.Process.RssBytes();
        var open = Math.Min(openBefore, Enumerable.Range(0, count).Count(i => Volatile.Read(ref done[i]) == 0));

        // Short streams run to their end (bounded by the cap), so the long run's baseline follows streams that ended
        // normally, as the short run's follows the priming streams; long streams are cut.
        if (finish)
        {
            await Task.WhenAny(Task.WhenAll(streams), Task.Delay(cap));
        }

        await cancel.CancelAsync();
        await Task.WhenAll(streams).WaitAsync(TimeSpan.FromSeconds(10));

        string? note = null;
        if (open < count)
        {
            note = $"{count - open} of {count} streams had ended before the sample" + (firstError is null ? "" : $" (first error: {firstError})");
        }
        else if (Stopwatch.GetElapsedTime(started) > cap)
        {
            note = $"sampled at the {cap.TotalSeconds:0} s cap, before every stream reached {goal} events";
        }

        if (heapBefore is null || heapDuring is null)
        {
            note = (note is null ? "" : note + "; ") + "live heap unavailable (no EventPipe answer)";
        }

        return new StreamMemorySample(tokens, count, open, streamedEvents, streamedBytes, seconds, heapBefore, heapDuring, rssBefore, rssDuring, note);
    }

    /// <summary>Reads one stream, counting SSE events (blank-line separators) and bytes; returns an error, or null when it ended cleanly or was cancelled.</summary>
    private static async Task<string?> ReadStreamAsync(HttpClient client, Target target, Payload payload, int index, long[] events, long[] bytes,
        CancellationToken cancel)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new ByteArrayContent(payload.Body) };
            request.Content.Headers.ContentType = _json;
            foreach (var (name, value) in target.Headers.Concat(payload.Headers))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            if (!response.IsSuccessStatusCode)
            {
                return $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancel)}";
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancel);
            var previous = (byte)0;
            int read;
            while ((read = await body.ReadAsync(buffer, cancel)) > 0)
            {
                var chunk = buffer.AsSpan(0, read);
                var separators = chunk.Count("\n\n"u8) + (previous == (byte)'\n' && chunk[0] == (byte)'\n' ? 1 : 0);
                previous = chunk[^1];
                Interlocked.Add(ref events[index], separators);
                Interlocked.Add(ref bytes[index], read);
            }

            return null;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            return e.GetType().Name + ": " + e.Message;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
