namespace TokenGateway.LoadHarness;

/// <summary>Durations, rates and paths of one harness run; <c>--smoke</c> shrinks every phase to keep CI short.</summary>
internal sealed record HarnessOptions
{
    public bool Smoke { get; init; }

    /// <summary>Open-loop warm-up before measuring (same rate, not recorded).</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Open-loop measured phase per payload.</summary>
    public TimeSpan Measure { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>Closed-loop warm-up, then measured phase, at <see cref="Connections"/> connections.</summary>
    public TimeSpan ThroughputWarmup { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ThroughputMeasure { get; init; } = TimeSpan.FromSeconds(5);

    public int Connections { get; init; } = 32;

    /// <summary>Closed-loop warm-up per payload right after a target starts (JIT, pools, caches), not recorded.</summary>
    public TimeSpan TargetWarmup { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Open-loop rate multiplier applied to each payload's base rate.</summary>
    public double RateScale { get; init; } = 1.0;

    /// <summary>A request slower than this counts as an error (and bounds every wait).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Hard stop for the whole run: later phases are skipped once it has passed.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>Stream memory phase: streams held open at once through each .NET proxy.</summary>
    public int StreamCount { get; init; } = 16;

    /// <summary>Simulator pacing of the stream memory phase (its <c>latency</c> fault: a wait after every event).</summary>
    public TimeSpan StreamPacing { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Output tokens (one SSE event each) of a short stream, sampled at 30% of its events.</summary>
    public int ShortStreamTokens { get; init; } = 200;

    /// <summary>Output tokens of a long stream, sampled at three quarters of its events.</summary>
    public int LongStreamTokens { get; init; } = 4000;

    public TimeSpan ShortStreamCap { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan LongStreamCap { get; init; } = TimeSpan.FromSeconds(40);

    public TimeSpan NpmInstallTimeout { get; init; } = TimeSpan.FromMinutes(3);

    public bool SkipPeer { get; init; }

    public string? OutputPath { get; init; }

    public string? PeerDirectory { get; init; }

    /// <summary>Targets to run (<c>--targets</c>); <c>direct</c> is always added (it is the floor). Null: all.</summary>
    public IReadOnlySet<string>? Targets { get; init; }

    /// <summary>
    /// The order of <c>--targets</c> as given (after <c>direct</c>): targets run in it, so an A/B pair can be measured in
    /// either order on alternate runs.
    /// </summary>
    public IReadOnlyList<string>? TargetOrder { get; init; }

    /// <summary>Payloads to run, in this order (<c>--payloads stream-500,chat-1k</c>: the first one also warms the JIT). Null: all.</summary>
    public IReadOnlyList<string>? Payloads { get; init; }

    /// <summary>
    /// Every request's last user message carries a per-request nonce (<c>--unique-bodies</c>), so no cache on the way
    /// (gateway or simulator) is hit twice. Default: identical bodies for every request of a payload.
    /// </summary>
    public bool UniqueBodies { get; init; }

    /// <summary>
    /// Issue #17's comparison (<c>--compare</c>): YARP, the gateway with its shipped defaults and with optimization off,
    /// <see cref="Repeat"/> times in alternating order (see <c>CompareRun</c>), instead of the per-payload run.
    /// </summary>
    public bool Compare { get; init; }

    /// <summary>Repetitions of the comparison (<c>--repeat N</c>).</summary>
    public int Repeat { get; init; } = 5;

    /// <summary>Measured seconds of the one-connection latency phase of the comparison.</summary>
    public TimeSpan SequentialMeasure { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Open-loop rate of the comparison's stream-500 phase (requests per second).</summary>
    public double CompareStreamRate { get; init; } = 20;

    public static readonly IReadOnlyList<string> TargetNames =
        [HarnessReport.Direct, HarnessReport.Yarp, HarnessReport.Passthrough, HarnessReport.NoResilience, HarnessReport.Full, HarnessReport.Peer];

    /// <summary>Whether the run includes <paramref name="target"/> (the no-resilience comparison only when named).</summary>
    public bool Runs(string target) => target == HarnessReport.Direct
        || (Targets is null ? target != HarnessReport.NoResilience : Targets.Contains(target));

    public static HarnessOptions Parse(string[] args)
    {
        var options = new HarnessOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            options = arg switch
            {
                "--smoke" => options with
                {
                    Smoke = true,
                    Warmup = TimeSpan.FromSeconds(0.5),
                    Measure = TimeSpan.FromSeconds(1.5),
                    ThroughputWarmup = TimeSpan.FromSeconds(0.3),
                    ThroughputMeasure = TimeSpan.FromSeconds(1),
                    TargetWarmup = TimeSpan.FromSeconds(0.5),
                    RequestTimeout = TimeSpan.FromSeconds(5),
                    Deadline = TimeSpan.FromSeconds(100),
                    NpmInstallTimeout = TimeSpan.FromSeconds(60),
                    StreamPacing = TimeSpan.FromMilliseconds(2),
                    ShortStreamTokens = 200,
                    LongStreamTokens = 400,
                    ShortStreamCap = TimeSpan.FromSeconds(1.5),
                    LongStreamCap = TimeSpan.FromSeconds(3),
                },
                "--compare" => options with
                {
                    Compare = true,
                    Warmup = TimeSpan.FromSeconds(1),
                    Measure = TimeSpan.FromSeconds(12),
                    Deadline = TimeSpan.FromMinutes(30),
                },
                "--repeat" => options with { Repeat = Math.Clamp(int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture), 1, 50) },
                "--out" => options with { OutputPath = Next() },
                "--peer-dir" => options with { PeerDirectory = Next() },
                "--skip-peer" => options with { SkipPeer = true },
                "--targets" => ParseTargets(options, Next()),
                "--payloads" => options with { Payloads = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList() },
                "--throughput-seconds" => options with { ThroughputMeasure = TimeSpan.FromSeconds(double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
                "--unique-bodies" => options with { UniqueBodies = true },
                "--measure-seconds" => options with { Measure = TimeSpan.FromSeconds(double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
                "--rate-scale" => options with { RateScale = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) },
                _ => throw new ArgumentException($"Unknown option '{arg}'. Options: --smoke --compare --repeat N --out FILE --peer-dir DIR --skip-peer --targets a,b --payloads a,b --unique-bodies --measure-seconds N --throughput-seconds N --rate-scale X"),
            };
        }

        return options;
    }

    private static HarnessOptions ParseTargets(HarnessOptions options, string list)
    {
        var targets = new HashSet<string>(StringComparer.Ordinal) { HarnessReport.Direct };
        var order = new List<string> { HarnessReport.Direct };
        foreach (var name in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!TargetNames.Contains(name))
            {
                throw new ArgumentException($"Unknown target '{name}'. Targets: {string.Join(", ", TargetNames)} (direct always runs).");
            }

            if (targets.Add(name))
            {
                order.Add(name);
            }
        }

        return options with { Targets = targets, TargetOrder = order };
    }
}
