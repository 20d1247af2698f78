using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Optimization;
using TokenGateway.Proxy;
using TokenGateway.Telemetry;

namespace TokenGateway.Insights;

/// <summary>
/// Samples answered requests for the per-team recommendations: <see cref="Offer"/> runs when a request completes and
/// only draws a random number, copies the sampled request's body and tries a bounded channel (full → the sample is
/// dropped and counted); a background worker evaluates each sample in the shadow (<see cref="ShadowEvaluator"/>) and
/// measures the CPU time it spends. The live request is never changed or delayed by the evaluation.
/// </summary>
internal sealed partial class InsightsSampler : BackgroundService
{
    private readonly Channel<ShadowRequest> _queue;
    private readonly ShadowEvaluator _evaluator;
    private readonly InsightsStore _store;
    private readonly IOptionsMonitor<InsightsOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<InsightsSampler> _logger;
    private readonly Counter<long> _samples;
    private readonly Histogram<double> _cpu;
    private readonly int _capacity;
    private long _evaluated;
    private long _dropped;
    private long _failed;
    private long _cpuMicros;
    private long _pending;
    private readonly long[] _recentCpu = new long[256];
    private readonly Lock _recentLock = new();
    private int _recentCount;
    private int _recentNext;

    public InsightsSampler(
        ShadowEvaluator evaluator, InsightsStore store, IOptionsMonitor<InsightsOptions> options, TimeProvider time,
        IMeterFactory meters, ILogger<InsightsSampler> logger)
    {
        _evaluator = evaluator;
        _store = store;
        _options = options;
        _time = time;
        _logger = logger;
        _capacity = options.CurrentValue.QueueCapacity;
        _queue = Channel.CreateBounded<ShadowRequest>(new BoundedChannelOptions(_capacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
            SingleWriter = false,
        });
        var meter = meters.Create(GatewayMetrics.MeterName);
        _samples = meter.CreateCounter<long>("tokengateway.insights.samples", "{request}",
            "Requests sampled for the insights shadow evaluation, by outcome (evaluated, dropped, failed).");
        _cpu = meter.CreateHistogram("tokengateway.insights.shadow.cpu_time", "s",
            "CPU time of one shadow evaluation (thread CPU clock), off the request path.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] });
    }

    /// <summary>Counters since start: evaluated, dropped (queue full) and failed samples, and the CPU spent.</summary>
    public SamplerStats Stats => new(_options.CurrentValue.ShadowSampleRate, Interlocked.Read(ref _evaluated), Interlocked.Read(ref _dropped),
        Interlocked.Read(ref _failed), Interlocked.Read(ref _cpuMicros), ThreadCpuClock.IsThreadCpuTime, _queue.Reader.Count, _capacity, RecentMedian());

    /// <summary>Median CPU of the last 256 evaluations, µs (the mean since start includes the first, JIT-compiling ones).</summary>
    private long? RecentMedian()
    {
        lock (_recentLock)
        {
            if (_recentCount == 0)
            {
                return null;
            }

            var copy = _recentCpu.AsSpan(0, _recentCount).ToArray();
            Array.Sort(copy);
            return copy[copy.Length / 2];
        }
    }

    /// <summary>
    /// Called once per completed request with its ledger event. Cheap unless sampled: a random draw; a sampled
    /// request costs a copy of its body and a channel write.
    /// </summary>
    public void Offer(HttpContext context, LlmExchange exchange, UsageEvent usageEvent)
    {
        var rate = _options.CurrentValue.ShadowSampleRate;
        if (rate <= 0 || usageEvent.Status != UsageStatus.Ok || exchange.TeamId is not { } team || exchange.Request is not { } request ||
            exchange.Model is not { } model || exchange.Policy is not { } policy || exchange.IsTranslated ||
            !string.Equals(exchange.ServedModel?.Name, model.Name, StringComparison.Ordinal) || (rate < 1 && Random.Shared.NextDouble() >= rate))
        {
            return;
        }

        if (string.Equals(context.Request.Headers[OptimizationMiddleware.OptOutHeader], "off", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        if (_queue.Reader.Count >= _capacity)
        {
            Interlocked.Increment(ref _dropped);
            _samples.Add(1, new KeyValuePair<string, object?>("outcome", "dropped"));
            return;
        }

        var sample = new ShadowRequest
        {
            TeamId = team,
            Dialect = request.Dialect,
            Model = model,
            Body = request.OriginalBytes.ToArray(), // the pooled request buffer is returned when the response ends
            Policy = policy.Optimization.Resolve(model.Name, exchange.Route),
            Limits = new OutputLimits(policy.DefaultMaxTokens, policy.MaxTokensCap, 0),
            Usage = usageEvent.Usage,
            CostUsd = usageEvent.CostUsd,
            TokensReceived = exchange.InputTokensReceived,
            SentMaxTokens = request.MaxTokens,
            Choices = request.Choices,
            ObserveOutput = policy.AdaptiveMaxTokens is null,
            At = usageEvent.Timestamp,
            Anatomy = usageEvent.Anatomy,
        };
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(sample))
        {
            Interlocked.Decrement(ref _pending);
            Interlocked.Increment(ref _dropped);
            _samples.Add(1, new KeyValuePair<string, object?>("outcome", "dropped"));
        }
    }

    /// <summary>Waits until every sample queued so far has been evaluated (tests and the insights endpoint's <c>drain</c>).</summary>
    internal async Task DrainAsync(CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _pending) > 0)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var item in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                Evaluate(item);
                Interlocked.Decrement(ref _pending);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down: queued samples are dropped (observations are in memory only)
        }
    }

    private void Evaluate(ShadowRequest item)
    {
        var start = ThreadCpuClock.NowMicroseconds();
        InsightSample? sample = null;
        try
        {
            sample = _evaluator.Evaluate(item with { At = item.At == default ? _time.GetUtcNow() : item.At });
        }
        catch (Exception ex)
        {
            LogShadowFailed(_logger, ex, item.TeamId);
        }

        var cpu = Math.Max(0, ThreadCpuClock.NowMicroseconds() - start);
        Interlocked.Add(ref _cpuMicros, cpu);
        _cpu.Record(cpu / 1_000_000.0);
        lock (_recentLock)
        {
            _recentCpu[_recentNext] = cpu;
            _recentNext = (_recentNext + 1) % _recentCpu.Length;
            _recentCount = Math.Min(_recentCount + 1, _recentCpu.Length);
        }

        if (sample is not null && _store.Add(sample))
        {
            Interlocked.Increment(ref _evaluated);
            _samples.Add(1, new KeyValuePair<string, object?>("outcome", "evaluated"));
        }
        else
        {
            Interlocked.Increment(ref _failed);
            _samples.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
        }
    }

    [LoggerMessage(2900, LogLevel.Warning, "Shadow evaluation of a sampled request of team {TeamId} failed")]
    private static partial void LogShadowFailed(ILogger logger, Exception exception, string teamId);
}

/// <summary>The sampler's counters (the <c>sampling</c> block of the insights response).</summary>
internal readonly record struct SamplerStats(
    double Rate, long Evaluated, long Dropped, long Failed, long CpuMicros, bool ThreadCpuClock, int Queued, int Capacity, long? RecentMedianMicros)
{
    /// <summary>Mean CPU per evaluated sample, µs.</summary>
    public double? CpuMicrosPerSample => Evaluated + Failed > 0 ? Math.Round((double)CpuMicros / (Evaluated + Failed), 1) : null;
}
